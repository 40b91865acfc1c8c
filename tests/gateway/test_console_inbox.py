"""Inbox pages through the real app on both databases and a real Redis: list, assign, reply, mark handled."""

from __future__ import annotations

import re

from rq import Queue
from sqlalchemy import select

from models.messages import MessageKind, OutboundMessage
from notifications.sms.queues import TRANSACTIONAL_QUEUE
from tests.factories import make_staff, next_phone, register
from tests.gateway.test_auth import audit_actions, csrf_from, login
from tests.notifications.casework.test_inbox import callback, feedback, incoming


def staff_login(client, db, email="officer@example.org", role="officer", districts=None) -> int:
    staff_id = make_staff(db, email, role, districts=districts)
    login(client, email)
    return staff_id


def post(client, path, **form):
    return client.post(path, data={**form, "csrf_token": csrf_from(client, "/inbox")})


def test_the_inbox_lists_open_sms_call_backs_and_reports_with_masked_numbers(client, db, limits):
    _, phone = register(db, full_name="Lineo Thabane", district="Leribe")
    incoming(db, limits, phone, "When is the payment?")
    incoming(db, limits, phone, "STOP")
    callback(db, next_phone(), "registration")
    feedback(db, next_phone(), "Nobody answered at the office")
    staff_login(client, db, role="viewer")
    page = client.get("/inbox").get_data(as_text=True)
    assert "When is the payment?" in page and "Lineo Thabane (Leribe)" in page
    assert "Call back about: registration" in page and "Nobody answered at the office" in page
    assert "STOP" not in page and phone not in page and f"{phone[:4]}****{phone[-4:]}" in page
    only_sms = client.get("/inbox?kind=sms").get_data(as_text=True)
    assert "When is the payment?" in only_sms and "Call back about" not in only_sms
    assert client.get("/inbox?view=nonsense").status_code == 400


def test_an_officer_assigns_replies_and_the_item_is_handled(client, db, redis, limits):
    officer_id = staff_login(client, db)
    make_staff(db, "colleague@example.org", "officer")
    _, phone = register(db, language="st")
    item_id = incoming(db, limits, phone, "Ke kopa ho letsetsoa")
    item_path = f"/inbox/sms/{item_id}"
    page = client.get(item_path).get_data(as_text=True)
    assert phone in page  # officers see the whole number, to call back
    assert 'name="csrf_token"' in page and "colleague@example.org" in page

    response = post(client, f"{item_path}/assign", assigned_to=str(officer_id))
    assert response.status_code == 302 and response.headers["Location"] == f"{item_path}?done=assign"
    assert "Assigned to me" in client.get("/inbox?view=mine").get_data(as_text=True)
    assert "Ke kopa ho letsetsoa" in client.get("/inbox?view=mine").get_data(as_text=True)

    response = post(client, f"{item_path}/reply", text="Re tla u letsetsa hosane.", handled="1")
    assert response.status_code == 302
    with db.session() as session:
        (message,) = session.execute(select(OutboundMessage)).scalars()
    assert (message.phone, message.kind, message.body, message.language) == (
        phone,
        MessageKind.STAFF,
        "Re tla u letsetsa hosane.",
        "st",
    )
    assert [job.func_name for job in Queue(TRANSACTIONAL_QUEUE, connection=redis).jobs] == [
        "notifications.sms.jobs.drain_outbox"
    ]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Reply queued" in page and "handled by officer@example.org" in page
    assert "Re tla u letsetsa hosane." in page  # in the history of staff SMS to this number
    assert "Ke kopa ho letsetsoa" not in client.get("/inbox").get_data(as_text=True)
    assert [action for action, _ in audit_actions(db) if action.startswith("inbox.")] == [
        "inbox.assign",
        "inbox.reply",
        "inbox.handle",
    ]


def test_a_refused_reply_keeps_the_draft_and_a_second_close_is_a_conflict(client, db, redis):
    staff_login(client, db)
    item_id = callback(db, next_phone())
    response = post(client, f"/inbox/callback/{item_id}/reply", text="x" * 500)
    assert response.status_code == 400 and "keep it to 459" in response.get_data(as_text=True)
    assert "x" * 500 in response.get_data(as_text=True)
    assert post(client, f"/inbox/callback/{item_id}/handle").status_code == 302
    response = post(client, f"/inbox/callback/{item_id}/handle")
    assert response.status_code == 409 and "already handled by officer@example.org" in response.get_data(as_text=True)
    assert Queue(TRANSACTIONAL_QUEUE, connection=redis).count == 0


def test_viewers_read_items_with_masked_numbers_but_cannot_act(client, db):
    phone = next_phone()
    item_id = feedback(db, phone)
    staff_login(client, db, "viewer@example.org", role="viewer")
    page = client.get(f"/inbox/feedback/{item_id}").get_data(as_text=True)
    assert phone not in page and "<textarea" not in page
    for action, form in (("assign", {"assigned_to": ""}), ("reply", {"text": "hi"}), ("handle", {})):
        assert post(client, f"/inbox/feedback/{item_id}/{action}", **form).status_code == 403
    assert not [action for action, _ in audit_actions(db) if action.startswith("inbox.")]


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    for path in ("/inbox", "/inbox/sms/1"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_items_outside_an_officers_districts_are_not_found(client, db, limits):
    _, maseru = register(db, district="Maseru")
    item_id = incoming(db, limits, maseru, "Maseru question")
    staff_login(client, db, districts="Leribe")
    assert "Maseru question" not in client.get("/inbox").get_data(as_text=True)
    assert client.get(f"/inbox/sms/{item_id}").status_code == 404
    assert post(client, f"/inbox/sms/{item_id}/handle").status_code == 404
    assert client.get("/inbox/letters/1").status_code == 404


def test_assigning_to_a_viewer_is_refused(client, db):
    staff_login(client, db)
    viewer_id = make_staff(db, "viewer@example.org", "viewer")
    item_id = callback(db, next_phone())
    response = post(client, f"/inbox/callback/{item_id}/assign", assigned_to=str(viewer_id))
    assert response.status_code == 400 and "only to active officers" in response.get_data(as_text=True)
    assert post(client, f"/inbox/callback/{item_id}/assign", assigned_to="abc").status_code == 400
    assert re.search(r'id="item-assignee">no one<', client.get(f"/inbox/callback/{item_id}").get_data(as_text=True))
