"""Grant amounts cannot be changed quietly: the attacks of docs/security.md item 6, through every interface.

An amount is set at the approval and kept on its event; a later different amount is its own event and audit entry
with the old and new amounts and a reason; the ceiling holds; NaN, infinities and absurd exponents are a 400 with a
reason (never a 500), in the console, the API's JSON and a payment results file; and with `GRANT_FOUR_EYES` whoever
set a grant's amount cannot schedule its payment, whichever interface they use.
"""

from __future__ import annotations

import getpass
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from config import load_settings
from models.audit import AuditLog
from models.grants import GrantError, GrantEvent, find_grant_by_reference, parse_amount
from models.staff import StaffUser, issue_token
from tests.factories import make_staff, register
from tests.gateway.test_api_beneficiaries import bearer
from tests.gateway.test_console_beneficiaries import csrf, log_in

ABSURD_AMOUNTS = ["NaN", "sNaN", "Infinity", "1e999999", "1E+30", "1" * 5000]
FOUR_EYES_REFUSAL = "another officer must schedule its payment"


def moved(db, reference, *steps, actor="setup"):
    """Move the grant through `steps` ((status, options) pairs) as `actor`, outside any interface."""
    from notifications.casework.grants import change_grant_status

    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        for status, options in steps:
            change_grant_status(session, grant, status, actor=actor, **options)


def approved(db, amount="1500", actor="setup", **changes) -> str:
    reference, _ = register(db, **changes)
    moved(db, reference, ("under_review", {}), ("approved", {"amount": Decimal(amount)}), actor=actor)
    return reference


def grant_state(db, reference):
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        events = [(e.from_status, e.to_status, e.amount, e.previous_amount, e.reason) for e in grant.events]
        return grant.status, grant.amount, events


def token_of(db, email) -> dict:
    """A bearer header for the existing account `email`."""
    with db.session() as session:
        _, token = issue_token(session, session.execute(select(StaffUser).filter_by(email=email)).scalar_one(), "t")
    return {"Authorization": f"Bearer {token}"}


def audit(db, action) -> list[AuditLog]:
    with db.session() as session:
        return list(session.execute(select(AuditLog).where(AuditLog.action == action)).scalars())


@pytest.mark.parametrize("text", ABSURD_AMOUNTS)
def test_parse_amount_refuses_absurd_numbers_with_a_reason(text):
    with pytest.raises(GrantError, match="amount"):
        parse_amount(text)


def test_the_approval_event_records_the_amount(client, db):
    reference, _ = register(db)
    moved(db, reference, ("under_review", {}))
    log_in(client, db)
    response = client.post(
        f"/beneficiaries/{reference}/grant", data={"csrf_token": csrf(client), "status": "approved", "amount": "1500"}
    )
    assert response.status_code == 302
    assert grant_state(db, reference)[2][-1] == ("under_review", "approved", Decimal("1500"), None, None)


@pytest.mark.parametrize("text", ABSURD_AMOUNTS)
def test_the_console_answers_absurd_amounts_with_a_400_and_a_reason(client, db, text):
    reference, _ = register(db)
    moved(db, reference, ("under_review", {}))
    log_in(client, db)
    response = client.post(
        f"/beneficiaries/{reference}/grant", data={"csrf_token": csrf(client), "status": "approved", "amount": text}
    )
    assert response.status_code == 400 and "amount" in response.get_data(as_text=True)
    assert grant_state(db, reference)[:2] == ("under_review", None)


@pytest.mark.parametrize(
    "raw", ['"NaN"', '"Infinity"', "1e400", "-1e400", '"1E+30"', "1e30", '"1e999999"', "0.001", "-0", "true"]
)
def test_the_api_answers_absurd_json_amounts_with_a_400_and_a_reason(client, db, raw):
    """A JSON number like 1e400 parses to an infinite float in Python: it must still be a 400, never a 500."""
    reference, _ = register(db)
    moved(db, reference, ("under_review", {}))
    response = client.post(
        f"/api/v1/beneficiaries/{reference}/grant/events",
        data=f'{{"status": "approved", "amount": {raw}}}',
        content_type="application/json",
        headers=bearer(db),
    )
    assert response.status_code == 400 and "amount" in response.get_json()["error"]
    assert grant_state(db, reference)[:2] == ("under_review", None)


@pytest.mark.parametrize("text", ["NaN", "inf", "1e999999", "1E+30", "20000"])
def test_a_payment_file_row_with_an_absurd_amount_is_a_bad_row_not_a_500(client, db, text):
    reference = approved(db)
    moved(db, reference, ("payment_scheduled", {"channel": "mpesa"}))
    log_in(client, db)
    content = f"reference,status,amount,channel,payment_reference\n{reference},paid,{text},mpesa,PAY-1\n"
    checked = client.post(
        "/payments/import", data={"csrf_token": csrf(client), "file": (io.BytesIO(content.encode()), "june.csv")}
    )
    assert checked.status_code == 200 and "amount" in checked.get_data(as_text=True)
    applied = client.post(
        "/payments/import/apply", data={"csrf_token": csrf(client), "content": content, "filename": "june.csv"}
    )
    assert applied.status_code == 409 and "amount" in applied.get_data(as_text=True)
    assert grant_state(db, reference)[:2] == ("payment_scheduled", Decimal("1500"))


def test_the_ceiling_is_a_setting_and_holds_in_every_interface(app, client, db, make_app):
    reference, _ = register(db)
    moved(db, reference, ("under_review", {}))
    over = client.post(
        f"/api/v1/beneficiaries/{reference}/grant/events",
        json={"status": "approved", "amount": 10000.01},
        headers=bearer(db),
    )
    assert over.status_code == 400 and "GRANT_MAX_AMOUNT" in over.get_json()["error"]
    cli = app.test_cli_runner().invoke(args=["grants", "set-status", reference, "approved", "--amount", "M10,000.01"])
    assert cli.exit_code == 1 and "ceiling" in cli.output
    lower = make_app(grant_max_amount=Decimal("2000")).test_client()
    refused = lower.post(
        f"/api/v1/beneficiaries/{reference}/grant/events",
        json={"status": "approved", "amount": "2500"},
        headers=bearer(db, email="other@example.org"),
    )
    assert refused.status_code == 400 and "M2,000.00" in refused.get_json()["error"]
    assert grant_state(db, reference)[:2] == ("under_review", None)
    assert load_settings({"GRANT_MAX_AMOUNT": "7500"}, app_env="test").grant_max_amount == Decimal("7500")


def test_a_different_amount_later_needs_a_reason_and_is_its_own_audited_event(client, db):
    reference = approved(db)
    headers = bearer(db)
    quiet = client.post(
        f"/api/v1/beneficiaries/{reference}/grant/events",
        json={"status": "payment_scheduled", "channel": "mpesa", "amount": "9000"},
        headers=headers,
    )
    assert quiet.status_code == 400 and "needs a reason" in quiet.get_json()["error"]
    assert grant_state(db, reference)[:2] == ("approved", Decimal("1500")) and not audit(db, "grant.amount_change")
    same = client.post(
        f"/api/v1/beneficiaries/{reference}/grant/events",
        json={"status": "payment_scheduled", "channel": "mpesa", "amount": "1500.00"},
        headers=headers,
    )
    assert same.status_code == 201 and not audit(db, "grant.amount_change")  # repeating the amount is no change
    moved(db, reference, ("payment_failed", {}))
    changed = client.post(
        f"/api/v1/beneficiaries/{reference}/grant/events",
        json={"status": "payment_scheduled", "amount": "1750", "reason": "household grew to six"},
        headers=headers,
    )
    assert changed.status_code == 201
    status, amount, events = grant_state(db, reference)
    assert (status, amount) == ("payment_scheduled", Decimal("1750"))
    assert events[-2:] == [
        ("payment_failed", "payment_failed", Decimal("1750"), Decimal("1500"), "household grew to six"),
        ("payment_failed", "payment_scheduled", None, None, "household grew to six"),
    ]
    [entry] = audit(db, "grant.amount_change")
    assert entry.actor == "officer@example.org" and entry.details_dict["via"] == "api"
    assert (entry.details_dict["old_amount"], entry.details_dict["new_amount"]) == ("1500.00", "1750")
    assert entry.details_dict["reason"] == "household grew to six"


def test_a_payment_file_cannot_change_an_amount(db, client):
    reference = approved(db)
    moved(db, reference, ("payment_scheduled", {"channel": "mpesa"}))
    log_in(client, db)
    content = f"reference,status,amount,channel,payment_reference\n{reference},paid,9000,mpesa,PAY-1\n"
    applied = client.post(
        "/payments/import/apply", data={"csrf_token": csrf(client), "content": content, "filename": "june.csv"}
    )
    assert applied.status_code == 409 and "needs a reason" in applied.get_data(as_text=True)
    assert grant_state(db, reference)[:2] == ("payment_scheduled", Decimal("1500"))


def test_four_eyes_the_approver_cannot_schedule_the_payment_in_any_interface(make_app, db):
    app = make_app(grant_four_eyes=True)
    client = app.test_client()
    make_staff(db, "payer@example.org", "officer")
    by_console = approved(db, actor="approver@example.org")
    log_in(client, db, email="approver@example.org")
    console = client.post(
        f"/beneficiaries/{by_console}/grant",
        data={"csrf_token": csrf(client), "status": "payment_scheduled", "channel": "mpesa"},
    )
    assert console.status_code == 400 and FOUR_EYES_REFUSAL in console.get_data(as_text=True)

    by_api = approved(db, actor="approver@example.org")
    api = client.post(
        f"/api/v1/beneficiaries/{by_api}/grant/events",
        json={"status": "payment_scheduled", "channel": "mpesa"},
        headers=token_of(db, "approver@example.org"),
    )
    assert api.status_code == 400 and FOUR_EYES_REFUSAL in api.get_json()["error"]

    by_cli = approved(db, actor="approver@example.org")
    as_account = app.test_cli_runner().invoke(
        args=["grants", "set-status", by_cli, "payment_scheduled", "--channel", "mpesa", "--as", "approver@example.org"]
    )
    assert as_account.exit_code == 1 and FOUR_EYES_REFUSAL in as_account.output
    operator = f"cli:{getpass.getuser()}"
    by_operator = approved(db, actor=operator)
    as_operator = app.test_cli_runner().invoke(
        args=["grants", "set-status", by_operator, "payment_scheduled", "--channel", "mpesa"]
    )
    assert as_operator.exit_code == 1 and FOUR_EYES_REFUSAL in as_operator.output

    for reference in (by_console, by_api, by_cli, by_operator):
        assert grant_state(db, reference)[0] == "approved"
    scheduled = app.test_cli_runner().invoke(
        args=["grants", "set-status", by_cli, "payment_scheduled", "--channel", "mpesa", "--as", "payer@example.org"]
    )
    assert scheduled.exit_code == 0 and grant_state(db, by_cli)[0] == "payment_scheduled"


def test_four_eyes_whoever_changes_the_amount_cannot_schedule_the_payment(make_app, db):
    """Else the second person could set any amount and schedule it alone: an amount change is a new approval."""
    client = make_app(grant_four_eyes=True).test_client()
    reference = approved(db, actor="approver@example.org")
    response = client.post(
        f"/api/v1/beneficiaries/{reference}/grant/events",
        json={"status": "payment_scheduled", "channel": "mpesa", "amount": "9000", "reason": "more"},
        headers=bearer(db, email="payer@example.org"),
    )
    assert response.status_code == 400 and FOUR_EYES_REFUSAL in response.get_json()["error"]
    assert grant_state(db, reference)[:2] == ("approved", Decimal("1500"))


def test_four_eyes_is_on_in_production_and_off_in_development_and_tests_unless_set():
    production = {"SECRET_KEY": "s" * 40, "WEBHOOK_TOKEN": "t" * 40, "REDIS_URL": "redis://x", "DATABASE_URL": "x"}
    keys = {"DATA_ENCRYPTION_KEY": "k" * 44, "DATA_HASH_KEY": "h" * 44}
    assert load_settings({**production, **keys}).grant_four_eyes is True
    assert load_settings({**production, **keys, "GRANT_FOUR_EYES": "0"}).grant_four_eyes is False
    assert load_settings({"APP_ENV": "development"}).grant_four_eyes is False
    assert load_settings({"APP_ENV": "test", "GRANT_FOUR_EYES": "1"}).grant_four_eyes is True


def test_existing_approvals_get_their_grants_amount_from_the_migration(db):
    """The migration's backfill: checked on the schema the tests run on, where every approval carries its amount."""
    reference = approved(db, amount="2500")
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        [approval] = session.execute(
            select(GrantEvent).where(GrantEvent.grant_id == grant.id, GrantEvent.to_status == "approved")
        ).scalars()
        assert approval.amount == grant.amount == Decimal("2500")
