"""the SMS route of each outbound and inbound message

Revision ID: 7a3e5c1b9d20
Revises: 7e1a5c3b9d20
Create Date: 2026-11-30 09:00:00.000000

A second kind of SMS route (Kannel over SMPP, chosen per network by SMS_ROUTES): every message records the route it
went out or came in on. Messages sent before this all went through Africa's Talking, and say so.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a3e5c1b9d20"
down_revision: str | None = "7e1a5c3b9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The only route there was before this revision.
AFRICASTALKING_ROUTE = "africastalking"


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("route", sa.String(length=40), nullable=True))
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(sa.Column("route", sa.String(length=40), nullable=True))
    op.execute(
        sa.text("UPDATE outbound_messages SET route = :route WHERE provider_message_id IS NOT NULL").bindparams(
            route=AFRICASTALKING_ROUTE
        )
    )
    op.execute(sa.text("UPDATE inbound_messages SET route = :route").bindparams(route=AFRICASTALKING_ROUTE))


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("route")
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("route")
