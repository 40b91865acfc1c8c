"""Personal data in the console and the API: admins export and erase one person and decide erasure requests;
officers correct details and move a registration to a new number; the audit view masks personal values."""

from __future__ import annotations

import json

from sqlalchemy import select

from models.audit import AuditLog
from models.messages import MessageKind, OutboundMessage
from models.people import find_beneficiary_by_reference
from models.requests import ErasureChannel, ErasureRequest, ask_for_erasure
from notifications.casework.privacy import is_erased
from notifications.sms.queues import TRANSACTIONAL_QUEUE
from tests.factories import make_staff, register
from tests.gateway.test_auth import bearer, csrf_from, login, token_for


def _admin(client, db, email="admin@example.org"):
    make_staff(db, email, "admin")
    login(client, email)


def _actions(db) -> list[str]:
    with db.session() as session:
        return list(session.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars())


def test_an_admin_downloads_one_persons_data_uncached_and_audited(client, db):
    reference, phone = register(db, full_name="Mpho Letsie")
    _admin(client, db)
    page = client.get(f"/beneficiaries/{reference}").get_data(as_text=True)
    assert f"/beneficiaries/{reference}/export.json" in page and f"/beneficiaries/{reference}/erase" in page
    response = client.get(f"/beneficiaries/{reference}/export.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == f'attachment; filename="person-{reference}.json"'
    document = json.loads(response.get_data(as_text=True))
    assert (document["reference"], document["profile"]["phone"]) == (reference, phone)
    assert _actions(db)[-1] == "data.export"
    assert client.get("/beneficiaries/999/export.json").status_code == 404


def test_officers_and_viewers_neither_export_nor_erase_nor_see_the_buttons(client, db):
    reference, _ = register(db)
    make_staff(db, "o@example.org", "officer")
    login(client, "o@example.org")
    assert "export.json" not in client.get(f"/beneficiaries/{reference}").get_data(as_text=True)
    token = csrf_from(client, f"/beneficiaries/{reference}")
    assert client.get(f"/beneficiaries/{reference}/export.json").status_code == 403
    form = {"csrf_token": token, "confirm_reference": reference, "reason": "asked"}
    assert client.post(f"/beneficiaries/{reference}/erase", data=form).status_code == 403
    assert client.get("/privacy/requests").status_code == 403
    assert "data.export" not in _actions(db)


def test_erasing_needs_the_reference_retyped_and_a_reason(client, db, redis):
    reference, _ = register(db)
    _admin(client, db)
    token = csrf_from(client, f"/beneficiaries/{reference}/erase")
    for form in ({"confirm_reference": reference[:-1], "reason": "asked"}, {"confirm_reference": reference}):
        response = client.post(f"/beneficiaries/{reference}/erase", data={"csrf_token": token, **form})
        assert response.status_code == 400
    with db.session() as session:
        assert not is_erased(find_beneficiary_by_reference(session, reference))
    form = {"csrf_token": token, "confirm_reference": reference, "reason": "asked at the district office"}
    response = client.post(f"/beneficiaries/{reference}/erase", data=form)
    assert response.status_code == 302
    with db.session() as session:
        assert is_erased(find_beneficiary_by_reference(session, reference))
    assert _actions(db)[-1] == "data.erase"


def test_an_admin_confirms_a_request_and_the_notice_is_queued(client, db, redis):
    reference, phone = register(db)
    with db.session() as session:
        ask_for_erasure(session, phone, ErasureChannel.USSD)
        request_id = session.execute(select(ErasureRequest.id)).scalar_one()
    _admin(client, db)
    page = client.get("/privacy/requests").get_data(as_text=True)
    assert reference in page
    token = csrf_from(client, "/privacy/requests")
    response = client.post(f"/privacy/requests/{request_id}/confirm", data={"csrf_token": token})
    assert response.status_code == 302
    with db.session() as session:
        assert is_erased(find_beneficiary_by_reference(session, reference))
        notice = session.execute(
            select(OutboundMessage).where(OutboundMessage.kind == MessageKind.ERASURE_NOTICE)
        ).scalar_one()
        assert notice.phone == phone
    assert redis.llen(f"rq:queue:{TRANSACTIONAL_QUEUE}") >= 1
    assert reference not in client.get("/privacy/requests").get_data(as_text=True)
    response = client.post(f"/privacy/requests/{request_id}/confirm", data={"csrf_token": token})
    assert response.status_code == 409


def test_an_officer_corrects_details_in_the_console_and_the_audit_view_masks_the_name(client, db):
    reference, _ = register(db, full_name="Palesa Mokoena", district="Maseru")
    make_staff(db, "o@example.org", "officer", districts=["Maseru"])
    login(client, "o@example.org")
    token = csrf_from(client, f"/beneficiaries/{reference}/correct")
    refused = client.post(f"/beneficiaries/{reference}/correct", data={"csrf_token": token, "full_name": "P@lesa"})
    assert refused.status_code == 400 and "letters only" in refused.get_data(as_text=True)
    response = client.post(
        f"/beneficiaries/{reference}/correct",
        data={"csrf_token": token, "full_name": "Palesa Tau", "household_size": "7"},
    )
    assert response.status_code == 302
    with db.session() as session:
        beneficiary = find_beneficiary_by_reference(session, reference)
        assert (beneficiary.full_name, beneficiary.household_size) == ("Palesa Tau", 7)
    admin = client.application.test_client()
    make_staff(db, "admin@example.org", "admin")
    login(admin, "admin@example.org")
    audit = admin.get("/audit?action=beneficiary.correct").get_data(as_text=True)
    assert "beneficiary.correct" in audit and "Palesa" not in audit and "P*********" in audit


def test_the_api_corrects_and_moves_a_number_and_keeps_district_limits(client, db, redis):
    reference, old_phone = register(db, district="Maseru", national_id="LS445566")
    make_staff(db, "o@example.org", "officer", districts=["Maseru"])
    headers = bearer(token_for(db, "o@example.org"))
    response = client.patch(f"/api/v1/beneficiaries/{reference}", json={"district": "Berea"}, headers=headers)
    assert response.status_code == 400 and "not one of your districts" in response.json["error"]
    response = client.patch(
        f"/api/v1/beneficiaries/{reference}", json={"village": "Ha Abia", "year_of_birth": 1990}, headers=headers
    )
    assert response.status_code == 200 and response.json["village"] == "Ha Abia"
    assert response.json["year_of_birth"] == 1990
    move = {"new_phone": "+26662999002", "check": "reference_and_national_id", "national_id": "LS445566"}
    response = client.post(f"/api/v1/beneficiaries/{reference}/number", json=move, headers=headers)
    assert response.status_code == 200 and response.json["phone"] == "+26662999002"
    with db.session() as session:
        notices = session.execute(
            select(OutboundMessage.phone).where(OutboundMessage.kind == MessageKind.NUMBER_MOVED)
        ).scalars()
        assert sorted(notices) == sorted([old_phone, "+26662999002"])
    viewer = make_staff(db, "v@example.org", "viewer")
    assert viewer
    response = client.patch(
        f"/api/v1/beneficiaries/{reference}", json={"sex": "male"}, headers=bearer(token_for(db, "v@example.org"))
    )
    assert response.status_code == 403
