"""grant event amounts

Revision ID: 5e7a9c1b2d40
Revises: 3c1d2e4f5a6b
Create Date: 2026-11-30 09:00:00.000000

Each grant event records the amount it set (`amount`: the approved amount on an approval, the new one on an amount
change) and, for a change, the amount it replaced (`previous_amount`). Until now only the grant held an amount, and
an approval was the only way to set it, so every existing approval is given its grant's current amount: the best
record there is of what was approved.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e7a9c1b2d40"
down_revision: str | None = "3c1d2e4f5a6b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

grants = sa.table("grants", sa.column("id", sa.Integer), sa.column("amount", sa.Numeric(12, 2)))
grant_events = sa.table(
    "grant_events",
    sa.column("grant_id", sa.Integer),
    sa.column("to_status", sa.String),
    sa.column("amount", sa.Numeric(12, 2)),
)


def upgrade() -> None:
    with op.batch_alter_table("grant_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=True))
        batch_op.add_column(sa.Column("previous_amount", sa.Numeric(precision=12, scale=2), nullable=True))
    approved_amount = sa.select(grants.c.amount).where(grants.c.id == grant_events.c.grant_id).scalar_subquery()
    op.execute(grant_events.update().where(grant_events.c.to_status == "approved").values(amount=approved_amount))


def downgrade() -> None:
    with op.batch_alter_table("grant_events", schema=None) as batch_op:
        batch_op.drop_column("previous_amount")
        batch_op.drop_column("amount")
