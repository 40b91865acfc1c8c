"""The Alembic migrations build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import Base
from models.migrate import downgrade, upgrade
from tests.conftest import _POSTGRES_ADMIN_URL


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


HOUSEHOLD_REVISION = "120dd5416d47"
BEFORE_HOUSEHOLD = "7a3f5e2d9c41"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    """A database with no tables at all, of each backend, for walking migrations one by one."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'walk.sqlite3'}"
        return
    if _POSTGRES_ADMIN_URL is None:
        pytest.skip("PostgreSQL not reachable")
    name = f"gateway_walk_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.make_url(_POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_CONTACT = (
    "INSERT INTO contacts (id, phone, language, alerts_on, created_at, updated_at)"
    " VALUES (:id, :phone, :lang, true, :now, :now)"
)
_BENEFICIARY = (
    "INSERT INTO beneficiaries (id, contact_id, reference, full_name, sex, year_of_birth, district, village,"
    " returned_from, year_of_return, household_size, main_need, consent_at, registered_via, created_at, updated_at)"
    " VALUES (:id, :contact, :reference, 'Palesa Mokoena', 'female', 1990, 'Maseru', 'Ha Abia', 'south_africa',"
    " 2020, 4, 'farming', :now, 'ussd', :now, :now)"
)


def test_household_migration_keeps_people_and_lets_a_phone_hold_several(empty_database_url):
    url = empty_database_url
    upgrade(url, BEFORE_HOUSEHOLD)
    engine = sa.create_engine(url)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(sa.text(_CONTACT), {"id": 1, "phone": "+26658000001", "lang": "st", "now": now})
        connection.execute(sa.text(_BENEFICIARY), {"id": 1, "contact": 1, "reference": "100000001", "now": now})
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:  # one person per phone, before
        connection.execute(sa.text(_BENEFICIARY), {"id": 2, "contact": 1, "reference": "100000002", "now": now})
    engine.dispose()

    upgrade(url, HOUSEHOLD_REVISION)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        # The existing person's SMS language is the phone's, as it was.
        assert connection.execute(sa.text("SELECT language FROM beneficiaries WHERE id = 1")).scalar_one() == "st"
        connection.execute(sa.text(_BENEFICIARY), {"id": 2, "contact": 1, "reference": "100000002", "now": now})
        count = "SELECT COUNT(*) FROM beneficiaries WHERE contact_id = 1"
        assert connection.execute(sa.text(count)).scalar_one() == 2
        indexes = {index["name"]: index for index in sa.inspect(connection).get_indexes("beneficiaries")}
        assert not indexes["ix_beneficiaries_contact_id"]["unique"]
    engine.dispose()

    # A database with a household phone cannot go back to one person per phone; with one person a phone it can.
    with pytest.raises(RuntimeError, match="household"):
        downgrade(url, BEFORE_HOUSEHOLD)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM beneficiaries WHERE id = 2"))
    engine.dispose()
    downgrade(url, BEFORE_HOUSEHOLD)
    engine = sa.create_engine(url)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.text(_BENEFICIARY), {"id": 3, "contact": 1, "reference": "100000003", "now": now})
    engine.dispose()
