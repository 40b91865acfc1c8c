"""The console's stylesheet: small, served under a versioned URL with a year's caching, and the pages stay light."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.assets import LONG_CACHE
from models.search import PAGE_SIZE
from tests.factories import register
from tests.gateway.test_console_beneficiaries import log_in

STYLESHEET = Path(__file__).resolve().parents[2] / "gateway" / "static" / "console.css"
# The stylesheet's budget: district offices fetch it over slow mobile data (issue: "under 15 KB").
MAX_STYLESHEET_BYTES = 15 * 1024
# The beneficiaries page, a full page of results, must stay under this on the wire.
MAX_BENEFICIARIES_PAGE_BYTES = 200 * 1024
LINK = re.compile(r'<link rel="stylesheet" href="(/static/console\.css\?v=([0-9a-f]+))">')


def test_the_stylesheet_stays_under_15_kb():
    assert 1000 < STYLESHEET.stat().st_size < MAX_STYLESHEET_BYTES


def test_the_stylesheet_is_linked_by_its_digest_and_cached_for_a_year(client, db):
    page = client.get("/login")
    url, version = LINK.search(page.get_data(as_text=True)).groups()
    assert page.headers["Cache-Control"] == "no-store"  # a page may hold personal data
    with client.get(url) as response:
        assert response.status_code == 200 and response.mimetype == "text/css"
        assert response.get_data() == STYLESHEET.read_bytes()
        assert response.headers["Cache-Control"] == LONG_CACHE and "max-age=31536000" in LONG_CACHE
    # Without its version the file is not cached, so an old copy cannot outlive a release.
    for unversioned in ("/static/console.css", "/static/no-such.css?v=" + version):
        with client.get(unversioned) as response:
            assert response.headers["Cache-Control"] == "no-store"


def test_a_full_page_of_beneficiaries_stays_under_200_kb(client, db):
    for number in range(PAGE_SIZE + 1):
        register(
            db,
            f"+2665999{number:04d}",  # numbers of its own: other tests' numbers come from one counter
            full_name=f"Mpho Lerato Mokoena-Thabane {number:03d}",
            village="Ha Mohale Ha Ramabanta",
        )
    log_in(client, db, "admin")
    page = client.get("/beneficiaries")
    assert page.status_code == 200 and page.get_data(as_text=True).count("Mokoena-Thabane") == PAGE_SIZE
    assert len(page.get_data()) < MAX_BENEFICIARIES_PAGE_BYTES
