"""Operator commands, run through Flask's CLI runner against the real database and Redis."""

from __future__ import annotations

import getpass
import html
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from models.audit import AuditLog
from models.grants import MAX_PAYMENT_REFERENCE_LENGTH, MAX_REASON_LENGTH, find_grant_by_reference
from models.messages import MessageStatus, OutboundMessage
from notifications.sms.queues import TRANSACTIONAL_QUEUE
from tests.factories import make_staff, register
from tests.gateway.test_api_beneficiaries import bearer
from tests.gateway.test_console_beneficiaries import csrf, log_in

CONSOLE_ERROR = re.compile(r'<p class="error" role="alert">([^<]*)</p>')


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def grant_moves(db) -> list[AuditLog]:
    with db.session() as session:
        return list(
            session.execute(select(AuditLog).where(AuditLog.action == "grant.move").order_by(AuditLog.id)).scalars()
        )


def test_a_cli_grant_move_is_audited_naming_the_operator_or_the_account(app, db):
    reference, _ = register(db, district="Maseru")
    make_staff(db, "officer@example.org", "officer", districts="Maseru")
    assert run(app, "grants", "set-status", reference, "under_review").exit_code == 0
    result = run(app, "grants", "set-status", reference, "approved", "--amount", "1500", "--as", "Officer@Example.org")
    assert (result.exit_code, result.output.strip()) == (0, "approved")
    operator = f"cli:{getpass.getuser()}"
    moves = grant_moves(db)
    assert [(e.actor, e.details_dict["via"], e.details_dict["to_status"]) for e in moves] == [
        (operator, "cli", "under_review"),
        ("officer@example.org", "cli", "approved"),
    ]
    assert moves[1].details_dict["reference"] == reference and Decimal(moves[1].details_dict["amount"]) == 1500
    with db.session() as session:
        events = find_grant_by_reference(session, reference).events
        assert [event.actor for event in events[1:]] == [operator, "officer@example.org"]


def test_with_as_the_accounts_role_and_districts_apply(app, db):
    reference, _ = register(db, district="Maseru")
    make_staff(db, "viewer@example.org", "viewer")
    make_staff(db, "berea@example.org", "officer", districts="Berea")
    make_staff(db, "gone@example.org", "officer", active=False)
    viewer = run(app, "grants", "set-status", reference, "under_review", "--as", "viewer@example.org")
    assert viewer.exit_code == 1 and "needs the officer role" in viewer.output
    elsewhere = run(app, "grants", "set-status", reference, "under_review", "--as", "berea@example.org")
    assert elsewhere.exit_code == 1 and f"no beneficiary with reference {reference}" in elsewhere.output
    disabled = run(app, "grants", "set-status", reference, "under_review", "--as", "gone@example.org")
    assert disabled.exit_code == 1 and "no active staff account" in disabled.output
    with db.session() as session:
        assert find_grant_by_reference(session, reference).status == "registered"
    assert grant_moves(db) == []


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("payment_reference", "P" * (MAX_PAYMENT_REFERENCE_LENGTH + 1), "the payment reference is 65 characters"),
        ("channel", "pigeon", "unknown payment channel 'pigeon'"),
        ("reason", "r" * (MAX_REASON_LENGTH + 1), "the reason is 501 characters"),
    ],
)
def test_the_console_the_api_and_the_cli_refuse_bad_input_alike_and_store_nothing(app, client, db, field, value, words):
    reference, _ = register(db)
    run(app, "grants", "set-status", reference, "under_review")
    run(app, "grants", "set-status", reference, "approved", "--amount", "1500")
    before = len(grant_moves(db))
    move = {"status": "payment_scheduled", "channel": "mpesa", field: value}

    log_in(client, db)
    page = client.post(f"/beneficiaries/{reference}/grant", data={"csrf_token": csrf(client), **move})
    console = html.unescape(CONSOLE_ERROR.search(page.get_data(as_text=True)).group(1))
    api = client.post(f"/api/v1/beneficiaries/{reference}/grant/events", json=move, headers=bearer(db, "admin"))
    options = [f"--{name.replace('_', '-')}={text}" for name, text in move.items() if name != "status"]
    cli = run(app, "grants", "set-status", reference, "payment_scheduled", *options)

    assert (page.status_code, api.status_code, cli.exit_code) == (400, 400, 1)
    assert words in console
    assert api.get_json()["error"] == console
    assert cli.output.strip() == f"refused: {console}"
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        assert (grant.status, grant.payment_channel, grant.payment_reference) == ("approved", None, None)
        assert len(grant.events) == 3
    assert len(grant_moves(db)) == before


def test_set_status_moves_the_grant_prints_it_and_owes_the_notice(app, db, redis):
    reference, phone = register(db, language="st")
    assert run(app, "grants", "set-status", reference, "under_review").output.strip() == "under_review"
    result = run(app, "grants", "set-status", reference, "approved", "--amount", "M1,500.00")
    assert (result.exit_code, result.output.strip()) == (0, "approved")
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        assert (grant.status, str(grant.amount)) == ("approved", "1500.00")
        assert grant.events[-1].actor == f"cli:{getpass.getuser()}"
        [notice] = session.execute(select(OutboundMessage)).scalars().all()
    assert notice.phone == phone and "M1,500.00" in notice.body and notice.language == "st"
    assert redis.llen(f"rq:queue:{TRANSACTIONAL_QUEUE}") == 1


def test_an_illegal_move_exits_1_with_the_reason_and_changes_nothing(app, db):
    reference, _ = register(db)
    result = run(app, "grants", "set-status", reference, "paid")
    assert result.exit_code == 1
    assert "cannot move a grant from registered to paid" in result.output
    with db.session() as session:
        assert find_grant_by_reference(session, reference).status == "registered"
        assert session.execute(select(OutboundMessage)).first() is None


def test_a_move_that_needs_a_reason_is_refused_without_one(app, db):
    reference, _ = register(db)
    result = run(app, "grants", "set-status", reference, "withdrawn")
    assert result.exit_code == 1 and "reason is required" in result.output
    assert run(app, "grants", "set-status", reference, "withdrawn", "--reason", "left").exit_code == 0


def test_an_unknown_reference_exits_1(app, db):
    result = run(app, "grants", "set-status", "99999999", "under_review")
    assert result.exit_code == 1 and "no beneficiary" in result.output


def test_sms_send_queues_a_message_and_status_shows_it(app, db, redis):
    result = run(app, "sms", "send", "58000123", "Your documents are ready.")
    assert result.exit_code == 0
    message_id = int(result.output.strip())
    status = run(app, "sms", "status", str(message_id)).output
    assert "queued" in status and "+266****0123" in status and "58000123" not in status
    assert redis.llen(f"rq:queue:{TRANSACTIONAL_QUEUE}") == 1
    assert run(app, "sms", "send", "+254712345678", "hi").exit_code != 0


def test_retry_failed_requeues_failed_messages_only(app, db):
    ids = [int(run(app, "sms", "send", f"5800012{n}", f"Text {n}").output) for n in range(3)]
    with db.session() as session:
        for message_id, status in zip(ids, ("failed", "delivered", "failed"), strict=True):
            session.get(OutboundMessage, message_id).status = status
    assert run(app, "sms", "retry-failed").output.strip() == "2"
    with db.session() as session:
        statuses = [session.get(OutboundMessage, message_id).status for message_id in ids]
    assert statuses == [MessageStatus.QUEUED, MessageStatus.DELIVERED, MessageStatus.QUEUED]
    assert run(app, "sms", "retry-failed", "--since", "2999-01-01").output.strip() == "0"


def test_db_upgrade_is_idempotent(app):
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0 and "head" in result.output
