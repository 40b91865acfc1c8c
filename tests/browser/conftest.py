"""Browser tests: the console served over HTTP on loopback, driven by the system's Chromium through Playwright.

Chromium comes from the system's packages (Debian: `apt-get install chromium`); Playwright's own browser
download is never used. Without Chromium these tests are skipped, unless `REQUIRE_BROWSER=1` (CI), which makes
that a failure.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.factories import STAFF_PASSWORD, make_staff

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Flags for a headless Chromium on a machine with no network but loopback and no GPU.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Milliseconds a browser step may wait for the page; generous for a shared two-core machine.
STEP_TIMEOUT_MS = 15000


def _chromium() -> str | None:
    return os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


@pytest.fixture(scope="session")
def browser():
    executable = _chromium()
    if executable is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but no Chromium found (install the chromium package or set CHROMIUM)")
        pytest.skip("no Chromium on this machine (install the chromium package to run the browser tests)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def live_url(make_app, wsgi_server, db, redis):
    """The whole gateway over HTTP on a free loopback port."""
    return wsgi_server(make_app())


@pytest.fixture
def page(browser, live_url):
    context = browser.new_context(base_url=live_url)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def login(page, db):
    """`login(role="officer", districts=None)`: a staff account, logged in through the real form."""

    def log_in(role: str = "officer", districts=None, email: str | None = None):
        email = email or f"{role}@example.org"
        make_staff(db, email, role, districts=districts)
        page.goto("/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", STAFF_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        return page

    return log_in
