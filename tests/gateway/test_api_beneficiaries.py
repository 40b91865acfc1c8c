"""The beneficiaries JSON API: filters and keyset pages, one beneficiary, grant moves (400/403/404/409), outbound
SMS, all with the console's roles and district limits, through the real app on both databases and a real Redis."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from devtools.demo import seed_demo
from models.audit import AuditLog
from models.grants import find_grant_by_reference
from models.messages import MessageKind
from models.people import find_beneficiary_by_phone
from models.staff import StaffUser, issue_token
from notifications.sms.outbox import owe_text
from notifications.sms.queues import TRANSACTIONAL_QUEUE
from tests.factories import make_staff, register


def bearer(db, role="officer", districts=None, email=None) -> dict:
    email = email or f"{role}@example.org"
    make_staff(db, email, role, districts=districts)
    with db.session() as session:
        user = session.execute(select(StaffUser).filter_by(email=email)).scalar_one()
        _, token = issue_token(session, user, "tests")
    return {"Authorization": f"Bearer {token}"}


API_ROUTES = [
    ("GET", "/api/v1/beneficiaries"),
    ("GET", "/api/v1/beneficiaries/12345678"),
    ("POST", "/api/v1/beneficiaries/12345678/grant/events"),
    ("GET", "/api/v1/messages"),
]


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_every_route_needs_a_token(client, method, path):
    response = client.open(path, method=method, json={})
    assert response.status_code == 401 and "error" in response.get_json()


def test_viewers_may_not_move_grants(client, db):
    reference, _ = register(db)
    response = client.post(
        f"/api/v1/beneficiaries/{reference}/grant/events", json={"status": "under_review"}, headers=bearer(db, "viewer")
    )
    assert response.status_code == 403 and "officer" in response.get_json()["error"]


def test_the_list_filters_masks_and_pages_by_cursor(client, db):
    with db.session() as session:
        seed_demo(session, 30)
    reference, phone = register(db, full_name="Nthati Ramakhula", national_id="LS445566", district="Quthing")
    headers = bearer(db, "viewer")
    found = client.get("/api/v1/beneficiaries?q=nthati%20ramakhula", headers=headers).get_json()
    assert [item["reference"] for item in found["items"]] == [reference] and found["next_cursor"] is None
    item = found["items"][0]
    assert item["national_id"] == "*****566" and item["phone"] == f"{phone[:4]}****{phone[-4:]}"
    assert item["grant_status"] == "registered" and item["district"] == "Quthing"
    seen, after = [], ""
    while True:
        page = client.get(f"/api/v1/beneficiaries?limit=7&after={after}", headers=headers).get_json()
        assert len(page["items"]) <= 7
        seen += [item["reference"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        after = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 31 and seen[0] == reference  # newest first
    for bad in ("limit=0", "limit=1000", "after=abc", "status=lost", "registered_from=yesterday"):
        response = client.get(f"/api/v1/beneficiaries?{bad}", headers=headers)
        assert response.status_code == 400 and response.get_json()["error"]


def test_the_list_and_details_keep_to_the_tokens_districts(client, db):
    mine, _ = register(db, district="Mafeteng")
    theirs, _ = register(db, district="Maseru")
    headers = bearer(db, "officer", districts="Mafeteng")
    items = client.get("/api/v1/beneficiaries", headers=headers).get_json()["items"]
    assert [item["reference"] for item in items] == [mine]
    response = client.get(f"/api/v1/beneficiaries/{theirs}", headers=headers)
    assert response.status_code == 404 and response.get_json()["error"]
    url = f"/api/v1/beneficiaries/{theirs}/grant/events"
    response = client.post(url, json={"status": "withdrawn", "reason": "moved"}, headers=headers)
    assert response.status_code == 404


def test_a_beneficiary_comes_with_the_grant_its_events_and_sms(client, db):
    reference, phone = register(db, national_id="MK112233")
    with db.session() as session:
        owe_text(session, find_beneficiary_by_phone(session, phone).contact, MessageKind.STAFF, "Come to the office.")
    body = client.get(f"/api/v1/beneficiaries/{reference}", headers=bearer(db, "officer")).get_json()
    assert body["reference"] == reference and body["phone"] == phone and body["national_id"] == "MK112233"
    assert body["grant"]["status"] == "registered"
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in body["grant"]["events"]] == [
        (None, "registered", "ussd")
    ]
    assert [(m["body"], m["status"]) for m in body["messages"]] == [("Come to the office.", "queued")]


def test_moving_a_grant_through_the_api(client, db, redis):
    reference, _ = register(db)
    headers = bearer(db, "officer")
    url = f"/api/v1/beneficiaries/{reference}/grant/events"
    response = client.post(url, json={"status": "under_review"}, headers=headers)
    assert response.status_code == 201 and response.get_json()["grant"]["status"] == "under_review"
    response = client.post(url, json={"status": "paid"}, headers=headers)
    assert response.status_code == 409
    assert response.get_json()["error"] == (
        "cannot move a grant from under_review to paid; allowed: approved, not_eligible, withdrawn"
    )
    for body, message in [
        ({"status": "approved"}, "an amount is required"),
        ({"status": "approved", "amount": "lots"}, "is not a number"),
        ({"status": "not_eligible"}, "a reason is required"),
        ({"status": "promoted"}, "status must be one of"),
        ({"status": "approved", "amount": 1500, "colour": "red"}, "unknown fields: colour"),
        ({"status": "approved", "amount": {"maloti": 1}}, "must be a string"),
    ]:
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 400 and message in response.get_json()["error"], body
    response = client.post(url, data="not json", headers=headers)
    assert response.status_code == 400
    response = client.post(url, json={"status": "approved", "amount": 2000}, headers=headers)
    assert response.status_code == 201
    response = client.post(url, json={"status": "payment_scheduled", "channel": "EcoCash"}, headers=headers)
    grant = response.get_json()["grant"]
    assert (grant["status"], grant["amount"], grant["payment_channel"]) == ("payment_scheduled", "2000.00", "ecocash")
    assert redis.llen(f"rq:queue:{TRANSACTIONAL_QUEUE}") >= 1
    with db.session() as session:
        assert find_grant_by_reference(session, reference).events[-1].actor == "officer@example.org"
        moves = session.execute(select(AuditLog).where(AuditLog.action == "grant.move")).scalars().all()
    assert [entry.details_dict["to_status"] for entry in moves] == ["under_review", "approved", "payment_scheduled"]
    assert {entry.details_dict["via"] for entry in moves} == {"api"}


def test_an_api_move_is_audited_with_the_token_it_used(client, db):
    reference, _ = register(db)
    headers = bearer(db, "officer")
    prefix = headers["Authorization"].removeprefix("Bearer ")[:8]
    response = client.post(
        f"/api/v1/beneficiaries/{reference}/grant/events", json={"status": "under_review"}, headers=headers
    )
    assert response.status_code == 201
    with db.session() as session:
        (move,) = session.execute(select(AuditLog).where(AuditLog.action == "grant.move")).scalars().all()
    assert (move.actor, move.details_dict["via"]) == ("officer@example.org", "api")
    assert move.details_dict["token"] == f"tests ({prefix}…)"
    assert move.ip is not None


def test_outbound_messages_filter_and_page(client, db):
    first, first_phone = register(db, district="Leribe")
    second, second_phone = register(db, district="Berea")
    with db.session() as session:
        for phone, count in ((first_phone, 3), (second_phone, 2)):
            contact = find_beneficiary_by_phone(session, phone).contact
            for number in range(count):
                owe_text(session, contact, MessageKind.STAFF, f"note {number}")
        contact = find_beneficiary_by_phone(session, first_phone).contact
        owe_text(session, contact, MessageKind.STAFF, "gone").status = "failed"
    headers = bearer(db, "admin")
    by_reference = client.get(f"/api/v1/messages?reference={first}", headers=headers).get_json()["items"]
    assert len(by_reference) == 4 and {item["phone"] for item in by_reference} == {first_phone}
    local = second_phone.removeprefix("+266")
    assert len(client.get(f"/api/v1/messages?phone={local}", headers=headers).get_json()["items"]) == 2
    failed = client.get("/api/v1/messages?status=failed", headers=headers).get_json()["items"]
    assert [item["body"] for item in failed] == ["gone"]
    page = client.get("/api/v1/messages?limit=4", headers=headers).get_json()
    rest = client.get(f"/api/v1/messages?limit=4&after={page['next_cursor']}", headers=headers).get_json()
    ids = [item["id"] for item in page["items"] + rest["items"]]
    assert len(ids) == 6 and ids == sorted(ids, reverse=True) and rest["next_cursor"] is None
    berea = client.get("/api/v1/messages", headers=bearer(db, "viewer", districts="Berea")).get_json()["items"]
    assert len(berea) == 2 and all("****" in item["phone"] for item in berea)
    assert client.get("/api/v1/messages?status=lost", headers=headers).status_code == 400
    assert client.get("/api/v1/messages?phone=12", headers=headers).status_code == 400


def test_the_openapi_document_describes_these_routes(client, db):
    paths = client.get("/api/v1/openapi.json", headers=bearer(db, "viewer")).get_json()["paths"]
    assert {"/api/v1/beneficiaries", "/api/v1/beneficiaries/{reference}", "/api/v1/messages"} <= set(paths)
    assert set(paths["/api/v1/beneficiaries/{reference}/grant/events"]["post"]["responses"]) >= {"201", "400", "409"}
