"""Payment results files: the dry run shows every change and every bad row; applying is all or nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models.actors import Actor, PermissionDeniedError, Via
from models.audit import AuditLog
from models.grants import (
    MAX_PAYMENT_REFERENCE_LENGTH,
    GrantError,
    GrantRules,
    GrantStatus,
    find_grant_by_reference,
)
from models.messages import MessageKind, OutboundMessage
from models.staff import StaffUser
from notifications.casework.grants import change_grant_status, move_grant_for
from notifications.casework.payments import (
    PaymentImportError,
    PaymentImportRefused,
    apply_payment_results,
    check_payment_results,
    read_payment_file,
)
from tests.factories import make_staff, register

HEADER = "reference,status,amount,channel,payment_reference\n"
# The programme's rules as a development deployment has them: one person may approve and schedule.
RULES = GrantRules(max_amount=Decimal("10000"), four_eyes=False)


def staff(session, email, ip: str | None = None) -> Actor:
    """The console actor of the account `email`."""
    user = session.execute(select(StaffUser).filter_by(email=email)).scalar_one()
    return Actor.for_staff(user, Via.CONSOLE, ip=ip)


def grant_at(db, status: GrantStatus, amount="1500", channel="mpesa", **changes) -> str:
    """A registered beneficiary whose grant has been moved along the usual path to `status`; returns the reference."""
    reference, _ = register(db, **changes)
    path = [GrantStatus.UNDER_REVIEW, GrantStatus.APPROVED, GrantStatus.PAYMENT_SCHEDULED]
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        for step in path[: path.index(status) + 1] if status in path else []:
            scheduling = step == GrantStatus.PAYMENT_SCHEDULED
            change_grant_status(
                session,
                grant,
                step,
                actor="setup",
                amount=Decimal(amount) if step == GrantStatus.APPROVED else None,
                channel=channel if scheduling else None,
            )
    return reference


def statuses(db, *references) -> list[str]:
    with db.session() as session:
        return [find_grant_by_reference(session, reference).status for reference in references]


def notices(db) -> int:
    with db.session() as session:
        return session.execute(
            select(func.count()).select_from(OutboundMessage).where(OutboundMessage.kind == MessageKind.GRANT_NOTICE)
        ).scalar_one()


@pytest.fixture
def admin(db):
    make_staff(db, "admin@example.org", "admin")
    return "admin@example.org"


def test_the_dry_run_lists_every_change_and_every_bad_row_and_changes_nothing(db, admin):
    scheduled = grant_at(db, GrantStatus.PAYMENT_SCHEDULED)
    failing = grant_at(db, GrantStatus.PAYMENT_SCHEDULED)
    approved = grant_at(db, GrantStatus.APPROVED)
    registered = grant_at(db, GrantStatus.REGISTERED)
    duplicated = grant_at(db, GrantStatus.PAYMENT_SCHEDULED)
    before = notices(db)
    content = (
        HEADER
        + f"{scheduled},paid,M1500.00,mpesa,PAY-1\n"
        + f"{failing},payment_failed,,,\n"
        + f"{approved},payment_scheduled,,ecocash,\n"
        + f"{registered},paid,1500,,PAY-2\n"  # illegal: registered -> paid
        + "99999999,paid,1500,mpesa,PAY-3\n"  # unknown reference
        + "11111111,paid,fifteen,,\n"  # bad amount
        + f"{approved},payment_scheduled,,pigeon,\n"  # bad channel (and a duplicate of line 4)
        + f"{duplicated},paid,1500,,A\n"
        + f"{duplicated},paid,1500,,B\n"
        + "\n"
    )
    with db.session() as session:
        report = check_payment_results(session, staff(session, admin), content, rules=RULES)
    errors = {row.line: row.error for row in report.errors}
    assert [row.line for row in report.changes] == [2, 3]
    assert "cannot move a grant from registered to paid" in errors[5]
    assert errors[6] == "unknown reference 99999999"
    assert errors[7].startswith("bad amount")
    assert errors[8].startswith("unknown payment channel 'pigeon'")
    assert "duplicate reference" in errors[4] and "line 8" in errors[4]
    assert "duplicate reference" in errors[9] and "duplicate reference" in errors[10]
    assert report.rows[0].from_status == "payment_scheduled" and report.rows[0].name == "Palesa Mokoena"
    assert not report.ok
    # Nothing moved, no SMS owed, no audit entry.
    assert statuses(db, scheduled, failing, approved) == ["payment_scheduled", "payment_scheduled", "approved"]
    assert notices(db) == before
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(AuditLog)).scalar_one() == 0


def test_an_amount_that_differs_from_the_approved_one_is_a_bad_row(db, admin):
    reference = grant_at(db, GrantStatus.PAYMENT_SCHEDULED, amount="1500")
    with db.session() as session:
        report = check_payment_results(
            session, staff(session, admin), HEADER + f"{reference},paid,1000,,\n", rules=RULES
        )
    assert report.errors[0].error == (
        "the amount M1,000.00 differs from the grant's M1,500.00: a change of amount needs a reason"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("reference,status,amount\n1,paid,1\n", "missing channel, payment_reference"),
        ("reference,status,amount,channel,payment_reference,extra\n", "unknown 'extra'"),
        ("", "the file is empty"),
        (HEADER, "a header but no rows"),
        (b"\xff\xfe\x00r", "not UTF-8"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_as_a_whole(content, reason):
    with pytest.raises(PaymentImportError, match=reason):
        read_payment_file(content)


def test_headers_are_matched_loosely_and_a_spreadsheet_bom_is_ignored():
    header = "\ufeffReference,Status,Amount,Channel,Payment Reference\r\n"
    rows = read_payment_file((header + "12345678,PAID,,M-Pesa,X1\r\n").encode())
    assert (rows[0].reference, rows[0].status, rows[0].channel, rows[0].payment_reference) == (
        "12345678",
        "paid",
        "mpesa",
        "X1",
    )
    assert rows[0].error is None


def test_applying_moves_every_grant_owes_the_notices_and_writes_the_audit_log(db, admin):
    paid = grant_at(db, GrantStatus.PAYMENT_SCHEDULED)
    failed = grant_at(db, GrantStatus.PAYMENT_SCHEDULED)
    before = notices(db)
    content = HEADER + f"{paid},paid,1500,mpesa,PAY-9\n{failed},payment_failed,,,\n"
    with db.session() as session:
        report = apply_payment_results(
            session, staff(session, admin, "10.0.0.1"), content, filename="june.csv", rules=RULES
        )
    assert report.ok and len(report.notices) == 2
    assert statuses(db, paid, failed) == ["paid", "payment_failed"]
    assert notices(db) == before + 2
    with db.session() as session:
        grant = find_grant_by_reference(session, paid)
        assert grant.payment_reference == "PAY-9"
        assert grant.events[-1].actor == admin
        entries = session.execute(select(AuditLog).order_by(AuditLog.id)).scalars().all()
    assert [entry.action for entry in entries] == ["grant.move", "grant.move", "payments.import"]
    summary = entries[-1].details_dict
    assert summary["filename"] == "june.csv" and summary["rows"] == 2
    assert summary["statuses"] == {"paid": 1, "payment_failed": 1}
    assert entries[0].details_dict["via"] == "console" and entries[0].ip == "10.0.0.1"
    # Each move names the file it came from: the `payments.import` entry's id.
    assert {entry.details_dict["payment_file"] for entry in entries[:2]} == {entries[-1].object_id}


def test_one_bad_row_at_apply_time_and_nothing_is_applied(db, admin):
    good = grant_at(db, GrantStatus.PAYMENT_SCHEDULED)
    moved_since = grant_at(db, GrantStatus.PAYMENT_SCHEDULED)
    content = HEADER + f"{good},paid,,,\n{moved_since},paid,,,\n"
    with db.session() as session:
        assert check_payment_results(session, staff(session, admin), content, rules=RULES).ok
    # Between the check and the apply, someone else pays the second grant.
    with db.session() as session:
        move_grant_for(session, staff(session, admin), moved_since, "paid", rules=RULES)
    before = notices(db)
    with pytest.raises(PaymentImportRefused) as refused, db.session() as session:
        apply_payment_results(session, staff(session, admin), content, rules=RULES)
    assert [row.line for row in refused.value.report.errors] == [3]
    assert statuses(db, good) == ["payment_scheduled"]
    assert notices(db) == before
    with db.session() as session:
        actions = session.execute(select(AuditLog.action)).scalars().all()
    assert actions == ["grant.move"]  # only the other officer's move


def test_an_officer_cannot_import_for_another_district(db):
    make_staff(db, "berea@example.org", "officer", districts="Berea")
    elsewhere = grant_at(db, GrantStatus.PAYMENT_SCHEDULED, district="Maseru")
    with db.session() as session:
        report = check_payment_results(
            session, staff(session, "berea@example.org"), HEADER + f"{elsewhere},paid,,,\n", rules=RULES
        )
    assert report.errors[0].error == f"unknown reference {elsewhere}"
    with db.session() as session, pytest.raises(GrantError, match="no beneficiary"):
        move_grant_for(session, staff(session, "berea@example.org"), elsewhere, "paid", rules=RULES)


def test_a_payment_file_row_is_refused_for_what_a_single_move_is_refused_for(db, admin):
    reference = grant_at(db, GrantStatus.PAYMENT_SCHEDULED)
    too_long = "P" * (MAX_PAYMENT_REFERENCE_LENGTH + 1)
    with db.session() as session, pytest.raises(GrantError) as single:
        move_grant_for(session, staff(session, admin), reference, "paid", payment_reference=too_long, rules=RULES)
    with db.session() as session:
        report = check_payment_results(
            session, staff(session, admin), HEADER + f"{reference},paid,,,{too_long}\n", rules=RULES
        )
    assert report.errors[0].error == str(single.value)
    assert "the payment reference is 65 characters" in str(single.value)
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        assert (grant.status, grant.payment_reference) == ("payment_scheduled", None)
        assert session.execute(select(AuditLog)).first() is None


def test_viewers_neither_move_grants_nor_import_payments(db):
    make_staff(db, "viewer@example.org", "viewer")
    reference = grant_at(db, GrantStatus.PAYMENT_SCHEDULED)
    with db.session() as session:
        viewer = staff(session, "viewer@example.org")
        with pytest.raises(PermissionDeniedError, match="needs the officer role"):
            move_grant_for(session, viewer, reference, "paid", rules=RULES)
        with pytest.raises(PermissionDeniedError, match="needs the officer role"):
            check_payment_results(session, viewer, HEADER + f"{reference},paid,,,\n", rules=RULES)
    assert statuses(db, reference) == ["payment_scheduled"]
