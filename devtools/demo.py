"""Synthetic beneficiaries for demos and benchmarks: realistic names, districts, grants and grant histories.

Rows are written with bulk INSERTs in chunks, with ids assigned here, so 100,000 beneficiaries (with their
contacts, grants and about three grant events each) take seconds, not minutes. Never run against production data:
the people are invented, but they would mix with real ones.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from models.crypto import national_id_digest
from models.grants import Grant, GrantEvent, GrantStatus, PaymentChannel
from models.people import DISTRICTS, Beneficiary, Contact, Language, MainNeed, ReturnedFrom, Sex
from models.reference import REFERENCE_BODY_DIGITS, damm_check_digit

CHUNK = 5000
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


def _next_id(session: Session, table) -> int:
    return (session.execute(select(func.max(table.id))).scalar() or 0) + 1


def seed_demo(session: Session, count: int, *, seed: int = 2021, today: date | None = None) -> int:
    """Add `count` synthetic beneficiaries with contacts, grants and grant events; returns how many were added."""
    rng = random.Random(seed)
    today = today or date.today()
    taken_phones = set(session.execute(select(Contact.phone)).scalars())
    taken_refs = set(session.execute(select(Beneficiary.reference)).scalars())
    taken_ids = set(
        session.execute(select(Beneficiary.national_id).where(Beneficiary.national_id.is_not(None))).scalars()
    )
    ids = {table: _next_id(session, table) for table in (Contact, Beneficiary, Grant, GrantEvent)}
    end = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    added = 0
    while added < count:
        size = min(CHUNK, count - added)
        contacts, beneficiaries, grants, events = [], [], [], []
        for _ in range(size):
            phone = _unique(rng, taken_phones, lambda: f"+266{rng.choice('56')}{rng.randrange(10**7):07d}")
            reference = _unique(rng, taken_refs, lambda: _reference(rng))
            sex = rng.choice((Sex.FEMALE, Sex.MALE))
            first = rng.choice(FEMALE_NAMES if sex == Sex.FEMALE else MALE_NAMES)
            created = end - timedelta(seconds=rng.randrange(REGISTRATION_SPAN_DAYS * 86400))
            year_of_birth = rng.randint(today.year - 65, today.year - 18)
            national_id = _unique(rng, taken_ids, lambda: f"{rng.randrange(10**9):09d}") if rng.random() < 0.6 else None
            contact_id, beneficiary_id, grant_id = ids[Contact], ids[Beneficiary], ids[Grant]
            ids[Contact] += 1
            ids[Beneficiary] += 1
            ids[Grant] += 1
            contacts.append(
                {
                    "id": contact_id,
                    "phone": phone,
                    "language": rng.choices(("st", "en"), (7, 3))[0],
                    "alerts_on": rng.random() < 0.95,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            beneficiaries.append(
                {
                    "id": beneficiary_id,
                    "contact_id": contact_id,
                    "reference": reference,
                    "full_name": f"{first} {rng.choice(SURNAMES)}",
                    "sex": sex,
                    "year_of_birth": year_of_birth,
                    "district": rng.choices(DISTRICTS, DISTRICT_WEIGHTS)[0],
                    "village": rng.choice(VILLAGES),
                    "returned_from": ReturnedFrom.SOUTH_AFRICA if rng.random() < 0.9 else ReturnedFrom.OTHER,
                    "year_of_return": rng.choice((2020, 2020, 2021, 2021, 2019)),
                    "national_id": national_id,  # encrypted by the column's type; a bulk insert skips the
                    "national_id_hash": national_id_digest(national_id),  # model's validator, hence the hash here
                    "household_size": rng.randint(1, 10),
                    "main_need": rng.choice(list(MainNeed)),
                    "consent_at": created,
                    "registered_via": "ussd",
                    "created_at": created,
                    "updated_at": created,
                }
            )
            status = rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))[0]
            path = PATHS[status]
            approved = GrantStatus.APPROVED in path
            grants.append(
                {
                    "id": grant_id,
                    "beneficiary_id": beneficiary_id,
                    "status": status,
                    "amount": Decimal(rng.randrange(3, 11) * 500) if approved else None,
                    "payment_channel": rng.choice(list(PaymentChannel))
                    if GrantStatus.PAYMENT_SCHEDULED in path
                    else None,
                    "payment_reference": f"PAY{rng.randrange(10**8):08d}" if status == GrantStatus.PAID else None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            moment, previous = created, None
            for step in [GrantStatus.REGISTERED, *path]:
                events.append(
                    {
                        "id": ids[GrantEvent],
                        "grant_id": grant_id,
                        "from_status": previous,
                        "to_status": step,
                        "actor": "ussd" if previous is None else DEMO_ACTOR,
                        "reason": REASONS.get(step),
                        "amount": grants[-1]["amount"] if step == GrantStatus.APPROVED else None,
                        "created_at": moment,
                    }
                )
                ids[GrantEvent] += 1
                previous, moment = step, moment + timedelta(days=rng.randint(1, 20))
        for table, rows in ((Contact, contacts), (Beneficiary, beneficiaries), (Grant, grants), (GrantEvent, events)):
            session.execute(insert(table), rows)
        added += size
    if session.get_bind().dialect.name == "postgresql":
        for table in (Contact, Beneficiary, Grant, GrantEvent):  # ids were assigned here, not by the sequences
            name = table.__tablename__
            session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
            )
    return added


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


__all__ = ["Language", "seed_demo"]
