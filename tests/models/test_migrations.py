"""The Alembic migrations build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import Base
from models.migrate import downgrade, upgrade


# SQLite cannot reflect an expression index, so Alembic skips comparing the PostgreSQL-only trigram index on names
# there (the model declares it with `ddl_if(dialect="postgresql")` and the migration creates nothing on SQLite) and
# says so in a warning. On PostgreSQL the index is compared like any other.
@pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index 'ix_beneficiaries_full_name_trgm'"
)
def test_migrations_match_the_models(db):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrations_downgrade_to_nothing_and_up_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)
