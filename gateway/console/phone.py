"""The practice phone: a feature phone drawn in the console that dials the real USSD menu, with its SMS inbox beside it.

The browser never talks to the webhook: it posts the officer's key presses here, and this module builds the form
the provider would post (sessionId, serviceCode, phoneNumber, networkCode, the cumulative text) and hands it to the
webhook's own hop handling (`gateway.webhooks.answer_ussd`). So the webhook's token and allow-list never reach the
browser, and the rules and audit entry of a session live in `menus.practice`.

The session (its id, number, text so far and last screen) is kept in the staff member's signed session cookie, so
the browser cannot switch numbers in the middle of one. The page works without script: the keypad's keys are
submit buttons that add to the answer on the server; a few lines of script make them type in place, count the
characters and refresh the inbox.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for

from gateway.auth import current_actor, login_required
from gateway.console.campaigns import local_time
from gateway.services import get_services
from gateway.webhooks import answer_ussd
from menus.practice import PracticeNumberError, allowed_number, default_number, messages_to, start_practice_session
from models.staff import Role
from notifications.sms.encoding import gsm7_length
from notifications.sms.providers.base import CallbackError

bp = Blueprint("phone", __name__)

SESSION_KEY = "practice_phone"
# The service code the phone dials when the deployment answers any (USSD_SERVICE_CODE empty).
DEFAULT_SERVICE_CODE = "*123#"
# Keys of the keypad, in the order a feature phone lays them out.
KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")
DELETE_KEY = "del"
# Longest answer one screen takes: as long as the webhook accepts for the whole session.
MAX_ANSWER_CHARS = 200
CONTINUE = "CON"
# How often the page's script refreshes the inbox pane, in milliseconds: a confirmation SMS shows within seconds.
INBOX_REFRESH_MS = 3000


def _state() -> dict | None:
    return session.get(SESSION_KEY)


def _hop(state: dict, text: str) -> dict:
    """One hop through the webhook's handling, as the provider would make it; the state after it."""
    settings = get_services().settings
    allowed_number(settings, state["phone"])  # TEST_NUMBERS may have changed since the dial
    form = {
        "sessionId": state["id"],
        "serviceCode": settings.ussd_service_code or DEFAULT_SERVICE_CODE,
        "phoneNumber": state["phone"],
        "networkCode": state["network"],
        "text": text,
    }
    try:
        answer = answer_ussd(form).get_data(as_text=True)
    except CallbackError as exc:
        answer = f"END The gateway refused this hop: {exc}"
    kind, _, screen = answer.partition(" ")
    return {**state, "text": text, "screen": screen, "ended": kind != CONTINUE, "draft": ""}


def _inbox(phone: str | None) -> list[dict]:
    if not phone:
        return []
    with get_services().db.session() as db_session:
        return [
            {"at": local_time(message.created_at), "status": message.status, "body": message.body, "id": message.id}
            for message in messages_to(db_session, phone)
        ]


def _page(error: str | None = None, status: int = 200, number: str | None = None):
    state = _state()
    settings = get_services().settings
    screen = state["screen"] if state else ""
    return (
        render_template(
            "phone/index.html",
            state=state,
            error=error,
            number=number or (state["phone"] if state else default_number(settings)),
            test_numbers=settings.test_numbers,
            production=settings.is_production,
            screen=screen,
            screen_length=gsm7_length(screen),
            max_chars=settings.ussd_max_chars,
            keys=KEYS,
            max_answer=MAX_ANSWER_CHARS,
            refresh_ms=INBOX_REFRESH_MS,
            messages=_inbox(state["phone"] if state else None),
        ),
        status,
    )


@bp.get("/phone")
@login_required(role=Role.OFFICER)
def phone():
    """The phone, its screen and the number's SMS inbox."""
    return _page()


@bp.post("/phone/dial")
@login_required(role=Role.OFFICER)
def dial():
    """Start a session from the number typed (audited), and show the first screen."""
    number = request.form.get("number", "").strip()
    try:
        with get_services().db.session() as db_session:
            practice = start_practice_session(db_session, current_actor(), get_services().settings, number)
    except PracticeNumberError as exc:
        session.pop(SESSION_KEY, None)
        return _page(str(exc), 400, number=number)
    state = {"id": practice.session_id, "phone": practice.phone, "network": practice.network_code}
    session[SESSION_KEY] = _hop(state, "")
    return redirect(url_for(".phone"))


@bp.post("/phone/send")
@login_required(role=Role.OFFICER)
def send():
    """A key of the keypad (added to the answer, without script) or the answer sent as the next hop."""
    state = _state()
    if state is None or state["ended"]:
        return _page("Dial first: there is no session going on.", 409)
    answer = request.form.get("answer", "")[:MAX_ANSWER_CHARS]
    key = request.form.get("key")
    if key in KEYS:
        session[SESSION_KEY] = {**state, "draft": (answer + key)[:MAX_ANSWER_CHARS]}
    elif key == DELETE_KEY:
        session[SESSION_KEY] = {**state, "draft": answer[:-1]}
    else:
        text = f"{state['text']}*{answer}" if state["text"] else answer
        try:
            session[SESSION_KEY] = _hop(state, text)
        except PracticeNumberError as exc:
            session.pop(SESSION_KEY, None)
            return _page(str(exc), 403)
    return redirect(url_for(".phone"))


@bp.post("/phone/hang-up")
@login_required(role=Role.OFFICER)
def hang_up():
    """End the session on this side, as a caller pressing the red key; the inbox stays, the next dial starts anew."""
    state = _state()
    if state is not None:
        session[SESSION_KEY] = {**state, "ended": True, "screen": "", "draft": ""}
    return redirect(url_for(".phone"))


@bp.get("/phone/inbox")
@login_required(role=Role.OFFICER)
def inbox():
    """The inbox pane alone, for the page's refresh."""
    state = _state()
    return render_template("phone/_inbox.html", messages=_inbox(state["phone"] if state else None), state=state)
