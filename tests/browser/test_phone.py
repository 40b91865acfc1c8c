"""The practice phone in a real browser: dial, register through the real menu with the keypad, and watch the
confirmation SMS arrive in the inbox pane, queued and then sent to the provider on loopback."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from menus.practice import PRACTICE_NUMBER
from models.messages import MessagePriority, OutboundMessage
from models.people import Beneficiary
from notifications.sms.dispatch import Dispatcher
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from tests.gateway.test_console_phone import REGISTRATION

# Longest wait for the inbox pane's own refresh (every few seconds) to show the message's new status.
INBOX_REFRESH_TIMEOUT_MS = 20000
KEYPAD = "#keypad-form .keypad button"


def press(page, keys: str) -> None:
    """Type an answer on the keypad, as a trainer would with a mouse or a finger on a tablet."""
    for key in keys:
        page.click(f"{KEYPAD}[value='{key}']")


def test_an_officer_registers_on_the_practice_phone_and_sees_the_sms_arrive(login, db, redis, settings, emulator):
    page = login("officer")
    page.click('nav a[href="/phone"]')
    expect(page.locator("#number")).to_have_value(PRACTICE_NUMBER)
    page.click("form.dial button[type=submit]")
    expect(page.locator("#screen")).to_contain_text("English")
    expect(page.locator("#counter")).to_contain_text("/ 182 characters")
    for answer in REGISTRATION:
        if answer.isdigit():
            press(page, answer)  # the keypad types in place: no page load per key
            expect(page.locator("#answer")).to_have_value(answer)
        else:
            page.fill("#answer", answer)
        page.click("#keypad-form button.send")
        page.wait_for_load_state()
    with db.session() as session:
        reference = session.execute(select(Beneficiary.reference)).scalar_one()
        body = session.execute(select(OutboundMessage.body)).scalar_one()
    expect(page.locator("#screen")).to_contain_text(reference)
    expect(page.locator("#screen")).to_contain_text("Session ended")
    message = page.locator("#inbox .sms-list li").first
    expect(message).to_contain_text(body)
    expect(message.locator(".status")).to_have_text("queued")

    # The worker sends it to the provider; the pane refreshes by itself and shows the new status.
    sending = settings.replace(at_api_base_url=emulator.url, at_api_key="k", sms_rate_per_second=1000.0)
    provider = AfricasTalkingProvider.from_settings(sending)
    Dispatcher(settings=sending, db=db, redis=redis, provider=provider).drain(MessagePriority.TRANSACTIONAL)
    expect(message.locator(".status")).not_to_have_text("queued", timeout=INBOX_REFRESH_TIMEOUT_MS)
    expect(message).to_contain_text(body)
    assert page.url.endswith("/phone")  # no reload: the script refreshed the pane


def test_a_viewer_cannot_open_the_practice_phone(login):
    page = login("viewer")
    assert page.locator('nav a[href="/phone"]').count() == 0
    response = page.goto("/phone")
    assert response.status == 403
