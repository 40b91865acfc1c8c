"""fan-out and growth indexes

Revision ID: ed014cef5f6c
Revises: 2b7c03a6bc7d
Create Date: 2026-11-29 14:00:00.000000

Outbound messages are the table that grows with every campaign: a million rows per national campaign.

- Its two foreign keys go (contact_id, campaign_id): PostgreSQL checks them with a locking lookup per inserted row,
  which was more than half of a fan-out's time (bench/campaign.py --recipients). The writers keep the references
  (models/messages.py says how).
- `status` and `phone` alone are replaced by (status, id) and (phone, id): the console's list filtered by status or
  by number, newest first, reads them backwards and stops after a page, at any size of the table or of a number's
  history; counts by status and lookups by number read them as they read the old ones.
- The claim token and the provider's message id are indexed only where set (the latter still unique), so that
  rows written by a fan-out enter neither index.
- New: messages by creation time (reports by month), final messages whose body retention has not cleared yet, and
  the received/recorded time of delivery reports and USSD session records, so that retention reads whole months
  through an index instead of the whole table (bench/growth.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ed014cef5f6c"
down_revision: str | None = "2b7c03a6bc7d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIMED = "claim_token IS NOT NULL"
PROVIDER_ID_SET = "provider_message_id IS NOT NULL"
BODY_KEPT = "final_at IS NOT NULL AND body <> ''"


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_constraint("fk_outbound_messages_contact_id_contacts", type_="foreignkey")
        batch_op.drop_constraint("fk_outbound_messages_campaign_id_campaigns", type_="foreignkey")
        batch_op.drop_index("ix_outbound_messages_status")
        batch_op.drop_index("ix_outbound_messages_phone")
        batch_op.drop_index("ix_outbound_messages_claim_token")
        batch_op.drop_constraint("uq_outbound_messages_provider_message_id", type_="unique")
    op.create_index(
        "uq_outbound_messages_provider_message_id",
        "outbound_messages",
        ["provider_message_id"],
        unique=True,
        postgresql_where=sa.text(PROVIDER_ID_SET),
        sqlite_where=sa.text(PROVIDER_ID_SET),
    )
    op.create_index("ix_outbound_messages_status_id", "outbound_messages", ["status", "id"])
    op.create_index("ix_outbound_messages_phone_id", "outbound_messages", ["phone", "id"])
    op.create_index(
        "ix_outbound_messages_claim_token",
        "outbound_messages",
        ["claim_token"],
        postgresql_where=sa.text(CLAIMED),
        sqlite_where=sa.text(CLAIMED),
    )
    op.create_index("ix_outbound_messages_created_at", "outbound_messages", ["created_at"])
    op.create_index(
        "ix_outbound_messages_final_body",
        "outbound_messages",
        ["final_at"],
        postgresql_where=sa.text(BODY_KEPT),
        sqlite_where=sa.text(BODY_KEPT),
    )
    op.create_index("ix_delivery_reports_received_at", "delivery_reports", ["received_at"])
    op.create_index("ix_ussd_sessions_recorded_at", "ussd_sessions", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_ussd_sessions_recorded_at", table_name="ussd_sessions")
    op.drop_index("ix_delivery_reports_received_at", table_name="delivery_reports")
    op.drop_index("ix_outbound_messages_final_body", table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_created_at", table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_claim_token", table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_phone_id", table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_status_id", table_name="outbound_messages")
    op.drop_index("uq_outbound_messages_provider_message_id", table_name="outbound_messages")
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_outbound_messages_provider_message_id", ["provider_message_id"])
        batch_op.create_index("ix_outbound_messages_claim_token", ["claim_token"])
        batch_op.create_index("ix_outbound_messages_status", ["status"])
        batch_op.create_index("ix_outbound_messages_phone", ["phone"])
        batch_op.create_foreign_key("fk_outbound_messages_campaign_id_campaigns", "campaigns", ["campaign_id"], ["id"])
        batch_op.create_foreign_key("fk_outbound_messages_contact_id_contacts", "contacts", ["contact_id"], ["id"])
