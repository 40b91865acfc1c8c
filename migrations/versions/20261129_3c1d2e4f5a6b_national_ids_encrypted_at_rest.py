"""national IDs encrypted at rest

Revision ID: 3c1d2e4f5a6b
Revises: 9b4add0b6476
Create Date: 2026-11-29 09:00:00.000000

The plain `national_id` column becomes a Fernet token (`national_id_cipher`) and a keyed hash (`national_id_hash`,
unique) under the keys the app itself uses (`models.crypto.current_keys`: `DATA_ENCRYPTION_KEY` and
`DATA_HASH_KEY` from the environment, the development keys when unset outside production). The IDs that exist are
encrypted in batches, then the plain column is dropped, so that no backup taken afterwards holds a readable ID.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.crypto import current_keys

revision: str = "3c1d2e4f5a6b"
down_revision: str | None = "9b4add0b6476"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows read and rewritten per statement round.
BATCH = 500

beneficiaries = sa.table(
    "beneficiaries",
    sa.column("id", sa.Integer),
    sa.column("national_id", sa.String),
    sa.column("national_id_cipher", sa.Text),
    sa.column("national_id_hash", sa.String),
)


def _convert(source: str, write) -> None:
    """Walk the rows whose `source` column is set, in id order, and write each one's new columns."""
    bind = op.get_bind()
    column = beneficiaries.c[source]
    after = 0
    while True:
        rows = bind.execute(
            sa.select(beneficiaries.c.id, column)
            .where(column.is_not(None), beneficiaries.c.id > after)
            .order_by(beneficiaries.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row_id, value in rows:
            bind.execute(beneficiaries.update().where(beneficiaries.c.id == row_id).values(**write(value)))
        after = rows[-1][0]


def upgrade() -> None:
    keys = current_keys()
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("national_id_cipher", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("national_id_hash", sa.String(length=64), nullable=True))
    _convert(
        "national_id", lambda plain: {"national_id_cipher": keys.encrypt(plain), "national_id_hash": keys.digest(plain)}
    )
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_beneficiaries_national_id"), type_="unique")
        batch_op.drop_column("national_id")
        batch_op.create_unique_constraint(batch_op.f("uq_beneficiaries_national_id_hash"), ["national_id_hash"])


def downgrade() -> None:
    keys = current_keys()
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("national_id", sa.String(length=32), nullable=True))
    _convert("national_id_cipher", lambda token: {"national_id": keys.decrypt(token)})
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_beneficiaries_national_id_hash"), type_="unique")
        batch_op.drop_column("national_id_hash")
        batch_op.drop_column("national_id_cipher")
        batch_op.create_unique_constraint(batch_op.f("uq_beneficiaries_national_id"), ["national_id"])
