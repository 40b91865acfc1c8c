"""staff session generation

Revision ID: 7a3f5e2d9c41
Revises: 4d7e2a9c1b08
Create Date: 2026-11-30 10:00:00.000000

Every console session carries its account's generation; raising it ends them all (password change, deactivation,
"sign out everywhere").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a3f5e2d9c41"
down_revision: str | None = "4d7e2a9c1b08"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
