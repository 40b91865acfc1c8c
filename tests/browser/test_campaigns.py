"""A campaign from compose to finished progress, in a real browser, with its messages really sent."""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models.campaigns import Campaign, CampaignStatus
from models.messages import MessagePriority
from notifications.campaigns.fanout import run_fanout
from notifications.campaigns.lifecycle import complete_finished_campaigns
from notifications.sms.dispatch import Dispatcher
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from tests.factories import register

# Seconds between two rounds of the in-test worker; the progress page refreshes itself every few seconds.
WORKER_POLL_SECONDS = 0.2
# Longest wait for the page to show the campaign completed: a few of its own refreshes on a slow machine.
COMPLETION_TIMEOUT_MS = 30000


@pytest.fixture
def worker(db, redis, settings, emulator):
    """What `flask --app wsgi worker` does for campaigns, in a thread: fan out, send, close finished campaigns."""
    settings = settings.replace(
        at_api_base_url=emulator.url, at_api_key="k", sms_rate_per_second=1000.0, quiet_hours=None
    )
    dispatcher = Dispatcher(
        settings=settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(settings)
    )
    stop = threading.Event()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            while not stop.is_set():
                with db.session() as session:
                    pending = session.execute(
                        select(Campaign.id).where(
                            Campaign.status == CampaignStatus.SENDING, Campaign.fanout_done.is_(False)
                        )
                    ).scalars()
                    pending = list(pending)
                for campaign_id in pending:
                    run_fanout(db, redis, campaign_id)
                dispatcher.drain(MessagePriority.BULK)
                with db.session() as session:
                    complete_finished_campaigns(session)
                stop.wait(WORKER_POLL_SECONDS)
        except BaseException as exc:  # surfaced by the test, not lost in the thread
            failures.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield failures
    stop.set()
    thread.join()
    assert not failures, failures


def test_a_campaign_from_compose_to_finished_progress(login, db, emulator, worker):
    people = [register(db, full_name=name, district="Maseru") for name in ("Palesa Mokoena", "Thabo Mofokeng")]
    register(db, district="Leribe")
    page = login("officer")
    page.click("text=Campaigns")
    page.click("text=Write a new campaign")
    page.fill("input[name=name]", "Training day")
    page.fill("textarea[name=text_en]", "Dear {first_name}, training in {district} on Monday. Ref {reference}.")
    page.fill("textarea[name=text_st]", "{first_name}, thupelo {district} ka Mantaha. Nomoro {reference}.")
    page.check("input[name=districts][value=Maseru]")
    page.click("button:text('Preview')")

    page.wait_for_url("**/campaigns/*/preview")
    expect(page.locator("#total-recipients")).to_have_text("2")
    expect(page.locator("#estimated-cost")).to_have_text("M0.60")
    expect(page.locator("main")).to_contain_text(f"Dear Palesa, training in Maseru on Monday. Ref {people[0][0]}.")
    page.click("button:text('Confirm: send to 2 people')")

    page.wait_for_url(re.compile(r"/campaigns/\d+$"))
    # No reload from here on: the page refreshes itself until the worker has sent everything.
    expect(page.locator("#campaign-status")).to_have_text("completed", timeout=COMPLETION_TIMEOUT_MS)
    expect(page.locator("#count-recipients")).to_have_text("2")
    expect(page.locator("#count-submitted")).to_have_text("2")
    expect(page.locator("#count-waiting")).to_have_text("0")
    received = sorted(message["phone"] for message in emulator.state.snapshot()["messages"])
    assert received == sorted(phone for _, phone in people)
