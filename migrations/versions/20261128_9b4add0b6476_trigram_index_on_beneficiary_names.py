"""trigram index on beneficiary names (PostgreSQL only): the name search of models/search.py

`lower(full_name) LIKE '%…%'` can use a GIN index of pg_trgm's trigrams, so that a name that matches nobody no longer
reads every name. pg_trgm ships with PostgreSQL (contrib) and is a trusted extension (13+): the database owner may
create it. SQLite has neither, so this migration does nothing there (the model declares the index with
`ddl_if(dialect="postgresql")`).

Revision ID: 9b4add0b6476
Revises: e05cbf86930e
Create Date: 2026-11-28 05:06:13.587649
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b4add0b6476"
down_revision: str | None = "e05cbf86930e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_beneficiaries_full_name_trgm",
        "beneficiaries",
        [sa.literal_column("lower(full_name)").label("full_name_lower")],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"full_name_lower": "gin_trgm_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The extension stays: other objects of the database may use it, and it costs nothing unused.
    op.drop_index("ix_beneficiaries_full_name_trgm", table_name="beneficiaries")
