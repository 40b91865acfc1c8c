"""Synthetic beneficiaries for demos and benchmarks: realistic names, districts, grants, grant histories and SMS.

A million people must seed in minutes (issue "national scale"), so rows are made in Python in chunks, with ids
assigned here, and written set-based: on PostgreSQL with `COPY … FROM STDIN` (psycopg's `cursor.copy`), which skips
the per-row statement overhead; on SQLite with one bulk INSERT per table and chunk. The SMS history (a registration
confirmation for everyone, a grant notice for every grant past review) is one `INSERT … SELECT` per kind over the
people just added, rendered and spread over statuses in SQL.

Personal data follows the production rules: national IDs are stored as Fernet tokens under the data key with their
keyed hash beside them (`models/crypto.py`), 60 % of people give one (it is optional at registration). Encrypting
is cheap next to the rest (about 6 µs an ID, 4 s for a million people). Never run against production data: the
people are invented, but they would mix with real ones.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

from sqlalchemy import Interval, bindparam, case, func, insert, literal, select, text
from sqlalchemy.orm import Session

from models.crypto import current_keys
from models.grants import Grant, GrantEvent, GrantStatus, PaymentChannel
from models.messages import MessageKind, MessagePriority, MessageStatus, OutboundMessage
from models.people import DISTRICTS, Beneficiary, Contact, Language, MainNeed, ReturnedFrom, Sex
from models.reference import REFERENCE_BODY_DIGITS, damm_check_digit

# People made and written per round: large enough that each COPY carries real work, small enough to keep memory flat.
CHUNK = 20_000
DEMO_ACTOR = "demo"
FEMALE_NAMES = (
    "Palesa",
    "Mpho",
    "Lineo",
    "Puleng",
    "Nthabiseng",
    "Mamello",
    "Lerato",
    "Karabo",
    "Limpho",
    "Rethabile",
    "Mosa",
    "Ntsoaki",
    "Makhotso",
    "Keneuoe",
    "Relebohile",
    "Tsepiso",
    "Masechaba",
    "Lipuo",
)
MALE_NAMES = (
    "Thabo",
    "Teboho",
    "Tsepo",
    "Lehlohonolo",
    "Motlatsi",
    "Katleho",
    "Thato",
    "Mpho",
    "Tumelo",
    "Rorisang",
    "Lerato",
    "Bokang",
    "Moeketsi",
    "Retselisitsoe",
    "Sello",
    "Tlotliso",
    "Mohapi",
    "Nkopane",
)
SURNAMES = (
    "Mokoena",
    "Mofokeng",
    "Letsie",
    "Moshoeshoe",
    "Mohale",
    "Ntho",
    "Sekhesa",
    "Lebona",
    "Makara",
    "Ramoholi",
    "Molapo",
    "Thamae",
    "Nthako",
    "Tau",
    "Phafane",
    "Mpeli",
    "Khoarai",
    "Mokhehle",
    "Lerotholi",
    "Seeiso",
)
VILLAGES = (
    "Ha Abia",
    "Ha Thetsane",
    "Roma",
    "Morija",
    "Mapoteng",
    "Teyateyaneng",
    "Hlotse",
    "Maputsoe",
    "Mohale",
    "Semonkong",
    "Quthing",
    "Mphaki",
    "Sehlabathebe",
    "Mokhotlong",
    "Thaba-Tseka",
    "Matsieng",
    "Nazareth",
)
# Rough shares of the population by district (Maseru is by far the largest), in DISTRICTS order.
DISTRICT_WEIGHTS = (12, 6, 16, 9, 26, 8, 5, 3, 6, 6)
# Where a demo grant has got to, and how often.
STATUS_WEIGHTS = {
    GrantStatus.REGISTERED: 20,
    GrantStatus.UNDER_REVIEW: 15,
    GrantStatus.APPROVED: 10,
    GrantStatus.NOT_ELIGIBLE: 8,
    GrantStatus.PAYMENT_SCHEDULED: 10,
    GrantStatus.PAID: 32,
    GrantStatus.PAYMENT_FAILED: 3,
    GrantStatus.WITHDRAWN: 2,
}
PATHS = {
    GrantStatus.REGISTERED: [],
    GrantStatus.UNDER_REVIEW: [GrantStatus.UNDER_REVIEW],
    GrantStatus.APPROVED: [GrantStatus.UNDER_REVIEW, GrantStatus.APPROVED],
    GrantStatus.NOT_ELIGIBLE: [GrantStatus.UNDER_REVIEW, GrantStatus.NOT_ELIGIBLE],
    GrantStatus.PAYMENT_SCHEDULED: [GrantStatus.UNDER_REVIEW, GrantStatus.APPROVED, GrantStatus.PAYMENT_SCHEDULED],
    GrantStatus.PAID: [GrantStatus.UNDER_REVIEW, GrantStatus.APPROVED, GrantStatus.PAYMENT_SCHEDULED, GrantStatus.PAID],
    GrantStatus.PAYMENT_FAILED: [
        GrantStatus.UNDER_REVIEW,
        GrantStatus.APPROVED,
        GrantStatus.PAYMENT_SCHEDULED,
        GrantStatus.PAYMENT_FAILED,
    ],
    GrantStatus.WITHDRAWN: [GrantStatus.UNDER_REVIEW, GrantStatus.WITHDRAWN],
}
REASONS = {
    GrantStatus.NOT_ELIGIBLE: "did not return during the programme period",
    GrantStatus.WITHDRAWN: "moved back to South Africa",
}
REGISTRATION_SPAN_DAYS = 365
# Share of people who gave a national ID at registration (it is optional).
NATIONAL_ID_SHARE = 0.6
ALERTS_ON_SHARE = 0.95
SESOTHO_SHARE = 0.7
SOUTH_AFRICA_SHARE = 0.9
RETURN_YEARS = (2020, 2020, 2021, 2021, 2019)
# Days between two steps of a grant's history.
STEP_DAYS = (1, 20)

# The SMS history, by status in percent (sums to 100): what a programme a few months in looks like. Nothing is left
# `queued`, so that a worker started on a demo database does not send a year of old notices.
MESSAGE_STATUS_SHARES = (
    (MessageStatus.DELIVERED, 87),
    (MessageStatus.SENT, 3),
    (MessageStatus.SUBMITTED, 2),
    (MessageStatus.BUFFERED, 1),
    (MessageStatus.FAILED, 4),
    (MessageStatus.REJECTED, 1),
    (MessageStatus.EXPIRED, 2),
)
CONFIRMATION_TEXT = "Thank you for registering. Your reference is {ref}. Dial *120*123# to check your grant."
GRANT_NOTICE_TEXT = "Your reintegration grant {ref} has moved on. Dial *120*123# for its status."
# (kind, text, seconds after registration, only for grants past these statuses)
MESSAGE_HISTORY = (
    (MessageKind.REGISTRATION_CONFIRMATION, CONFIRMATION_TEXT, 5, ()),
    (MessageKind.GRANT_NOTICE, GRANT_NOTICE_TEXT, 10 * 86400, (GrantStatus.REGISTERED, GrantStatus.UNDER_REVIEW)),
)

# The columns written per table, in the order the row tuples below hold them (ORM attribute names).
CONTACT_COLUMNS = ("id", "phone", "language", "alerts_on", "created_at", "updated_at")
BENEFICIARY_COLUMNS = (
    "id",
    "contact_id",
    "reference",
    "full_name",
    "sex",
    "year_of_birth",
    "district",
    "village",
    "returned_from",
    "year_of_return",
    "national_id",
    "national_id_hash",
    "household_size",
    "main_need",
    "consent_at",
    "registered_via",
    "created_at",
    "updated_at",
)
NATIONAL_ID_POSITION = BENEFICIARY_COLUMNS.index("national_id")
GRANT_COLUMNS = (
    "id",
    "beneficiary_id",
    "status",
    "amount",
    "payment_channel",
    "payment_reference",
    "created_at",
    "updated_at",
)
EVENT_COLUMNS = ("id", "grant_id", "from_status", "to_status", "actor", "reason", "amount", "created_at")


def _next_id(session: Session, table) -> int:
    return (session.execute(select(func.max(table.id))).scalar() or 0) + 1


def _weighted(rng: random.Random, values: tuple, weights) -> Callable[[], Any]:
    """A chooser of `values` by `weights` with the cumulative weights worked out once, not at every draw."""
    cumulative = list(accumulate(weights))
    return lambda: rng.choices(values, cum_weights=cumulative)[0]


def seed_demo(
    session: Session, count: int, *, seed: int = 2021, today: date | None = None, messages: bool = True
) -> int:
    """Add `count` synthetic beneficiaries with contacts, grants, grant events and (unless `messages` is false)
    the SMS they would have had; returns how many beneficiaries were added. Same seed, same people."""
    rng = random.Random(seed)
    today = today or date.today()
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:  # a COPY of a chunk, or the SMS history of a million people, takes longer than a web request may
        session.execute(text("SET LOCAL statement_timeout = 0"))
    keys = current_keys()
    taken_phones = set(session.execute(select(Contact.phone)).scalars())
    taken_refs = set(session.execute(select(Beneficiary.reference)).scalars())
    taken_hashes = set(
        session.execute(select(Beneficiary.national_id_hash).where(Beneficiary.national_id_hash.is_not(None))).scalars()
    )
    ids = {table: _next_id(session, table) for table in (Contact, Beneficiary, Grant, GrantEvent)}
    first_beneficiary = ids[Beneficiary]
    end = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    span_seconds = REGISTRATION_SPAN_DAYS * 86400
    district = _weighted(rng, DISTRICTS, DISTRICT_WEIGHTS)
    grant_status = _weighted(rng, tuple(STATUS_WEIGHTS), STATUS_WEIGHTS.values())
    language = _weighted(rng, (Language.SESOTHO.value, Language.ENGLISH.value), (SESOTHO_SHARE, 1 - SESOTHO_SHARE))
    needs = [need.value for need in MainNeed]
    channels = [channel.value for channel in PaymentChannel]
    added = 0
    while added < count:
        size = min(CHUNK, count - added)
        contacts, beneficiaries, grants, events = [], [], [], []
        for person in range(added, added + size):
            phone = _unique(rng, taken_phones, lambda: f"+266{rng.choice('56')}{rng.randrange(10**7):07d}")
            reference = _unique(rng, taken_refs, lambda: _reference(rng))
            female = rng.random() < 0.5
            first = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
            # Registrations spread over the span in id order, as the gateway hands out ids: the list's and the
            # date filter's plans depend on it.
            created = end - timedelta(seconds=span_seconds * (1 - (person + rng.random()) / count))
            national_id = digest = None
            if rng.random() < NATIONAL_ID_SHARE:
                while national_id is None or digest in taken_hashes:
                    national_id = f"{rng.randrange(10**9):09d}"
                    digest = keys.digest(national_id)
                taken_hashes.add(digest)
            contact_id, beneficiary_id, grant_id = ids[Contact], ids[Beneficiary], ids[Grant]
            ids[Contact] += 1
            ids[Beneficiary] += 1
            ids[Grant] += 1
            contacts.append((contact_id, phone, language(), rng.random() < ALERTS_ON_SHARE, created, created))
            beneficiaries.append(
                (
                    beneficiary_id,
                    contact_id,
                    reference,
                    f"{first} {rng.choice(SURNAMES)}",
                    Sex.FEMALE.value if female else Sex.MALE.value,
                    rng.randint(today.year - 65, today.year - 18),
                    district(),
                    rng.choice(VILLAGES),
                    (ReturnedFrom.SOUTH_AFRICA if rng.random() < SOUTH_AFRICA_SHARE else ReturnedFrom.OTHER).value,
                    rng.choice(RETURN_YEARS),
                    national_id,
                    digest,
                    rng.randint(1, 10),
                    rng.choice(needs),
                    created,
                    "ussd",
                    created,
                    created,
                )
            )
            status = grant_status()
            path = PATHS[status]
            amount = Decimal(rng.randrange(3, 11) * 500) if GrantStatus.APPROVED in path else None
            grants.append(
                (
                    grant_id,
                    beneficiary_id,
                    status.value,
                    amount,
                    rng.choice(channels) if GrantStatus.PAYMENT_SCHEDULED in path else None,
                    f"PAY{rng.randrange(10**8):08d}" if status == GrantStatus.PAID else None,
                    created,
                    created,
                )
            )
            moment, previous = created, None
            for step in (GrantStatus.REGISTERED, *path):
                events.append(
                    (
                        ids[GrantEvent],
                        grant_id,
                        previous,
                        step.value,
                        "ussd" if previous is None else DEMO_ACTOR,
                        REASONS.get(step),
                        amount if step == GrantStatus.APPROVED else None,
                        moment,
                    )
                )
                ids[GrantEvent] += 1
                previous, moment = step.value, moment + timedelta(days=rng.randint(*STEP_DAYS))
        write = _copy if postgres else _insert
        write(session, Contact, CONTACT_COLUMNS, contacts)
        write(session, Beneficiary, BENEFICIARY_COLUMNS, _encrypted(beneficiaries) if postgres else beneficiaries)
        write(session, Grant, GRANT_COLUMNS, grants)
        write(session, GrantEvent, EVENT_COLUMNS, events)
        added += size
    if postgres:
        for table in (Contact, Beneficiary, Grant, GrantEvent):  # ids were assigned here, not by the sequences
            name = table.__tablename__
            session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
            )
    if messages and added:
        seed_messages(session, first_beneficiary)
    return added


def _encrypted(rows: list[tuple]) -> list[tuple]:
    """Rows with the national ID as its Fernet token: COPY bypasses the column type that encrypts on insert."""
    encrypt = current_keys().encrypt
    position = NATIONAL_ID_POSITION
    return [
        row if row[position] is None else (*row[:position], encrypt(row[position]), *row[position + 1 :])
        for row in rows
    ]


def _copy(session: Session, model, attributes: tuple[str, ...], rows: list[tuple]) -> None:
    """`rows` into `model`'s table with one COPY, on the session's own connection and transaction."""
    mapper = model.__mapper__
    columns = ", ".join(mapper.attrs[attribute].columns[0].name for attribute in attributes)
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {model.__tablename__} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _insert(session: Session, model, attributes: tuple[str, ...], rows: list[tuple]) -> None:
    """`rows` into `model`'s table with one bulk INSERT (the column types encrypt the national ID)."""
    session.execute(insert(model), [dict(zip(attributes, row, strict=True)) for row in rows])


def seed_messages(session: Session, first_beneficiary_id: int) -> int:
    """The SMS the programme would have sent the beneficiaries from `first_beneficiary_id` on: a confirmation each,
    a grant notice for every grant past review. One `INSERT … SELECT` per kind; statuses are spread by id in the
    shares of MESSAGE_STATUS_SHARES, so the dashboard's SMS figures have every status. Returns the rows written."""
    messages = OutboundMessage.__table__
    b, c, g = Beneficiary.__table__, Contact.__table__, Grant.__table__
    whens, low = [], 0
    for message_status, share in MESSAGE_STATUS_SHARES:
        low += share
        whens.append((b.c.id % 100 < low, literal(message_status.value)))
    written = 0
    postgres = session.get_bind().dialect.name == "postgresql"
    for kind, body, delay_seconds, early in MESSAGE_HISTORY:
        if postgres:
            moment = b.c.created_at + literal(timedelta(seconds=delay_seconds), Interval())
        else:
            moment = func.datetime(b.c.created_at, f"+{delay_seconds} seconds")  # SQLite has no interval type
        rows = (
            select(
                c.c.phone,
                c.c.id,
                literal(kind.value),
                literal(MessagePriority.TRANSACTIONAL.value),
                func.coalesce(c.c.language, Language.ENGLISH.value),
                func.replace(literal(body), "{ref}", b.c.reference),
                case(*whens),
                literal(1),
                literal(1),
                moment,
                moment,
                moment,
            )
            .select_from(b.join(c, c.c.id == b.c.contact_id).join(g, g.c.beneficiary_id == b.c.id))
            .where(b.c.id >= bindparam("first", first_beneficiary_id))
        )
        if early:
            rows = rows.where(g.c.status.not_in([step.value for step in early]))
        statement = insert(messages).from_select(
            [
                "phone",
                "contact_id",
                "kind",
                "priority",
                "language",
                "body",
                "status",
                "parts",
                "attempts",
                "submitted_at",
                "created_at",
                "updated_at",
            ],
            rows,
        )
        written += session.execute(statement).rowcount
    return written


def _unique(rng: random.Random, taken: set, make) -> str:
    while True:
        value = make()
        if value not in taken:
            taken.add(value)
            return value


def _reference(rng: random.Random) -> str:
    body = (
        str(rng.randrange(1, 10)) + f"{rng.randrange(10 ** (REFERENCE_BODY_DIGITS - 1)):0{REFERENCE_BODY_DIGITS - 1}d}"
    )
    return body + damm_check_digit(body)


__all__ = ["Language", "seed_demo", "seed_messages"]
