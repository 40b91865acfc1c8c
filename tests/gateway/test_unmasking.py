"""Viewers cannot unmask: an exact phone or national ID search is for officers and admins, and is audited masked;
the audit log never holds a full phone number or national ID, whichever console or API action wrote it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models.audit import AuditLog
from models.held import hold_registration
from models.reference import is_valid_reference
from tests.factories import answers, make_staff, next_phone, register
from tests.gateway.test_auth import bearer, csrf_from, login, token_for

NATIONAL_ID = "LS7654321"


def audit_entries(db, action=None) -> list[AuditLog]:
    with db.session() as session:
        statement = select(AuditLog).order_by(AuditLog.id)
        if action:
            statement = statement.where(AuditLog.action == action)
        return list(session.execute(statement).scalars())


def exact_searches(phone: str) -> list[str]:
    """The phone as staff type it (E.164, local digits, spaced) and the national ID as typed and in lower case."""
    local = phone.removeprefix("+266")
    return [phone, local, f"{local[:4]} {local[4:]}", NATIONAL_ID, NATIONAL_ID.lower()]


def phone_not_a_reference() -> str:
    """A fresh number whose local digits are not also a valid reference: a search for those is a reference search,
    which viewers may make, so it could not show the phone rule (about one number in ten would be one)."""
    phone = next_phone()
    while is_valid_reference(phone.removeprefix("+266")):
        phone = next_phone()
    return phone


def test_viewers_get_a_403_with_a_reason_for_an_exact_phone_or_id_search(client, db):
    reference, phone = register(db, phone_not_a_reference(), full_name="Lineo Thabane", national_id=NATIONAL_ID)
    make_staff(db, "viewer@example.org", "viewer")
    token = token_for(db, "viewer@example.org")
    login(client, "viewer@example.org")
    for q in exact_searches(phone):
        response = client.get("/beneficiaries", query_string={"q": q})
        assert response.status_code == 403, q
        assert "needs the officer role" in response.get_data(as_text=True)
        api = client.get("/api/v1/beneficiaries", query_string={"q": q}, headers=bearer(token))
        assert api.status_code == 403 and "needs the officer role" in api.get_json()["error"], q
    for q in ("Lineo", reference):
        assert "Lineo Thabane" in client.get("/beneficiaries", query_string={"q": q}).get_data(as_text=True)
        assert client.get("/api/v1/beneficiaries", query_string={"q": q}, headers=bearer(token)).status_code == 200
    assert audit_entries(db, "beneficiary.search") == []


@pytest.mark.parametrize("role", ["officer", "admin"])
def test_every_exact_search_by_staff_is_audited_with_the_term_masked(client, db, role):
    _, phone = register(db, full_name="Lineo Thabane", national_id=NATIONAL_ID)
    make_staff(db, "staff@example.org", role)
    login(client, "staff@example.org")
    token = token_for(db, "staff@example.org")
    assert "Lineo Thabane" in client.get("/beneficiaries", query_string={"q": phone}).get_data(as_text=True)
    found = client.get("/api/v1/beneficiaries", query_string={"q": NATIONAL_ID}, headers=bearer(token)).get_json()
    assert [item["full_name"] for item in found["items"]] == ["Lineo Thabane"]
    client.get("/beneficiaries", query_string={"q": "Lineo"})  # a name search unmasks no one: not audited
    console, api = audit_entries(db, "beneficiary.search")
    assert (console.actor, console.details_dict) == (
        "staff@example.org",
        {"via": "console", "q": f"{phone[:4]}****{phone[-4:]}", "by": "phone"},
    )
    assert api.details_dict["q"] == "******321" and api.details_dict["by"] == "national_id"
    assert api.details_dict["token"].startswith("t (")


def test_no_audit_entry_holds_a_full_phone_number_or_national_id(client, db):
    """A tour of the console and API actions that take a phone or an ID, then a scan of the whole audit table."""
    reference, phone = register(db, full_name="Lineo Thabane", district="Leribe", national_id=NATIONAL_ID)
    held_phone = next_phone()
    with db.session() as session:
        held_id = hold_registration(session, held_phone, answers(national_id=NATIONAL_ID, district="Leribe"), "en")
    make_staff(db, "admin@example.org", "admin")
    login(client, "admin@example.org")
    token = token_for(db, "admin@example.org")
    for q in exact_searches(phone) + exact_searches(held_phone):
        client.get("/beneficiaries", query_string={"q": q})
        client.get("/beneficiaries/export.csv", query_string={"q": q}).get_data()
        client.get("/api/v1/beneficiaries", query_string={"q": q}, headers=bearer(token))
        client.get("/api/v1/messages", query_string={"phone": q}, headers=bearer(token))
    client.get(f"/beneficiaries/{reference}")
    client.get(f"/api/v1/beneficiaries/{reference}", headers=bearer(token))
    csrf = csrf_from(client, "/duplicates")
    client.post(f"/duplicates/{held_id}/register", data={"national_id": "LS1112223", "csrf_token": csrf})
    client.post(
        f"/beneficiaries/{reference}/grant", data={"status": "under_review", "reason": "check", "csrf_token": csrf}
    )
    entries = audit_entries(db)
    assert {"beneficiary.search", "export.beneficiaries", "held_registration.register"} <= {e.action for e in entries}
    secrets = [phone, held_phone, phone[4:], held_phone[4:], NATIONAL_ID, "LS1112223"]
    for entry in entries:
        written = f"{entry.actor} {entry.object_type} {entry.object_id} {entry.details}".upper()
        leaked = [secret for secret in secrets if secret.upper() in written]
        assert not leaked, (entry.action, leaked, entry.details)
