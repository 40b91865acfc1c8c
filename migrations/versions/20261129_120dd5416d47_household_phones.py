"""household phones: several beneficiaries per phone, each with their own SMS language

Revision ID: 120dd5416d47
Revises: 7a3f5e2d9c41
Create Date: 2026-11-29 14:00:00.000000

One feature phone often serves a household: a contact may hold up to MAX_BENEFICIARIES_PER_PHONE beneficiaries
(checked by the registration, not the schema). The unique constraint on `beneficiaries.contact_id` becomes a plain
index (the phone's people are still looked up by it), and each beneficiary gets the language of SMS about them,
filled from the phone's language for those registered before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "120dd5416d47"
down_revision: str | None = "7a3f5e2d9c41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_beneficiaries_contact_id"), type_="unique")
        batch_op.create_index(batch_op.f("ix_beneficiaries_contact_id"), ["contact_id"], unique=False)
        batch_op.add_column(sa.Column("language", sa.String(length=2), nullable=True))
    op.execute(
        "UPDATE beneficiaries SET language = (SELECT contacts.language FROM contacts"
        " WHERE contacts.id = beneficiaries.contact_id)"
    )


def downgrade() -> None:
    # Refused rather than lossy: with a household phone in the table, the unique constraint cannot come back.
    bind = op.get_bind()
    shared = bind.execute(
        sa.text("SELECT contact_id FROM beneficiaries GROUP BY contact_id HAVING COUNT(*) > 1 LIMIT 1")
    ).first()
    if shared is not None:
        raise RuntimeError("cannot downgrade: some phone numbers hold several beneficiaries (household phones)")
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_column("language")
        batch_op.drop_index(batch_op.f("ix_beneficiaries_contact_id"))
        batch_op.create_unique_constraint(batch_op.f("uq_beneficiaries_contact_id"), ["contact_id"])
