"""National IDs at rest: encrypted, searchable by their keyed hash, unique, re-encrypted by a key rotation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from config.settings import DEVELOPMENT_ENCRYPTION_KEY, DEVELOPMENT_HASH_KEY, SettingsError, load_settings
from models.clock import utcnow
from models.crypto import DataKeyError, DataKeys, install_data_keys
from models.held import HeldRegistration
from models.migrate import downgrade, upgrade
from models.people import Beneficiary, find_beneficiary_by_reference, get_or_create_contact
from models.registration import NationalIdTakenError, register_beneficiary
from models.rotation import rotate_national_ids
from models.search import BeneficiaryFilters, search_beneficiaries
from models.staff import find_staff
from tests.factories import PRODUCTION_SECRETS, answers, make_staff, next_phone, register

# The revision before national IDs were encrypted.
PLAIN_ID_REVISION = "9b4add0b6476"
HASH_KEY = Fernet.generate_key().decode()


def _raw_dump(db, table: str) -> str:
    with db.engine.connect() as connection:
        return repr(connection.execute(sa.text(f"SELECT * FROM {table}")).all())


def test_a_national_id_is_unreadable_in_the_table_and_readable_through_the_model(db):
    reference, _ = register(db, national_id="LS12345678")
    assert "LS12345678" not in _raw_dump(db, "beneficiaries")
    with db.session() as session:
        assert find_beneficiary_by_reference(session, reference).national_id == "LS12345678"


def test_search_finds_an_exact_national_id_through_its_hash(db):
    wanted, _ = register(db, national_id="AB123456")
    register(db, national_id="AB123457")
    make_staff(db, "admin@example.org", role="admin")
    with db.session() as session:
        staff = find_staff(session, "admin@example.org")
        found = search_beneficiaries(session, staff, BeneficiaryFilters(q="ab123456"))
    assert [row.reference for row in found.items] == [wanted]
    assert found.items[0].national_id == "AB123456"


def test_a_national_id_held_by_someone_else_is_refused_even_written_by_the_orm(db):
    with db.session() as session:
        register_beneficiary(session, next_phone(), answers(national_id="ZZ111"), "en")
        first = session.execute(sa.select(Beneficiary)).scalar_one()
        first.national_id = "ZZ222"  # a correction through the model moves the hash along
    with db.session() as session, pytest.raises(NationalIdTakenError):
        register_beneficiary(session, next_phone(), answers(national_id="ZZ222"), "en")
    register(db, national_id="ZZ111")  # the old value is free again


def test_rotation_leaves_every_row_readable_with_only_the_new_key(db):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    install_data_keys(DataKeys((old,), HASH_KEY))
    references = [register(db, national_id=f"RT{n:06d}")[0] for n in range(5)]
    register(db)  # no ID: nothing to rotate
    during = DataKeys((new, old), HASH_KEY)
    install_data_keys(during)
    register(db, national_id="RT999999")  # written during the rotation: already under the new key
    result = rotate_national_ids(db, during, batch=2)
    assert (result.rewritten, result.current) == (5, 1)
    assert rotate_national_ids(db, during).rewritten == 0

    only_new = DataKeys((new,), HASH_KEY)
    with db.engine.connect() as connection:
        tokens = connection.execute(sa.text("SELECT national_id_cipher FROM beneficiaries")).scalars().all()
    assert sorted(only_new.decrypt(token) for token in tokens if token) == [
        *(f"RT{n:06d}" for n in range(5)),
        "RT999999",
    ]
    with pytest.raises(DataKeyError):
        DataKeys((old,), HASH_KEY).decrypt(next(token for token in tokens if token))
    install_data_keys(only_new)
    with db.session() as session:
        assert find_beneficiary_by_reference(session, references[0]).national_id == "RT000000"
    with pytest.raises(NationalIdTakenError):
        register(db, national_id="RT000003")  # the hashes did not change


def test_the_rotate_key_command_reencrypts_under_the_first_key(make_app, db, redis):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    install_data_keys(DataKeys((old,), HASH_KEY))
    register(db, national_id="CLI12345")
    app = make_app(data_encryption_key=f"{new},{old}", data_hash_key=HASH_KEY)
    result = app.test_cli_runner().invoke(args=["data", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1" in result.output
    with db.engine.connect() as connection:
        token = connection.execute(sa.text("SELECT national_id_cipher FROM beneficiaries")).scalar_one()
    assert DataKeys((new,), HASH_KEY).decrypt(token) == "CLI12345"


def test_production_refuses_to_start_without_the_data_keys_or_with_the_development_ones():
    production = {
        "APP_ENV": "production",
        "SECRET_KEY": PRODUCTION_SECRETS["secret_key"],
        "WEBHOOK_TOKEN": PRODUCTION_SECRETS["webhook_token"],
        "REDIS_URL": "redis://x",
        "DATABASE_URL": "sqlite://",
    }
    with pytest.raises(SettingsError, match="DATA_ENCRYPTION_KEY"):
        load_settings(production)
    key = Fernet.generate_key().decode()
    for encryption_key, hash_key in (
        (DEVELOPMENT_ENCRYPTION_KEY, HASH_KEY),
        (f"{key},{DEVELOPMENT_ENCRYPTION_KEY}", HASH_KEY),
        (key, DEVELOPMENT_HASH_KEY),
    ):
        with pytest.raises(SettingsError, match="development keys"):
            load_settings({**production, "DATA_ENCRYPTION_KEY": encryption_key, "DATA_HASH_KEY": hash_key})
    settings = load_settings({**production, "DATA_ENCRYPTION_KEY": key, "DATA_HASH_KEY": HASH_KEY})
    assert settings.data_encryption_key == key


def test_the_migration_encrypts_the_ids_that_exist_and_drops_the_plain_column(database_url, db):
    downgrade(database_url, PLAIN_ID_REVISION)
    try:
        with db.engine.begin() as connection:
            contact_id = connection.execute(
                sa.text(
                    "INSERT INTO contacts (phone, language, alerts_on, created_at, updated_at)"
                    " VALUES ('+26658099999', 'en', true, '2026-01-05 10:00:00', '2026-01-05 10:00:00') RETURNING id"
                )
            ).scalar_one()
            connection.execute(
                sa.text(
                    "INSERT INTO beneficiaries (contact_id, reference, full_name, sex, year_of_birth, district,"
                    " village, returned_from, year_of_return, national_id, household_size, main_need, consent_at,"
                    " registered_via, created_at, updated_at) VALUES (:contact, '12345674', 'Thabo Molapo', 'male',"
                    " 1980, 'Berea', 'Ha Mokhalinyane', 'south_africa', 2020, 'MG7788990', 3, 'farming',"
                    " '2026-01-05 10:00:00', 'ussd', '2026-01-05 10:00:00', '2026-01-05 10:00:00')"
                ),
                {"contact": contact_id},
            )
    finally:
        upgrade(database_url)
    assert "MG7788990" not in _raw_dump(db, "beneficiaries")
    with db.engine.connect() as connection:
        columns = {column["name"] for column in sa.inspect(connection).get_columns("beneficiaries")}
    assert "national_id" not in columns
    with db.session() as session:
        assert find_beneficiary_by_reference(session, "12345674").national_id == "MG7788990"
    with pytest.raises(NationalIdTakenError):
        register(db, national_id="MG7788990")


def test_rotation_reaches_the_national_ids_held_for_staff_review(db):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    install_data_keys(DataKeys((old,), HASH_KEY))
    with db.session() as session:
        contact = get_or_create_contact(session, next_phone())
        session.add(
            HeldRegistration(
                contact_id=contact.id,
                language="en",
                full_name="Held Person",
                sex="female",
                year_of_birth=1990,
                district="Maseru",
                village="Ha Thetsane",
                returned_from="south_africa",
                year_of_return=2020,
                national_id="HELD0001",
                household_size=3,
                main_need="business",
                consent_at=utcnow(),
            )
        )
    during = DataKeys((new, old), HASH_KEY)
    install_data_keys(during)
    assert rotate_national_ids(db, during).rewritten == 1
    with db.engine.connect() as connection:
        token = connection.execute(sa.text("SELECT national_id_cipher FROM held_registrations")).scalar_one()
    assert DataKeys((new,), HASH_KEY).decrypt(token) == "HELD0001"
