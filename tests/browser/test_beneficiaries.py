"""Beneficiaries in a real browser: search, a grant move, and a payment file checked and applied."""

from __future__ import annotations

from models.grants import find_grant_by_reference
from notifications.casework.grants import change_grant_status
from tests.factories import register


def test_an_officer_searches_and_opens_a_beneficiary(login, db):
    wanted, _ = register(db, full_name="Rethabile Sekhesa")
    register(db, full_name="Teboho Molapo", sex="male")
    page = login("officer")
    page.goto("/beneficiaries")
    page.fill("input[name=q]", "sekhesa")
    page.select_option("select[name=sex]", "female")
    page.click("text=Search")
    page.wait_for_url("**/beneficiaries?q=sekhesa*")
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and "Rethabile Sekhesa" in rows.first.inner_text()
    page.click(f"text={wanted}")
    page.wait_for_url(f"**/beneficiaries/{wanted}")
    assert page.locator("h1").inner_text().startswith("Rethabile Sekhesa")


def test_an_officer_moves_a_grant_with_a_reason(login, db):
    reference, _ = register(db)
    page = login("officer")
    page.goto(f"/beneficiaries/{reference}")
    page.click("button[value=under_review]")
    assert page.locator("#grant-status").inner_text() == "under_review"
    assert "Grant moved to under_review." in page.content()
    page.fill("form:has(button[value=approved]) input[name=amount]", "1500")
    page.click("button[value=approved]")
    assert page.locator("#grant-status").inner_text() == "approved"
    assert "The returnee will get an SMS." in page.content()
    # The browser itself refuses an empty reason (required field); the server would too.
    page.fill("form:has(button[value=withdrawn]) input[name=reason]", "moved back to South Africa")
    page.click("button[value=withdrawn]")
    assert page.locator("#grant-status").inner_text() == "withdrawn"
    assert "moved back to South Africa" in page.content()
    assert page.locator("button[name=move]").count() == 0  # final: nothing more to offer


def test_an_officer_checks_and_applies_a_payment_file(login, db, tmp_path):
    references = []
    for _ in range(2):
        reference, _ = register(db)
        with db.session() as session:
            grant = find_grant_by_reference(session, reference)
            for status in ("under_review", "approved", "payment_scheduled"):
                amount = 1500 if status == "approved" else None
                change_grant_status(session, grant, status, actor="setup", amount=amount, channel="mpesa")
        references.append(reference)
    upload = tmp_path / "payments.csv"
    upload.write_text(
        "reference,status,amount,channel,payment reference\n"
        f"{references[0]},paid,1500,mpesa,MP-1\n"
        f"{references[1]},payment_failed,,,\n"
    )
    page = login("officer")
    page.goto("/beneficiaries")
    page.click("text=Import payment results")
    page.set_input_files("input[type=file]", str(upload))
    page.click("text=Check the file")
    assert page.locator("#import-summary").inner_text() == "2 rows: 2 would change a grant, 0 bad."
    with db.session() as session:
        assert find_grant_by_reference(session, references[0]).status == "payment_scheduled"
    page.click("text=Apply all 2 rows")
    page.wait_for_url("**/payments/import")
    assert "Applied 2 payment results from payments.csv." in page.content()
    with db.session() as session:
        assert [find_grant_by_reference(session, r).status for r in references] == ["paid", "payment_failed"]
