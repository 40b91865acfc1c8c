"""The staff inbox: incoming SMS that were not keywords, call-back requests and problem reports from USSD.

The handlers read the form and call `notifications.casework.inbox`; the rules and the audit entries live there.
A reply is an outbox row, kicked to the transactional queue after the commit.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from gateway.auth import current_actor, login_required
from gateway.console.campaigns import LANGUAGE_NAMES, local_time
from gateway.services import get_services
from models.messages import MessagePriority
from models.staff import Role
from notifications.casework.inbox import (
    REPLY_MAX_CHARS,
    AlreadyHandledError,
    InboxError,
    InboxItemNotFound,
    InboxKind,
    InboxView,
    assign,
    assignable_staff,
    count_open,
    get_item,
    list_inbox,
    mark_handled,
    reply,
    staff_messages_to,
)
from notifications.sms.queues import kick

KIND_NAMES = {InboxKind.SMS: "SMS", InboxKind.CALLBACK: "Call-back request", InboxKind.FEEDBACK: "Problem report"}
VIEW_NAMES = {
    InboxView.OPEN: "Open",
    InboxView.MINE: "Assigned to me",
    InboxView.HANDLED: "Handled",
    InboxView.ALL: "All",
}
# What the item page says after a successful action (`?done=…`), instead of a flash message in the session.
DONE_MESSAGES = {
    "assign": "Assignment saved.",
    "reply": "Reply queued: it leaves with the next transactional batch.",
    "handle": "Marked handled.",
}


def _districts() -> tuple[str, ...]:
    """The districts whose items this staff member sees; empty means all."""
    return current_actor().district_list


bp = Blueprint("inbox", __name__)


@bp.get("/inbox")
@login_required
def inbox_list():
    """Open items oldest first (they have waited longest); filters by view and kind."""
    view = request.args.get("view", InboxView.OPEN)
    kind = request.args.get("kind", "")
    if view not in set(InboxView) or (kind and kind not in set(InboxKind)):
        abort(400, description="Unknown inbox view or kind.")
    with get_services().db.session() as session:
        items = list_inbox(
            session,
            view=view,
            kinds=(kind,) if kind else tuple(InboxKind),
            staff_id=g.staff.id,
            districts=_districts(),
        )
        counts = count_open(session, _districts())
    return render_template(
        "inbox/list.html",
        items=items,
        counts=counts,
        view=view,
        kind=kind,
        kind_names=KIND_NAMES,
        view_names=VIEW_NAMES,
        local_time=local_time,
    )


def _item_page(kind: str, item_id: int, error: str | None = None, status: int = 200, draft: str = ""):
    with get_services().db.session() as session:
        try:
            item = get_item(session, kind, item_id, _districts())
        except InboxItemNotFound:
            abort(404, description=f"There is no {kind} item {item_id} in your inbox.")
        history = staff_messages_to(session, item.phone)
        colleagues = assignable_staff(session)
    officer = g.staff.has_role(Role.OFFICER)
    return (
        render_template(
            "inbox/item.html",
            item=item,
            # Officers need the whole number to call back; viewers read the masked one.
            phone=item.phone if officer else item.masked_phone,
            history=history,
            colleagues=colleagues,
            can_act=officer,
            error=error,
            done=DONE_MESSAGES.get(request.args.get("done", "")),
            draft=draft,
            reply_max=REPLY_MAX_CHARS,
            kind_names=KIND_NAMES,
            language_names=LANGUAGE_NAMES,
            local_time=local_time,
        ),
        status,
    )


@bp.get("/inbox/<kind>/<int:item_id>")
@login_required
def inbox_item(kind: str, item_id: int):
    """One item: who sent it, what it says, earlier staff replies, and the assign / reply / handle forms."""
    return _item_page(kind, item_id)


def _act(kind: str, item_id: int, done: str, action, draft: str = ""):
    """Run `action(session)` in one transaction: (True, back to the item) or (False, the item with the reason)."""
    try:
        with get_services().db.session() as session:
            action(session)
    except InboxItemNotFound:
        abort(404, description=f"There is no {kind} item {item_id} in your inbox.")
    except InboxError as exc:
        status = 409 if isinstance(exc, AlreadyHandledError) else 400
        return False, _item_page(kind, item_id, error=str(exc), status=status, draft=draft)
    return True, redirect(url_for("console.inbox.inbox_item", kind=kind, item_id=item_id, done=done))


@bp.post("/inbox/<kind>/<int:item_id>/assign")
@login_required(role=Role.OFFICER)
def inbox_assign(kind: str, item_id: int):
    """Give the item to a colleague, or to no one (an empty choice)."""
    assignee = request.form.get("assigned_to", "")
    if assignee and not assignee.isdigit():
        abort(400, description="Choose a colleague from the list.")
    _ok, response = _act(
        kind,
        item_id,
        "assign",
        lambda session: assign(session, current_actor(), kind, item_id, int(assignee) if assignee else None),
    )
    return response


@bp.post("/inbox/<kind>/<int:item_id>/reply")
@login_required(role=Role.OFFICER)
def inbox_reply(kind: str, item_id: int):
    """Answer the sender by SMS (and close the item if asked); the send is kicked after the commit."""
    text = request.form.get("text", "")
    sent, response = _act(
        kind,
        item_id,
        "reply",
        lambda session: reply(
            session, current_actor(), kind, item_id, text, handled=request.form.get("handled") == "1"
        ),
        draft=text,
    )
    if sent:
        kick(get_services().redis, MessagePriority.TRANSACTIONAL)
    return response


@bp.post("/inbox/<kind>/<int:item_id>/handle")
@login_required(role=Role.OFFICER)
def inbox_handle(kind: str, item_id: int):
    """Close the item."""
    _ok, response = _act(
        kind,
        item_id,
        "handle",
        lambda session: mark_handled(session, current_actor(), kind, item_id),
    )
    return response
