"""Operator commands, run through Flask's CLI runner against the real database and Redis."""

from __future__ import annotations

import getpass

from sqlalchemy import select

from models.grants import find_grant_by_reference
from models.messages import MessageStatus, OutboundMessage
from notifications.sms.queues import TRANSACTIONAL_QUEUE
from tests.factories import register


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


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
