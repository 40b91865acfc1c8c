"""District limits on every path (docs/security.md item 7): campaigns through the console and the API, and inbox
items from a number that registers after it wrote.

A district-limited officer or viewer may read a campaign that reaches outside their districts (list, progress) but
may neither preview it (its samples show people) nor pause, resume, cancel or send it.
"""

from __future__ import annotations

import pytest

from models.campaigns import Campaign, CampaignStatus
from models.people import find_beneficiary_by_phone
from notifications.campaigns.actions import OutsideDistrictsError, campaign_within, create_campaign_for, steer_campaign
from notifications.casework.inbox import InboxItemNotFound, InboxKind, get_item, list_inbox
from tests.factories import OPERATOR, make_staff, next_phone, register, staff_actor
from tests.gateway.test_auth import bearer, token_for
from tests.gateway.test_console_beneficiaries import csrf, log_in
from tests.notifications.casework.test_inbox import callback, incoming

REFUSAL = "you may act only on campaigns within Leribe"
TEXTS = {"text_en": "Dear {first_name}, the office opens on Monday.", "text_st": "{first_name}, ofisi e bula."}


def campaign(db, districts: list[str], status: CampaignStatus = CampaignStatus.SENDING) -> int:
    """A campaign written by the operator (no limits) for `districts` ([] is every district), in `status`."""
    with db.session() as session:
        created = create_campaign_for(session, OPERATOR, {"name": "Office", "districts": districts, **TEXTS})
        created.status = status
        return created.id


@pytest.fixture
def people(db):
    register(db, district="Leribe")
    register(db, district="Maseru")


@pytest.mark.parametrize(
    ("districts", "within"), [(["Leribe"], True), (["Leribe", "Maseru"], False), (["Maseru"], False), ([], False)]
)
def test_campaign_within_is_the_one_rule(db, districts, within):
    make_staff(db, "leribe@example.org", "officer", districts="Leribe")
    make_staff(db, "all@example.org", "officer")
    campaign_id = campaign(db, districts)
    with db.session() as session:
        found = session.get(Campaign, campaign_id)
        assert campaign_within(staff_actor(session, "leribe@example.org"), found) is within
        assert campaign_within(staff_actor(session, "all@example.org"), found) is True


@pytest.mark.parametrize("action", ["pause", "cancel"])
@pytest.mark.parametrize("districts", [["Maseru"], [], ["Leribe", "Maseru"]])
def test_a_limited_officer_cannot_pause_or_cancel_a_campaign_reaching_outside_their_districts(
    client, db, people, action, districts
):
    make_staff(db, "leribe@example.org", "officer", districts="Leribe")
    headers = bearer(token_for(db, "leribe@example.org"))
    campaign_id = campaign(db, districts)
    api = client.post(f"/api/v1/campaigns/{campaign_id}/{action}", headers=headers)
    assert api.status_code == 403 and "Leribe" in api.get_json()["error"]
    log_in(client, db, email="leribe2@example.org", districts="Leribe")
    console = client.post(f"/campaigns/{campaign_id}/{action}", data={"csrf_token": csrf(client)})
    assert console.status_code == 403 and REFUSAL in console.get_data(as_text=True)
    with db.session() as session, pytest.raises(OutsideDistrictsError, match=REFUSAL):
        officer = staff_actor(session, "leribe@example.org")
        steer_campaign(session, officer, session.get(Campaign, campaign_id), action)
    with db.session() as session:
        assert session.get(Campaign, campaign_id).status == CampaignStatus.SENDING


@pytest.mark.parametrize("role", ["officer", "viewer"])
def test_the_preview_of_a_campaign_reaching_outside_is_not_there_for_limited_staff(client, db, people, role):
    make_staff(db, "leribe@example.org", role, districts="Leribe")
    everywhere, leribe = campaign(db, [], CampaignStatus.DRAFT), campaign(db, ["Leribe"], CampaignStatus.DRAFT)
    headers = bearer(token_for(db, "leribe@example.org"))
    assert client.get(f"/api/v1/campaigns/{everywhere}/preview", headers=headers).status_code == 404
    assert client.get(f"/api/v1/campaigns/{leribe}/preview", headers=headers).status_code == 200
    log_in(client, db, email="console@example.org", role=role, districts="Leribe")
    assert client.get(f"/campaigns/{everywhere}/preview").status_code == 404
    assert client.get(f"/campaigns/{leribe}/preview").status_code == 200


def test_a_campaign_reaching_outside_is_read_only_on_its_progress_page(client, db, people):
    everywhere, leribe = campaign(db, []), campaign(db, ["Leribe"])
    log_in(client, db, districts="Leribe")
    outside = client.get(f"/campaigns/{everywhere}").get_data(as_text=True)
    inside = client.get(f"/campaigns/{leribe}").get_data(as_text=True)
    assert f"/campaigns/{everywhere}/pause" not in outside and f"/campaigns/{everywhere}/cancel" not in outside
    assert f"/campaigns/{leribe}/pause" in inside and f"/campaigns/{leribe}/cancel" in inside
    listed = client.get("/campaigns").get_data(as_text=True)
    assert f"/campaigns/{everywhere}" in listed  # visible, read-only
    make_staff(db, "leribe@example.org", "officer", districts="Leribe")
    headers = bearer(token_for(db, "leribe@example.org"))
    assert client.get(f"/api/v1/campaigns/{everywhere}", headers=headers).status_code == 200
    paused = client.post(f"/api/v1/campaigns/{leribe}/pause", headers=headers)
    assert paused.status_code == 200 and paused.get_json()["status"] == "paused"


def test_inbox_items_follow_the_district_their_number_registers_in(db, limits):
    """An SMS from a number the gateway had not met has no contact; a call-back always has one. Both must follow."""
    phone = next_phone()
    items = {InboxKind.SMS: incoming(db, limits, phone, "is the office open?"), InboxKind.CALLBACK: callback(db, phone)}

    def seen(session, kind, districts) -> set[int]:
        return {item.id for item in list_inbox(session, kinds=[kind], districts=districts)}

    with db.session() as session:
        assert all(item_id in seen(session, kind, ["Leribe"]) for kind, item_id in items.items())
    register(db, phone=phone, district="Maseru")
    with db.session() as session:
        assert find_beneficiary_by_phone(session, phone).district == "Maseru"
        for kind, item_id in items.items():
            assert item_id not in seen(session, kind, ["Leribe"]), kind
            with pytest.raises(InboxItemNotFound):
                get_item(session, kind, item_id, districts=["Leribe"])
            assert get_item(session, kind, item_id, districts=["Maseru"]).district == "Maseru"
            assert item_id in seen(session, kind, ["Maseru"])
