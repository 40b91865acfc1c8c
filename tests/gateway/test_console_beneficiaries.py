"""The beneficiaries console: search, filters, keyset pages, one person's page, grant moves, export, payment imports,
with the roles and district limits, through the real app on both databases and a real Redis."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from devtools.demo import seed_demo
from models.audit import AuditLog
from models.grants import find_grant_by_reference
from models.messages import MessageKind, OutboundMessage
from models.people import Beneficiary
from models.requests import CallbackRequest, Feedback
from models.ussd import record_session_end
from notifications.sms.outbox import owe_text
from notifications.sms.queues import TRANSACTIONAL_QUEUE
from tests.factories import STAFF_PASSWORD, make_staff, register

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
ROW_LINK = re.compile(r'<a href="/beneficiaries/(\d+)">')
MAX_PAGE_BYTES = 200 * 1024


def log_in(client, db, role="officer", districts=None, email=None) -> str:
    email = email or f"{role}@example.org"
    make_staff(db, email, role, districts=districts)
    token = CSRF_INPUT.search(client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/login", data={"email": email, "password": STAFF_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return email


def csrf(client) -> str:
    return CSRF_INPUT.search(client.get("/payments/import").get_data(as_text=True)).group(1)


def references_on(response) -> list[str]:
    return ROW_LINK.findall(response.get_data(as_text=True))


def audit(db, action) -> list[AuditLog]:
    with db.session() as session:
        return session.execute(select(AuditLog).where(AuditLog.action == action)).scalars().all()


CONSOLE_ROUTES = [
    ("GET", "/beneficiaries"),
    ("GET", "/beneficiaries/export.csv"),
    ("GET", "/beneficiaries/12345678"),
    ("POST", "/beneficiaries/12345678/grant"),
    ("GET", "/payments/import"),
    ("POST", "/payments/import"),
    ("POST", "/payments/import/apply"),
]


@pytest.mark.parametrize(("method", "path"), CONSOLE_ROUTES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, method, path):
    response = client.open(path, method=method)
    if method == "POST":
        assert response.status_code == 400  # no session, so no CSRF token: refused before the view
    else:
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize(
    "path",
    ["/beneficiaries/export.csv", "/payments/import", "/beneficiaries/12345678/grant", "/payments/import/apply"],
)
def test_viewers_may_not_export_import_or_move_grants(client, db, path):
    log_in(client, db, "viewer")
    token = CSRF_INPUT.search(client.get("/beneficiaries").get_data(as_text=True)).group(1)
    method = "GET" if path.endswith((".csv", "import")) else "POST"
    assert client.open(path, method=method, data={"csrf_token": token}).status_code == 403


def test_search_by_name_phone_reference_and_national_id(client, db):
    palesa, palesa_phone = register(db, full_name="Palesa Mokoena", national_id="AB123456")
    thabo, _ = register(db, full_name="Thabo Letsie", sex="male")
    log_in(client, db)
    assert references_on(client.get("/beneficiaries?q=moko")) == [palesa]  # any part of the name, any case
    assert references_on(client.get("/beneficiaries?q=THABO")) == [thabo]
    assert references_on(client.get(f"/beneficiaries?q={palesa}")) == [palesa]
    local = palesa_phone.removeprefix("+266")
    assert references_on(client.get(f"/beneficiaries?q={local[:4]} {local[4:]}")) == [palesa]
    assert references_on(client.get("/beneficiaries?q=ab123456")) == [palesa]
    assert references_on(client.get("/beneficiaries?q=100%25")) == []  # a wildcard is matched literally
    assert references_on(client.get("/beneficiaries")) == [thabo, palesa]  # newest first


def test_filters_combine(client, db):
    maseru_woman, _ = register(db, district="Maseru", sex="female")
    register(db, district="Maseru", sex="male")
    register(db, district="Berea", sex="female")
    sesotho, _ = register(db, district="Leribe", language="st")
    log_in(client, db)
    assert references_on(client.get("/beneficiaries?district=Maseru&sex=female")) == [maseru_woman]
    assert references_on(client.get("/beneficiaries?language=st")) == [sesotho]
    assert references_on(client.get("/beneficiaries?status=paid")) == []
    assert len(references_on(client.get("/beneficiaries?status=registered&registered_from=2000-01-01"))) == 4
    assert references_on(client.get("/beneficiaries?registered_to=2000-01-01")) == []
    response = client.get("/beneficiaries?district=Atlantis")
    assert response.status_code == 400 and "unknown district" in response.get_data(as_text=True)


def test_keyset_pages_walk_every_row_once_and_the_page_stays_small(client, db):
    with db.session() as session:
        seed_demo(session, 120)
    log_in(client, db)
    seen, url = [], "/beneficiaries"
    while url:
        response = client.get(url)
        assert len(response.data) < MAX_PAGE_BYTES
        page = references_on(response)
        assert len(page) <= 50
        seen += page
        found = re.search(r'<a rel="next" href="([^"]+)"', response.get_data(as_text=True))
        url = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == len(set(seen)) == 120


def test_pages_cut_by_registration_dates_go_newest_registration_first_and_walk_every_row_once(client, db):
    with db.session() as session:
        seed_demo(session, 120)
        rows = session.execute(select(Beneficiary.id, Beneficiary.created_at).order_by(Beneficiary.id)).all()
        # Two people whose registration time does not follow their id (a correction, a late import): by time they
        # belong at the other end of the list.
        (first_id, first_at), (last_id, last_at) = rows[0], rows[-1]
        session.execute(update(Beneficiary).where(Beneficiary.id == first_id).values(created_at=last_at + timedelta(1)))
        session.execute(update(Beneficiary).where(Beneficiary.id == last_id).values(created_at=first_at - timedelta(1)))
        by_time = session.execute(
            select(Beneficiary.reference).order_by(Beneficiary.created_at.desc(), Beneficiary.id.desc())
        ).scalars()
        expected = list(by_time)
    log_in(client, db)
    seen, url = [], "/beneficiaries?registered_from=2000-01-01"
    while url:
        response = client.get(url)
        seen += references_on(response)
        found = re.search(r'<a rel="next" href="([^"]+)"', response.get_data(as_text=True))
        url = found.group(1).replace("&amp;", "&") if found else None
        assert url is None or "registered_from=2000-01-01" in url
    assert seen == expected


def test_officers_see_only_their_districts(client, db):
    mine, _ = register(db, district="Berea")
    theirs, _ = register(db, district="Maseru")
    log_in(client, db, "officer", districts="Berea")
    assert references_on(client.get("/beneficiaries")) == [mine]
    assert references_on(client.get(f"/beneficiaries?q={theirs}")) == []
    assert client.get(f"/beneficiaries/{theirs}").status_code == 404
    assert client.get(f"/beneficiaries/{mine}").status_code == 200


def test_viewers_see_masked_phones_and_lists_mask_national_ids(client, db):
    reference, phone = register(db, national_id="LS998877")
    log_in(client, db, "viewer")
    listing = client.get("/beneficiaries").get_data(as_text=True)
    assert phone not in listing and f"{phone[:4]}****{phone[-4:]}" in listing
    assert "LS998877" not in listing and "*****877" in listing
    detail = client.get(f"/beneficiaries/{reference}").get_data(as_text=True)
    assert phone not in detail and "LS998877" not in detail
    assert "Move to" not in detail  # viewers are offered no grant moves


def test_one_beneficiary_shows_profile_timeline_sms_ussd_callbacks_and_feedback(client, db):
    reference, phone = register(db, full_name="Lineo Mofokeng", national_id="ZX5544")
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        contact_id = grant.beneficiary.contact_id
        record_session_end(session, session_id="ATUid_1", phone=phone, status="Success", hops_count=7)
        session.add(CallbackRequest(contact_id=contact_id, topic="grant"))
        session.add(Feedback(contact_id=contact_id, text="No SMS since May"))
        message = owe_text(session, grant.beneficiary.contact, MessageKind.STAFF, "Your documents are ready.")
        message.status = "delivered"
    log_in(client, db)
    page = client.get(f"/beneficiaries/{reference}").get_data(as_text=True)
    assert "Lineo Mofokeng" in page and phone in page and "ZX5544" in page  # officers see them in full
    assert "Your documents are ready." in page and "delivered" in page  # every SMS with its status
    assert "ussd" in page and "Success" in page and "Call back: grant" in page and "No SMS since May" in page
    # Only the legal next moves are offered: under_review and withdrawn from registered.
    assert re.findall(r'name="move" value="(\w+)"', page) == ["under_review", "withdrawn"]


def test_a_person_of_a_household_phone_shows_that_the_phone_is_shared(client, db):
    reference, phone = register(db, full_name="Lineo Mofokeng")
    other, _ = register(db, phone, full_name="Thabo Mofokeng", district="Berea")
    log_in(client, db)
    page = client.get(f"/beneficiaries/{reference}").get_data(as_text=True)
    assert "1 other person registered with this number" in page
    assert other not in page and "Thabo" not in page  # who, and in which district, is not this page's to say
    alone, _ = register(db, full_name="Neo Lebona")
    assert "Shared phone" not in client.get(f"/beneficiaries/{alone}").get_data(as_text=True)


def test_moving_a_grant_owes_the_notice_kicks_the_queue_and_writes_the_audit_log(client, db, redis):
    reference, _ = register(db)
    email = log_in(client, db)
    token = csrf(client)
    url = f"/beneficiaries/{reference}/grant"
    assert client.post(url, data={"csrf_token": token, "status": "under_review"}).status_code == 302
    response = client.post(url, data={"csrf_token": token, "status": "approved"})
    assert response.status_code == 400 and "an amount is required" in response.get_data(as_text=True)
    response = client.post(url, data={"csrf_token": token, "status": "paid"})
    assert response.status_code == 409 and "cannot move a grant from under_review to paid" in response.get_data(
        as_text=True
    )
    response = client.post(url, data={"csrf_token": token, "status": "approved", "amount": "M1,500"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Grant moved to approved. The returnee will get an SMS." in page
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        assert grant.status == "approved" and str(grant.amount) == "1500.00"
        assert grant.events[-1].actor == email
        notice = session.execute(
            select(OutboundMessage).where(OutboundMessage.kind == MessageKind.GRANT_NOTICE)
        ).scalar_one()
        assert "M1,500.00" in notice.body
    assert redis.llen(f"rq:queue:{TRANSACTIONAL_QUEUE}") >= 1
    moves = audit(db, "grant.move")
    assert [(entry.actor, entry.details_dict["to_status"]) for entry in moves] == [
        (email, "under_review"),
        (email, "approved"),
    ]
    assert moves[0].ip is not None


def test_not_eligible_needs_a_reason(client, db):
    reference, _ = register(db)
    log_in(client, db, "admin")
    token = csrf(client)
    url = f"/beneficiaries/{reference}/grant"
    client.post(url, data={"csrf_token": token, "status": "under_review"})
    response = client.post(url, data={"csrf_token": token, "status": "not_eligible", "reason": "  "})
    assert response.status_code == 400 and "a reason is required" in response.get_data(as_text=True)
    client.post(url, data={"csrf_token": token, "status": "not_eligible", "reason": "returned in 2018"})
    page = client.get(f"/beneficiaries/{reference}").get_data(as_text=True)
    assert "returned in 2018" in page and "Move to" not in page  # final: nothing left to offer


def test_an_officer_cannot_move_a_grant_in_another_district(client, db):
    theirs, _ = register(db, district="Maseru")
    log_in(client, db, "officer", districts="Berea")
    response = client.post(f"/beneficiaries/{theirs}/grant", data={"csrf_token": csrf(client), "status": "withdrawn"})
    assert response.status_code == 404
    assert audit(db, "grant.move") == []


def test_the_export_is_the_filtered_list_and_is_audited(client, db):
    mine, phone = register(db, district="Berea", national_id="QW123456")
    register(db, district="Maseru")
    email = log_in(client, db, "officer", districts="Berea,Maseru")
    response = client.get("/beneficiaries/export.csv?district=Berea")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(row["reference"], row["phone"], row["national_id"]) for row in rows] == [(mine, "'" + phone, "*****456")]
    [entry] = audit(db, "export.beneficiaries")
    assert entry.actor == email and entry.details_dict == {"district": "Berea", "rows": 1}


def test_a_payment_file_is_checked_then_applied(client, db, redis):
    reference, _ = register(db)
    with db.session() as session:
        from notifications.casework.grants import change_grant_status

        grant = find_grant_by_reference(session, reference)
        for status in ("under_review", "approved", "payment_scheduled"):
            amount = 1500 if status == "approved" else None
            change_grant_status(session, grant, status, actor="setup", amount=amount, channel="mpesa")
    log_in(client, db)
    token = csrf(client)
    content = f"reference,status,amount,channel,payment_reference\n{reference},paid,1500,mpesa,PAY-77\n"
    response = client.post(
        "/payments/import",
        data={"csrf_token": token, "file": (io.BytesIO(content.encode()), "june.csv")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "1 rows: 1 would change a grant, 0 bad." in page
    with db.session() as session:
        assert find_grant_by_reference(session, reference).status == "payment_scheduled"  # a dry run
    response = client.post(
        "/payments/import/apply", data={"csrf_token": token, "content": content, "filename": "june.csv"}
    )
    assert response.status_code == 302
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        assert (grant.status, grant.payment_reference) == ("paid", "PAY-77")
    assert [entry.details_dict["filename"] for entry in audit(db, "payments.import")] == ["june.csv"]
    # Applying the same file again is refused as a whole: the grant is paid already.
    again = client.post("/payments/import/apply", data={"csrf_token": token, "content": content})
    assert again.status_code == 409 and "Nothing was applied" in again.get_data(as_text=True)


def test_a_payment_file_with_a_wrong_header_is_refused(client, db):
    log_in(client, db)
    response = client.post(
        "/payments/import",
        data={"csrf_token": csrf(client), "file": (io.BytesIO(b"ref,state\n1,paid\n"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "wrong header" in response.get_data(as_text=True)
