"""The console's main pages at a small laptop's width and a tablet's: the header never runs over itself or the page,
and each page is photographed.

The screenshots go to a temporary folder, or to `SCREENSHOTS_DIR` when it is set: `make screenshots` writes them to
`docs/screenshots/`, where the README shows one. Each must stay small enough to keep in the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.actors import Actor
from models.people import DISTRICTS
from notifications.casework.inbox import InboxKind, reply
from tests.factories import register
from tests.notifications.casework.test_inbox import callback, feedback, incoming

# Window sizes: a small laptop, and a tablet held upright.
VIEWPORTS = {1280: 800, 800: 1024}
# Largest screenshot file kept in the repository.
MAX_SCREENSHOT_BYTES = 150 * 1024
# The header's own parts: programme name, navigation, account.
TEBOHO = "+26659989999"
HEADER_PARTS = ("body > header > strong", "body > header > nav", "body > header > span")


def overlap(one: dict, other: dict) -> bool:
    """Whether two bounding boxes share any area (touching edges do not count)."""
    return (
        one["x"] < other["x"] + other["width"] - 0.5
        and other["x"] < one["x"] + one["width"] - 0.5
        and one["y"] < other["y"] + other["height"] - 0.5
        and other["y"] < one["y"] + one["height"] - 0.5
    )


def assert_header_clear(page, name: str) -> None:
    """No two parts of the header, no two navigation links, and nothing of the header over the page's content."""
    boxes = [page.locator(selector).bounding_box() for selector in HEADER_PARTS if page.locator(selector).count()]
    assert len(boxes) == (3 if name != "login" else 1), name
    links = [link.bounding_box() for link in page.locator("body > header nav a").all()]
    for group in (boxes, links):
        for index, box in enumerate(group):
            assert box["width"] > 0 and box["height"] > 0
            assert not any(overlap(box, other) for other in group[index + 1 :]), (name, box)
    header, main = page.locator("body > header").bounding_box(), page.locator("main").bounding_box()
    assert all(box["y"] + box["height"] <= header["y"] + header["height"] + 0.5 for box in boxes + links), name
    assert header["y"] + header["height"] <= main["y"] + 0.5, name
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name} scrolls sideways"


def assert_chart_labels_apart(page) -> None:
    """The month labels under the columns, as the browser drew them, never touch one another."""
    labels = page.locator("svg.chart text.label")
    assert labels.count() >= 12
    boxes = [labels.nth(index).bounding_box() for index in range(labels.count())]
    for index, box in enumerate(boxes):
        assert not any(overlap(box, other) for other in boxes[index + 1 :]), box


@pytest.fixture
def programme(db, limits):
    """A programme with a little of everything: people in several districts, an SMS and requests in the inbox."""
    references = [
        register(db, f"+2665998{index:04d}", full_name=name, district=DISTRICTS[index * 3 % len(DISTRICTS)], sex=sex)[0]
        for index, (name, sex) in enumerate(
            [
                ("Palesa Mokoena", "female"),
                ("Thabo Letsie", "male"),
                ("Lineo Thabane", "female"),
                ("Mpho Ramoholi", "male"),
            ]
        )
    ]
    _, phone = register(db, TEBOHO, full_name="Teboho Nkhase", district="Mohale's Hoek")
    sms_id = incoming(db, limits, phone, "When will the grant be paid?")
    with db.session() as session:
        reply(
            session, Actor.operator("demo"), InboxKind.SMS, sms_id, "Payments start next week at the Mafeteng office."
        )
    callback(db, phone, "registration")
    feedback(db, phone)
    return references


# The pages photographed after logging in, by the name of their file.
PAGES = {
    "dashboard": "/",
    "beneficiaries": "/beneficiaries",
    "beneficiary": "/beneficiaries/{reference}",
    "campaigns": "/campaigns",
    "new-campaign": "/campaigns/new",
    "reports": "/reports",
    "inbox": "/inbox",
    "phone": "/phone",
}


def test_the_main_pages_at_laptop_and_tablet_widths(login, page, programme, tmp_path):
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def photograph(name: str, width: int) -> None:
        assert_header_clear(page, name)
        if name == "dashboard":
            assert_chart_labels_apart(page)
        file = folder / f"{name}-{width}.png"
        page.screenshot(path=str(file))
        written.append(file)

    for width, height in VIEWPORTS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/login")
        photograph("login", width)
    login("admin")
    page.goto("/phone")
    page.fill("#number", TEBOHO)  # registered: the phone's inbox holds the confirmation SMS
    page.click("form.dial button[type=submit]")
    page.click("#keypad-form .keypad button[value='1']")
    page.click("#keypad-form button.send")
    page.wait_for_load_state()
    for width, height in VIEWPORTS.items():
        page.set_viewport_size({"width": width, "height": height})
        for name, path in PAGES.items():
            page.goto(path.format(reference=programme[0]))
            photograph(name, width)
    for file in written:
        assert 0 < file.stat().st_size < MAX_SCREENSHOT_BYTES, f"{file.name}: {file.stat().st_size} bytes"
