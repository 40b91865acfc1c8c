"""The duplicate-ID review: held USSD registrations, side by side with the holder, resolved by officers."""

from __future__ import annotations

from sqlalchemy import select

from models.audit import AuditLog
from models.held import HeldRegistration, HeldStatus, hold_registration
from models.messages import MessageKind, OutboundMessage
from models.people import Beneficiary
from tests.factories import answers, make_staff, next_phone, register
from tests.gateway.test_auth import csrf_from, login


def held(db, national_id="LS12345", district="Leribe", full_name="Thabo Mokoena") -> tuple[int, str]:
    """A registration held at USSD because `national_id` is taken; returns its id and phone."""
    phone = next_phone()
    with db.session() as session:
        return hold_registration(
            session, phone, answers(national_id=national_id, district=district, full_name=full_name), "en"
        ), phone


def post(client, path, **form):
    return client.post(path, data={**form, "csrf_token": csrf_from(client, "/duplicates")})


def entries(db, action):
    with db.session() as session:
        return list(session.execute(select(AuditLog).where(AuditLog.action == action)).scalars())


def test_officers_see_held_registrations_of_their_districts_side_by_side_with_the_id_masked(client, db):
    register(db, full_name="Palesa Mohapi", district="Leribe", national_id="LS12345")
    mine, _ = held(db, "LS12345", "Leribe")
    elsewhere, _ = held(db, "LS67890", "Maseru", full_name="Mpho Elsewhere")
    make_staff(db, "officer@example.org", "officer", districts="Leribe")
    login(client, "officer@example.org")
    page = client.get("/duplicates").get_data(as_text=True)
    assert f'id="held-{mine}"' in page and f'id="held-{elsewhere}"' not in page
    assert "Thabo Mokoena" in page and "Palesa Mohapi" in page and "Mpho Elsewhere" not in page
    assert "LS12345" not in page and "****345" in page
    assert 'href="/duplicates"' in client.get("/").get_data(as_text=True)
    assert post(client, f"/duplicates/{elsewhere}/dismiss", reason="not mine").status_code == 404


def test_viewers_cannot_open_the_review(client, db):
    make_staff(db, "viewer@example.org", "viewer")
    login(client, "viewer@example.org")
    assert client.get("/duplicates").status_code == 403
    assert 'href="/duplicates"' not in client.get("/").get_data(as_text=True)


def test_an_officer_registers_the_held_one_under_a_corrected_id_and_it_is_audited(client, db):
    register(db, district="Leribe", national_id="LS12345")
    held_id, phone = held(db, "LS12345", "Leribe")
    make_staff(db, "officer@example.org", "officer")
    login(client, "officer@example.org")
    refused = post(client, f"/duplicates/{held_id}/register", national_id="LS12345")  # still taken
    assert refused.status_code == 400 and "national ID already registered" in refused.get_data(as_text=True)
    with db.session() as session:
        assert session.get(HeldRegistration, held_id).status == HeldStatus.HELD
    response = post(client, f"/duplicates/{held_id}/register", national_id="ls54321")
    assert response.status_code == 302
    with db.session() as session:
        row = session.get(HeldRegistration, held_id)
        beneficiary = session.get(Beneficiary, row.beneficiary_id)
        assert (row.status, row.resolved_by) == (HeldStatus.REGISTERED, "officer@example.org")
        assert (beneficiary.national_id, beneficiary.phone, beneficiary.full_name) == (
            "LS54321",
            phone,
            "Thabo Mokoena",
        )
        sms = session.execute(select(OutboundMessage).where(OutboundMessage.phone == phone)).scalar_one()
        assert sms.kind == MessageKind.REGISTRATION_CONFIRMATION
    [entry] = entries(db, "held_registration.register")
    assert entry.actor == "officer@example.org" and entry.details_dict["national_id"] == "****321"
    assert "LS54321" not in entry.details
    assert post(client, f"/duplicates/{held_id}/dismiss", reason="twice").status_code == 400


def test_an_officer_dismisses_a_held_registration_with_a_reason(client, db):
    held_id, _ = held(db)
    make_staff(db, "officer@example.org", "officer")
    login(client, "officer@example.org")
    assert post(client, f"/duplicates/{held_id}/dismiss", reason="  ").status_code == 400
    assert post(client, f"/duplicates/{held_id}/dismiss", reason="the same person, second try").status_code == 302
    with db.session() as session:
        assert session.get(HeldRegistration, held_id).status == HeldStatus.DISMISSED
    [entry] = entries(db, "held_registration.dismiss")
    assert entry.details_dict["reason"] == "the same person, second try"
    assert "Nothing waiting" in client.get("/duplicates").get_data(as_text=True)
