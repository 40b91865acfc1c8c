"""Campaigns on real databases and Redis: audience, preview, fan-out exactly once, steering, quiet hours, series."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from config import load_settings
from models.actors import Actor
from models.campaigns import Audience, Campaign, CampaignStatus, CovidSeries
from models.grants import find_grant_by_reference, move_grant
from models.messages import MESSAGE_GROUPS, MessageKind, MessagePriority, MessageStatus, OutboundMessage
from models.people import Beneficiary, Contact, get_or_create_contact
from models.reports import Filters, dashboard, sms_breakdown
from notifications.campaigns import lifecycle as campaigns_module
from notifications.campaigns.fanout import run_fanout
from notifications.campaigns.lifecycle import (
    CampaignError,
    campaign_progress,
    complete_finished_campaigns,
    create_campaign,
    fanout_bounds,
    fanout_chunk,
    move_campaign,
    preview_campaign,
    send_campaign,
    start_due_campaigns,
)
from notifications.campaigns.quiet_hours import in_quiet_hours
from notifications.campaigns.series import library, run_due_series, start_series
from notifications.sms.dispatch import BATCHES_PER_THREAD, Dispatcher
from notifications.sms.outbox import owe_text
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from tests.factories import next_phone, register

# Messages of one round with personalised texts: one thread, BATCHES_PER_THREAD batches of one.
ROUND = BATCHES_PER_THREAD
TEXT_EN = "Dear {first_name}, training in {district} on Monday. Ref {reference}."
TEXT_ST = "{first_name}, thupelo {district} ka Mantaha. Nomoro {reference}."


def people(db, count, **changes):
    return [register(db, **changes) for _ in range(count)]


def new_campaign(db, audience=None, text_en=TEXT_EN, text_st=TEXT_ST, **extra) -> int:
    with db.session() as session:
        return create_campaign(
            session,
            name="Training",
            text_en=text_en,
            text_st=text_st,
            audience=audience or Audience(),
            created_by="officer@example.org",
            **extra,
        ).id


def start(db, redis, campaign_id) -> int:
    with db.session() as session:
        send_campaign(session, session.get(Campaign, campaign_id))
    return run_fanout(db, redis, campaign_id)


def messages(db, campaign_id):
    with db.session() as session:
        return (
            session.execute(
                select(OutboundMessage).where(OutboundMessage.campaign_id == campaign_id).order_by(OutboundMessage.id)
            )
            .scalars()
            .all()
        )


def set_alerts(db, phone, on):
    with db.session() as session:
        get_or_create_contact(session, phone).alerts_on = on


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"name": " "}, "needs a name"),
        ({"text_en": "Hello {firstname}"}, "unknown placeholder {firstname}"),
        ({"text_st": "Lumela {"}, "unmatched brace"),
        ({"text_en": ""}, "empty"),
        ({"audience": Audience(districts=["Gauteng"])}, "unknown district"),
        ({"audience": Audience(grant_statuses=["rich"])}, "unknown grant status"),
        ({"audience": Audience(age_min=40, age_max=30)}, "age band is empty"),
        ({"audience": Audience(registered_only=False)}, "placeholders need registered recipients"),
    ],
)
def test_bad_campaigns_are_refused_with_a_reason(db, changes, reason):
    values = {"name": "x", "text_en": TEXT_EN, "text_st": TEXT_ST, "audience": Audience(), **changes}
    with pytest.raises(CampaignError, match=reason), db.session() as session:
        create_campaign(session, created_by="t", **values)


def test_the_audience_filters_select_exactly_the_right_people(db):
    this_year = date.today().year
    maseru_f = people(db, 2, district="Maseru", sex="female", year_of_birth=this_year - 30)
    people(db, 1, district="Maseru", sex="male", year_of_birth=this_year - 30)
    people(db, 1, district="Leribe", sex="female", year_of_birth=this_year - 30)
    people(db, 1, district="Maseru", sex="female", year_of_birth=this_year - 60)
    with db.session() as session:
        move_grant(session, find_grant_by_reference(session, maseru_f[0][0]), "under_review", actor="t")
    audience = Audience(districts=["Maseru"], sexes=["female"], age_min=18, age_max=35)
    with db.session() as session:
        preview = preview_campaign(session, session.get(Campaign, new_campaign(db, audience)), _settings(db))
    assert preview.total == 2
    audience.grant_statuses = ["under_review"]
    with db.session() as session:
        preview = preview_campaign(session, session.get(Campaign, new_campaign(db, audience)), _settings(db))
    assert preview.total == 1


def _settings(db):
    return load_settings({}, app_env="test", database_url=db.url)


def test_registration_dates_and_language_filter(db):
    old, new = people(db, 1, language="en"), people(db, 1, language="st")
    with db.session() as session:
        session.execute(
            update(Beneficiary)
            .where(Beneficiary.reference == old[0][0])
            .values(created_at=datetime(2021, 3, 5, tzinfo=UTC))
        )
    audience = Audience(registered_from=date(2021, 3, 1), registered_to=date(2021, 3, 5))
    with db.session() as session:
        assert preview_campaign(session, session.get(Campaign, new_campaign(db, audience)), _settings(db)).total == 1
    with db.session() as session:
        preview = preview_campaign(
            session, session.get(Campaign, new_campaign(db, Audience(languages=["st"]))), _settings(db)
        )
    assert preview.recipients == {"en": 0, "st": 1} and new


def test_preview_counts_parts_cost_samples_and_warns_of_non_gsm_text(db):
    people(db, 2, language="en")
    people(db, 1, language="st", full_name="Mamokhethi-Nthabiseng Letsie")
    ((_, stopped),) = people(db, 1)
    set_alerts(db, stopped, False)
    long_text = "Dear {first_name}, " + "x" * 140
    campaign_id = new_campaign(db, text_en=long_text, text_st="Lumela {first_name} “mosebetsi”")
    settings = _settings(db).replace(sms_price_per_part=0.5)
    with db.session() as session:
        preview = preview_campaign(session, session.get(Campaign, campaign_id), settings)
    assert preview.recipients == {"en": 2, "st": 1}
    assert preview.excluded_opted_out == 1
    # The longest name in the audience pushes the English text over 160 characters: two parts for everyone.
    assert preview.parts == {"en": 2, "st": 1}
    assert preview.cost == (2 * 2 + 1 * 1) * 0.5
    assert preview.non_gsm == {"st": ["“", "”"]}
    assert len(preview.samples) == 3 and all("{" not in text for _, _, text in preview.samples)
    assert all("****" in phone for _, phone, _ in preview.samples)


def test_campaign_progress_and_the_reports_count_the_same_messages_alike(db):
    """Progress and the SMS report group statuses in one way (`models.messages.MESSAGE_GROUPS`), so for one
    campaign's messages they agree: sent = submitted + delivered + failed; a queued or cancelled one is not sent."""
    assert set(MESSAGE_GROUPS) == set(MessageStatus)  # no status left out of every count
    campaign_id = new_campaign(db)
    with db.session() as session:
        # A different number of messages in each status, so that a status counted in the wrong group shows.
        for how_many, status in enumerate(MessageStatus, start=1):
            for _ in range(how_many):
                contact = get_or_create_contact(session, next_phone())
                session.add(
                    OutboundMessage(
                        phone=contact.phone,
                        contact_id=contact.id,
                        kind=MessageKind.CAMPAIGN,
                        priority=MessagePriority.BULK,
                        language="en",
                        body="hello",
                        status=status,
                        campaign_id=campaign_id,
                    )
                )
    with db.session() as session:
        progress = campaign_progress(session, session.get(Campaign, campaign_id))
        report = dashboard(session).sms
        breakdown = sms_breakdown(session, Filters())
    assert progress.waiting + progress.done == progress.recipients == report.total == 55
    assert (progress.delivered, progress.failed) == (report.delivered, report.failed)
    assert progress.submitted + progress.delivered + progress.failed == report.sent
    assert [sum(getattr(cell, name) for cell in breakdown.values()) for name in ("total", "sent", "delivered")] == [
        report.total,
        report.sent,
        report.delivered,
    ]


def test_fan_out_writes_one_rendered_message_per_recipient_in_their_language(db, redis):
    english = people(db, 3, language="en", district="Leribe")
    sesotho = people(db, 2, language="st", district="Maseru")
    ((_, stopped),) = people(db, 1)
    set_alerts(db, stopped, False)
    campaign_id = new_campaign(db)
    assert start(db, redis, campaign_id) == 5
    with db.session() as session:
        progress = campaign_progress(session, session.get(Campaign, campaign_id))
    assert (progress.recipients, progress.waiting, progress.excluded_opted_out) == (5, 5, 1)
    assert run_fanout(db, redis, campaign_id) == 0  # done: a second job writes nothing
    assert start_again(db, redis, campaign_id) == 0  # even from cursor 0, nobody gets a second message
    rows = messages(db, campaign_id)
    by_phone = {m.phone: m for m in rows}
    assert set(by_phone) == {phone for _, phone in english + sesotho}
    reference, phone = english[0]
    assert by_phone[phone].body == f"Dear Palesa, training in Leribe on Monday. Ref {reference}."
    reference, phone = sesotho[0]
    assert by_phone[phone].body == f"Palesa, thupelo Maseru ka Mantaha. Nomoro {reference}."
    assert {m.priority for m in rows} == {MessagePriority.BULK}


def start_again(db, redis, campaign_id):
    """Rewind the fan-out cursor, as if its progress had been lost: the unique index still stops doubles."""
    with db.session() as session:
        session.get(Campaign, campaign_id).fanout_done = False
        session.get(Campaign, campaign_id).fanout_cursor = 0
    return run_fanout(db, redis, campaign_id)


def test_a_fan_out_killed_mid_chunk_and_restarted_writes_everyone_exactly_once(db, redis, monkeypatch):
    monkeypatch.setattr(campaigns_module, "FANOUT_CHUNK", 3)
    phones = [phone for _, phone in people(db, 10)]
    campaign_id = new_campaign(db)
    with db.session() as session:
        send_campaign(session, session.get(Campaign, campaign_id))
    with db.session() as session:  # one chunk commits
        campaign = session.get(Campaign, campaign_id)
        upper, longest = fanout_bounds(session, campaign)
        assert fanout_chunk(session, campaign, upper, longest) == 3
    session = db.sessionmaker()  # the next chunk's transaction dies with its worker
    campaign = session.get(Campaign, campaign_id)
    fanout_chunk(session, campaign, upper, longest)
    session.rollback()
    session.close()
    assert run_fanout(db, redis, campaign_id) == 7
    assert Counter(m.phone for m in messages(db, campaign_id)) == Counter(phones)


def test_two_fan_outs_racing_write_everyone_exactly_once(db, redis, monkeypatch):
    monkeypatch.setattr(campaigns_module, "FANOUT_CHUNK", 2)
    phones = [phone for _, phone in people(db, 12)]
    campaign_id = new_campaign(db)
    with db.session() as session:
        send_campaign(session, session.get(Campaign, campaign_id))
    threads = [threading.Thread(target=run_fanout, args=(db, redis, campaign_id)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in range(3):  # whatever the race left, a later run (the sweep's) finishes
        run_fanout(db, redis, campaign_id)
    assert Counter(m.phone for m in messages(db, campaign_id)) == Counter(phones)


@pytest.fixture
def dispatcher(settings, db, redis, emulator):
    settings = settings.replace(
        at_api_base_url=emulator.url,
        at_api_key="k",
        sms_rate_per_second=1000.0,
        sms_batch_size=3,
        sms_send_concurrency=1,  # a small round, so that a test can step through a campaign
        sms_send_concurrency_max=1,  # and one that stays small
        quiet_hours=None,
    )
    return Dispatcher(settings=settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(settings))


def test_identical_texts_share_provider_calls_and_the_campaign_completes(db, redis, dispatcher, emulator):
    people(db, 7, language="en")
    campaign_id = new_campaign(db, text_en="Payments start on Monday.", text_st="Litefo li qala Mantaha.")
    start(db, redis, campaign_id)
    dispatcher.drain(MessagePriority.BULK)
    sizes = sorted(len(r["form"]["to"].split(",")) for r in emulator.state.snapshot()["requests"])
    assert sizes == [1, 3, 3]
    with db.session() as session:
        assert complete_finished_campaigns(session) == [campaign_id]
        progress = campaign_progress(session, session.get(Campaign, campaign_id))
    assert (progress.status, progress.submitted, progress.waiting) == ("completed", 7, 0)


def test_pause_holds_the_rest_resume_sends_it_cancel_withdraws_it(db, redis, dispatcher, emulator):
    people(db, 9)
    campaign_id = new_campaign(db)
    start(db, redis, campaign_id)
    assert dispatcher.send_round(MessagePriority.BULK) == ROUND
    with db.session() as session:
        move_campaign(session, session.get(Campaign, campaign_id), CampaignStatus.PAUSED)
    assert dispatcher.drain(MessagePriority.BULK) == (0, False)
    assert len(emulator.state.snapshot()["messages"]) == ROUND
    with db.session() as session:
        move_campaign(session, session.get(Campaign, campaign_id), CampaignStatus.SENDING)
    assert dispatcher.send_round(MessagePriority.BULK) == ROUND
    with db.session() as session:
        move_campaign(session, session.get(Campaign, campaign_id), CampaignStatus.CANCELLED)
    assert dispatcher.drain(MessagePriority.BULK) == (0, False)
    with db.session() as session:
        progress = campaign_progress(session, session.get(Campaign, campaign_id))
        with pytest.raises(CampaignError, match="cancelled campaign cannot be sent or resumed"):
            move_campaign(session, session.get(Campaign, campaign_id), CampaignStatus.SENDING)
    assert (progress.submitted, progress.cancelled, progress.waiting) == (2 * ROUND, 9 - 2 * ROUND, 0)
    assert len(emulator.state.snapshot()["messages"]) == 2 * ROUND


def test_a_scheduled_campaign_waits_for_its_time(db, redis):
    people(db, 1)
    send_at = datetime.now(UTC) + timedelta(hours=2)
    campaign_id = new_campaign(db, send_at=send_at)
    with db.session() as session:
        assert send_campaign(session, session.get(Campaign, campaign_id)) == CampaignStatus.SCHEDULED
        assert start_due_campaigns(session) == []
        assert start_due_campaigns(session, now=send_at + timedelta(seconds=1)) == [campaign_id]
        assert session.get(Campaign, campaign_id).status == CampaignStatus.SENDING


@pytest.mark.parametrize(
    ("utc_time", "window", "quiet"),
    [
        ("18:30", ("20:00", "07:00"), True),  # 20:30 in Maseru (UTC+2)
        ("18:00", ("20:00", "07:00"), True),
        ("17:59", ("20:00", "07:00"), False),
        ("04:59", ("20:00", "07:00"), True),
        ("05:00", ("20:00", "07:00"), False),
        ("09:59", ("12:00", "15:00"), False),
        ("10:30", ("12:00", "15:00"), True),
        ("13:00", ("12:00", "15:00"), False),
        ("03:00", None, False),
    ],
)
def test_quiet_hours_are_lesotho_time_and_may_cross_midnight(utc_time, window, quiet):
    hours, minutes = map(int, utc_time.split(":"))
    moment = datetime(2026, 11, 28, hours, minutes, tzinfo=UTC)
    assert in_quiet_hours(moment, window) is quiet


def test_quiet_hours_hold_bulk_but_not_transactional(db, redis, settings, emulator):
    now_in_maseru = datetime.now(UTC) + timedelta(hours=2)
    window = (
        (now_in_maseru - timedelta(hours=1)).strftime("%H:%M"),
        (now_in_maseru + timedelta(hours=1)).strftime("%H:%M"),
    )
    settings = settings.replace(
        at_api_base_url=emulator.url, at_api_key="k", sms_rate_per_second=1000.0, quiet_hours=window
    )
    quiet = Dispatcher(settings=settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(settings))
    people(db, 2)
    campaign_id = new_campaign(db)
    start(db, redis, campaign_id)
    assert quiet.drain(MessagePriority.BULK) == (0, False)

    with db.session() as session:
        owe_text(session, get_or_create_contact(session, next_phone()), MessageKind.STAFF, "Your payment is ready")
    assert quiet.drain(MessagePriority.TRANSACTIONAL) == (1, False)
    awake = Dispatcher(settings=settings.replace(quiet_hours=None), db=db, redis=redis, provider=quiet.provider)
    assert awake.drain(MessagePriority.BULK) == (2, False)


def test_the_covid_series_sends_each_message_once_per_person_including_unregistered(db, redis):
    assert len(library()) >= 8
    ((_, registered),) = people(db, 1)
    ((_, stopped),) = people(db, 1)
    set_alerts(db, stopped, False)
    with db.session() as session:
        unregistered = get_or_create_contact(session, next_phone())
        unregistered.language = "st"
        unregistered = unregistered.phone
        first_run = datetime.now(UTC) - timedelta(minutes=1)
        start_series(session, Actor.operator("t"), interval_days=7, first_run_at=first_run)
    assert run_due_series(db) == 1
    assert run_due_series(db) == 0  # next run is a week away
    with db.session() as session:
        first = session.execute(select(Campaign).order_by(Campaign.id)).scalars().all()[-1]
        assert first.series_message_key == library()[0]
        assert first.status == CampaignStatus.SENDING
    run_fanout(db, redis, first.id)
    rows = messages(db, first.id)
    assert {m.phone: m.language for m in rows} == {registered: "en", unregistered: "st"}
    with db.session() as session:  # the series comes round to the same message again (a wrap-around)
        series = session.execute(select(CovidSeries)).scalar_one()
        series.next_index, series.next_run_at = 0, datetime.now(UTC) - timedelta(minutes=1)
        newcomer = get_or_create_contact(session, next_phone()).phone
    assert run_due_series(db) == 1
    with db.session() as session:
        second = session.execute(select(func.max(Campaign.id))).scalar_one()
    run_fanout(db, redis, second)
    assert [m.phone for m in messages(db, second)] == [newcomer]  # the others already had this message
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 4
    assert MessageStatus.QUEUED in {m.status for m in rows}
