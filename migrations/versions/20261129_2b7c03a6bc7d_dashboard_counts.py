"""dashboard counts, recounted each minute (models/reports.py); registration-time index for the dated list

Revision ID: 2b7c03a6bc7d
Revises: 4965ee741eae
Create Date: 2026-11-29 14:00:00.000000

The dashboard reads `dashboard_counts` (a few thousand grouped cells) instead of grouping every beneficiary and
message on each view; `dashboard_refresh` holds when they were recounted and is the lock of a recount.
`ix_beneficiaries_created_at_id` lets the beneficiary list filtered by registration dates page along registration
time (models/search.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2b7c03a6bc7d"
down_revision: str | None = "4965ee741eae"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.create_index("ix_beneficiaries_created_at_id", ["created_at", "id"], unique=False)
    op.create_table(
        "dashboard_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("figure", sa.String(length=16), nullable=False),
        sa.Column("district", sa.String(length=20), nullable=True),
        sa.Column("sex", sa.String(length=8), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_counts")),
    )
    with op.batch_alter_table("dashboard_counts", schema=None) as batch_op:
        batch_op.create_index("ix_dashboard_counts_figure_district", ["figure", "district"], unique=False)
    op.create_table(
        "dashboard_refresh",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_refresh")),
    )


def downgrade() -> None:
    op.drop_table("dashboard_refresh")
    with op.batch_alter_table("dashboard_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_dashboard_counts_figure_district")
    op.drop_table("dashboard_counts")
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_index("ix_beneficiaries_created_at_id")
