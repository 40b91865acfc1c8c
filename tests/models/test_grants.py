from decimal import Decimal
from itertools import product

import pytest
from sqlalchemy import select

from models.grants import (
    FINAL_STATUSES,
    TRANSITIONS,
    GrantError,
    GrantEvent,
    GrantStatus,
    IllegalTransitionError,
    find_grant_by_reference,
    format_maloti,
    move_grant,
    parse_amount,
)
from tests.factories import register

S = GrantStatus
EXPECTED_LEGAL = {
    (S.REGISTERED, S.UNDER_REVIEW),
    (S.UNDER_REVIEW, S.APPROVED),
    (S.UNDER_REVIEW, S.NOT_ELIGIBLE),
    (S.APPROVED, S.PAYMENT_SCHEDULED),
    (S.PAYMENT_SCHEDULED, S.PAID),
    (S.PAYMENT_SCHEDULED, S.PAYMENT_FAILED),
    (S.PAYMENT_FAILED, S.PAYMENT_SCHEDULED),
    (S.REGISTERED, S.WITHDRAWN),
    (S.UNDER_REVIEW, S.WITHDRAWN),
    (S.APPROVED, S.WITHDRAWN),
    (S.PAYMENT_SCHEDULED, S.WITHDRAWN),
    (S.PAYMENT_FAILED, S.WITHDRAWN),
}
# A shortest legal path from `registered` to each status, to set up each move's starting point.
PATH_TO = {
    S.REGISTERED: [],
    S.UNDER_REVIEW: [S.UNDER_REVIEW],
    S.APPROVED: [S.UNDER_REVIEW, S.APPROVED],
    S.NOT_ELIGIBLE: [S.UNDER_REVIEW, S.NOT_ELIGIBLE],
    S.PAYMENT_SCHEDULED: [S.UNDER_REVIEW, S.APPROVED, S.PAYMENT_SCHEDULED],
    S.PAID: [S.UNDER_REVIEW, S.APPROVED, S.PAYMENT_SCHEDULED, S.PAID],
    S.PAYMENT_FAILED: [S.UNDER_REVIEW, S.APPROVED, S.PAYMENT_SCHEDULED, S.PAYMENT_FAILED],
    S.WITHDRAWN: [S.WITHDRAWN],
}
MOVE_ARGS = {"reason": "checked by officer", "channel": "mpesa"}


def move_args(target: GrantStatus) -> dict:
    """What any move may carry; the amount is set at the approval."""
    return {**MOVE_ARGS, "amount": Decimal("1500")} if target == S.APPROVED else MOVE_ARGS


def test_transition_table_is_the_products_lifecycle():
    legal = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert legal == EXPECTED_LEGAL
    assert {S.PAID, S.NOT_ELIGIBLE, S.WITHDRAWN} == FINAL_STATUSES


@pytest.mark.parametrize("start", list(GrantStatus))
def test_every_move_from_each_status_is_allowed_or_refused_as_the_lifecycle_says(db, start):
    for target in GrantStatus:
        reference, _ = register(db)
        with db.session() as session:
            grant = find_grant_by_reference(session, reference)
            for step in PATH_TO[start]:
                move_grant(session, grant, step, actor="test", **move_args(step))
        with db.session() as session:
            grant = find_grant_by_reference(session, reference)
            if (start, target) in EXPECTED_LEGAL:
                event = move_grant(session, grant, target, actor="officer@example.org", **move_args(target))
                assert (event.from_status, event.to_status, grant.status) == (start, target, target)
            else:
                with pytest.raises(IllegalTransitionError, match=f"from {start} to {target}"):
                    move_grant(session, grant, target, actor="test", **move_args(target))
        with db.session() as session:
            assert find_grant_by_reference(session, reference).status == (
                target if (start, target) in EXPECTED_LEGAL else start
            )


def test_every_move_is_an_event_with_who_and_why(db):
    reference, _ = register(db)
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        move_grant(session, grant, S.UNDER_REVIEW, actor="officer@example.org", reason="documents received")
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        events = session.execute(select(GrantEvent).where(GrantEvent.grant_id == grant.id).order_by(GrantEvent.id))
        rows = [(e.from_status, e.to_status, e.actor, e.reason) for e in events.scalars()]
    assert rows == [
        (None, "registered", "ussd", None),
        ("registered", "under_review", "officer@example.org", "documents received"),
    ]


@pytest.mark.parametrize(
    ("path", "target", "kwargs", "message"),
    [
        ([S.UNDER_REVIEW], S.NOT_ELIGIBLE, {}, "reason is required"),
        ([], S.WITHDRAWN, {"reason": "  "}, "reason is required"),
        ([S.UNDER_REVIEW], S.APPROVED, {}, "amount is required"),
        ([S.UNDER_REVIEW, S.APPROVED], S.PAYMENT_SCHEDULED, {}, "channel is required"),
        ([S.UNDER_REVIEW, S.APPROVED], S.PAYMENT_SCHEDULED, {"channel": "bitcoin"}, "unknown payment channel"),
        ([], "lost", {}, "unknown status"),
    ],
)
def test_moves_missing_what_they_need_are_refused_and_change_nothing(db, path, target, kwargs, message):
    reference, _ = register(db)
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        for step in path:
            move_grant(session, grant, step, actor="t", amount=Decimal("900") if step == S.APPROVED else None)
    with pytest.raises(GrantError, match=message), db.session() as session:
        move_grant(session, find_grant_by_reference(session, reference), target, actor="t", **kwargs)
    with db.session() as session:
        assert find_grant_by_reference(session, reference).status == (path[-1] if path else S.REGISTERED)


def test_amounts_are_written_and_read_as_maloti():
    assert format_maloti(Decimal("1500")) == "M1,500.00"
    assert format_maloti(Decimal("250.5")) == "M250.50"
    assert format_maloti(None) == "-"
    assert parse_amount("M1,500.00") == Decimal("1500.00")
    assert parse_amount(" 750 ") == Decimal("750")
    for bad in ("0", "-5", "abc", "1.005"):
        with pytest.raises(GrantError):
            parse_amount(bad)


def test_legal_and_illegal_pairs_cover_every_pair():
    assert len(list(product(GrantStatus, GrantStatus))) == 64
    assert all(target in GrantStatus for targets in TRANSITIONS.values() for target in targets)
