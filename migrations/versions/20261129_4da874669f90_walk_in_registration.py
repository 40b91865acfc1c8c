"""walk-in registration

Revision ID: 4da874669f90
Revises: 120dd5416d47
Create Date: 2026-11-29 14:00:00.000000

Officers register walk-ins: a beneficiary may have no phone (no contact), consent is recorded with how it was
given and who heard it, and the notices they cannot receive are kept as unsent. The person's own language is the
column the household migration (120dd5416d47) added: a person without a phone keeps theirs there too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4da874669f90"
down_revision: str | None = "120dd5416d47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.alter_column("contact_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("consent_channel", sa.String(length=16), server_default="ussd", nullable=False))
        batch_op.add_column(sa.Column("consent_recorded_by", sa.String(length=120), nullable=True))
    op.create_table(
        "unsent_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"], ["beneficiaries.id"], name=op.f("fk_unsent_notices_beneficiary_id_beneficiaries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unsent_notices")),
    )
    with op.batch_alter_table("unsent_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unsent_notices_beneficiary_id"), ["beneficiary_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("unsent_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unsent_notices_beneficiary_id"))
    op.drop_table("unsent_notices")
    # A person registered without a phone cannot be kept by the older schema: the downgrade refuses (NOT NULL).
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_column("consent_recorded_by")
        batch_op.drop_column("consent_channel")
        batch_op.alter_column("contact_id", existing_type=sa.Integer(), nullable=False)
