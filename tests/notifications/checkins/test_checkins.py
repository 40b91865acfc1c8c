"""Check-ins on real databases and Redis: define, send (the invitation reaches the provider), answer by SMS one
question a message, once only, the one reminder, closing, and the report figures."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models.audit import AuditLog
from models.campaigns import Campaign, CampaignKind
from models.checkins import Checkin, CheckinAnswer, CheckinInvitation, CheckinStatus, InvitationStatus
from models.clock import utcnow
from models.messages import MessageKind, MessagePriority, OutboundMessage
from models.people import get_or_create_contact
from models.ussd import CHECKINS_OPEN_UNTIL_KEY
from notifications.campaigns.fanout import run_fanout
from notifications.casework.privacy import erase_person, export_person
from notifications.checkins.answering import Outcome, next_question, open_invitation, record_answer
from notifications.checkins.definitions import (
    CheckinError,
    close_checkin,
    create_checkin,
    find_checkin,
    invitation_counts,
    send_checkin,
)
from notifications.checkins.reminders import sweep_checkins
from notifications.checkins.report import answer_counts, answers_csv
from notifications.sms.dispatch import Dispatcher
from notifications.sms.inbound import receive_sms
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from tests.factories import OPERATOR, register

_ids = itertools.count(1)

QUESTIONS = [
    {"kind": "yes_no", "text_en": "Do you have an income now?", "text_st": "Na u na le moputso hona joale?"},
    {
        "kind": "number",
        "text_en": "How many meals did your household eat yesterday?",
        "text_st": "Lelapa la hau le jele makhetlo a makae maobane?",
        "min": 1,
        "max": 5,
    },
    {
        "kind": "choice",
        "text_en": "Is your business still running?",
        "text_st": "Na khoebo ea hau e ntse e sebetsa?",
        "options": [
            {"en": "Yes, growing", "st": "E, ea hola"},
            {"en": "Yes", "st": "E"},
            {"en": "Closed", "st": "E koetsoe"},
        ],
    },
]


def definition(**changes) -> dict:
    return {
        "title_en": "Six months on",
        "title_st": "Likhoeli tse tseletseng",
        "questions": QUESTIONS,
        "districts": ["Maseru"],
        "remind_after_days": "3",
        **changes,
    }


def define_and_send(db, settings, **changes) -> tuple[int, int]:
    """A sent check-in: (check-in id, invitation campaign id)."""
    with db.session() as session:
        checkin = create_checkin(session, OPERATOR, definition(**changes), settings)
        campaign = send_checkin(session, OPERATOR, checkin)
        return checkin.id, campaign.id


def sms(db, limits, phone, text):
    """An incoming SMS through the real inbound path; returns the reply's text (None: nothing, or staff inbox)."""
    with db.session() as session:
        inbound, reply = receive_sms(session, limits=limits, provider_id=f"in-{next(_ids)}", phone=phone, text=text)
        return (inbound.keyword, reply.body if reply else None)


@pytest.fixture
def dispatcher(settings, db, redis, emulator):
    settings = settings.replace(
        at_api_base_url=emulator.url, at_api_key="k", sms_rate_per_second=1000.0, quiet_hours=None
    )
    return Dispatcher(settings=settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(settings))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"questions": []}, "1 to 8 questions"),
        ({"questions": QUESTIONS * 3}, "1 to 8 questions"),
        ({"questions": [{**QUESTIONS[0], "text_st": ""}]}, r"question 1 \(Sesotho\) is empty"),
        ({"questions": [{**QUESTIONS[0], "text_en": "Income \u2014 now?"}]}, "cannot show"),
        ({"questions": [{**QUESTIONS[1], "min": 0}]}, "range within 1 to 97"),
        ({"questions": [{**QUESTIONS[2], "options": QUESTIONS[2]["options"][:1]}]}, "2 to 6 options"),
        ({"questions": [{**QUESTIONS[0], "kind": "essay"}]}, "the kind is one of"),
        ({"title_en": "{first_name}"}, "braces"),
        ({"districts": ["Gauteng"]}, "unknown district"),
        ({"closes_at": "2020-01-01"}, "closing date"),
        ({"remind_after_days": "-1"}, "reminder"),
    ],
)
def test_bad_checkins_are_refused_with_a_reason(db, settings, changes, reason):
    with pytest.raises(CheckinError, match=reason), db.session() as session:
        create_checkin(session, OPERATOR, definition(**changes), settings)


def test_sending_invites_the_audience_and_the_invitation_reaches_the_provider(
    db, redis, settings, dispatcher, emulator
):
    _, english = register(db, district="Maseru", language="en")
    _, sesotho = register(db, district="Maseru", language="st")
    _, stopped = register(db, district="Maseru")
    _, elsewhere = register(db, district="Berea")
    with db.session() as session:
        get_or_create_contact(session, stopped).alerts_on = False
    checkin_id, campaign_id = define_and_send(db, settings)
    with db.session() as session:
        checkin = find_checkin(session, OPERATOR, checkin_id)
        assert checkin.status == CheckinStatus.OPEN
        # Invited: everyone in the audience, STOP or not (they may still answer on USSD); only SMS respects STOP.
        assert invitation_counts(session, checkin)["invited"] == 3
        assert session.get(Campaign, campaign_id).kind == CampaignKind.CHECKIN
        actions = [entry.action for entry in session.execute(select(AuditLog)).scalars()]
        assert {"checkin.create", "checkin.send"} <= set(actions)
    assert run_fanout(db, redis, campaign_id) == 2
    with db.session() as session:
        priorities = session.execute(
            select(OutboundMessage.priority).where(OutboundMessage.campaign_id == campaign_id)
        ).scalars()
        assert set(priorities) == {MessagePriority.BULK}  # quiet hours and the campaign's pause apply
    sent, _ = dispatcher.drain(MessagePriority.BULK)
    assert sent == 2
    texts = {m["phone"]: m["text"] for m in emulator.state.snapshot()["messages"]}
    assert set(texts) == {english, sesotho}
    assert "reply YES" in texts[english] and "Six months on" in texts[english] and "choose 7" in texts[english]
    assert "araba E" in texts[sesotho] and "Likhoeli tse tseletseng" in texts[sesotho]
    with db.session() as session, pytest.raises(CheckinError, match="only a draft"):
        send_checkin(session, OPERATOR, find_checkin(session, OPERATOR, checkin_id))


def test_people_whose_data_was_erased_are_not_asked(db, redis, settings):
    reference, _ = register(db, district="Maseru")
    register(db, district="Maseru")
    with db.session() as session:
        erase_person(session, redis, OPERATOR, reference, "asked in person")
    checkin_id, _ = define_and_send(db, settings)
    with db.session() as session:
        assert invitation_counts(session, find_checkin(session, OPERATOR, checkin_id))["invited"] == 1


def test_a_persons_export_holds_their_checkin_answers(db, settings, limits):
    reference, phone = register(db, district="Maseru")
    define_and_send(db, settings)
    for text in ("YES", "1", "99"):
        sms(db, limits, phone, text)
    with db.session() as session:
        (checkin,) = export_person(session, OPERATOR, reference)["checkins"]
    assert checkin["title"] == "Six months on" and checkin["status"] == "answering"
    assert [(a["question"], a["answer"], a["channel"]) for a in checkin["answers"]] == [
        ("Do you have an income now?", "yes", "sms"),
        ("How many meals did your household eat yesterday?", "prefer not to answer", "sms"),
    ]


def test_answering_by_sms_one_question_a_message(db, redis, settings, limits):
    _, phone = register(db, district="Maseru")
    define_and_send(db, settings)
    assert sms(db, limits, phone, "Hello, I need help") == (None, None)  # not about the check-in: staff inbox
    keyword, first = sms(db, limits, phone, "yes")
    assert keyword == "checkin" and first.startswith("1/3: Do you have an income now?") and "3 Prefer not" in first
    _, again = sms(db, limits, phone, "7")
    assert again.startswith("Please reply with one of the numbers below.\n1/3:")
    _, second = sms(db, limits, phone, "NO")  # a yes/no question takes the word too
    assert second.startswith("2/3: How many meals") and "from 1 to 5, or 99" in second
    _, wrong = sms(db, limits, phone, "9")
    assert wrong.startswith("Please reply with a number from 1 to 5.")
    assert sms(db, limits, phone, "My grant has not come yet") == (None, None)  # for staff; the question waits
    # STOP keeps its priority in the middle of a check-in.
    assert sms(db, limits, phone, "STOP")[0] == "stop"
    _, third = sms(db, limits, phone, "99")
    assert third.startswith("3/3: Is your business still running?") and "1 Yes, growing" in third
    _, done = sms(db, limits, phone, "2")
    assert done.startswith("Thank you for answering the check-in")
    _, once = sms(db, limits, phone, "YES")
    assert once == "You have already answered this check-in. Thank you."
    with db.session() as session:
        values = session.execute(select(CheckinAnswer.value).order_by(CheckinAnswer.question_id)).scalars().all()
        assert values == [2, None, 2]
        assert session.execute(select(CheckinInvitation.status)).scalar_one() == InvitationStatus.ANSWERED
        kinds = session.execute(select(OutboundMessage.kind).where(OutboundMessage.phone == phone)).scalars().all()
        assert kinds.count(MessageKind.CHECKIN) == 7


def test_declining_by_sms_and_each_person_answers_once(db, settings, limits):
    _, declining = register(db, district="Maseru")
    _, answering = register(db, district="Maseru")
    define_and_send(db, settings)
    assert sms(db, limits, declining, "che")[1].startswith("No problem.")
    assert sms(db, limits, declining, "1") == (None, None)  # nothing open for them any more
    now = utcnow()
    with db.session() as session:
        invitation = open_invitation(session, answering, now)
        question = next_question(session, invitation.id)
        assert record_answer(session, invitation.id, question.id, 1, "ussd", now) == Outcome.NEXT
        # The same question again (a second channel at the same moment): the first answer stands.
        assert record_answer(session, invitation.id, question.id, 2, "sms", now) == Outcome.NEXT
        assert next_question(session, invitation.id).position == 2
        values = (
            session.execute(select(CheckinAnswer.value).where(CheckinAnswer.invitation_id == invitation.id))
            .scalars()
            .all()
        )
        assert values == [1]
    with db.session() as session:
        assert invitation_counts(session, session.get(Checkin, invitation.checkin_id)) == {
            "invited": 0,
            "answering": 1,
            "answered": 0,
            "declined": 1,
        }


def test_one_reminder_after_n_days_to_those_who_have_not_answered(db, redis, settings, limits):
    _, answered = register(db, district="Maseru")
    _, declined = register(db, district="Maseru")
    _, waiting = register(db, district="Maseru")
    _, halfway = register(db, district="Maseru")
    checkin_id, _ = define_and_send(db, settings)
    for text in ("YES", "1", "2", "1"):
        sms(db, limits, answered, text)
    sms(db, limits, declined, "NO")
    sms(db, limits, halfway, "YES")
    sms(db, limits, halfway, "1")
    with db.session() as session:
        sent_at = find_checkin(session, OPERATOR, checkin_id).sent_at
    early = sweep_checkins(db, redis, now=sent_at + timedelta(days=3) - timedelta(minutes=1))
    assert early == {"checkins_closed": 0, "checkin_reminders": 0}
    later = sent_at + timedelta(days=3, minutes=1)
    assert sweep_checkins(db, redis, now=later)["checkin_reminders"] == 1
    assert sweep_checkins(db, redis, now=later + timedelta(days=1))["checkin_reminders"] == 0
    with db.session() as session:
        reminder_id = find_checkin(session, OPERATOR, checkin_id).reminder_campaign_id
    run_fanout(db, redis, reminder_id)
    with db.session() as session:
        phones = session.execute(
            select(OutboundMessage.phone, OutboundMessage.body).where(OutboundMessage.campaign_id == reminder_id)
        ).all()
    assert sorted(phone for phone, _ in phones) == sorted([waiting, halfway])
    assert all(body.startswith("Reminder from the returnee programme") for _, body in phones)


def test_closing_stops_answers_and_the_sweep_closes_at_the_closing_time(db, redis, settings, limits):
    _, phone = register(db, district="Maseru")
    _, other = register(db, district="Maseru")
    first, campaign_id = define_and_send(db, settings)
    with db.session() as session:
        close_checkin(session, OPERATOR, find_checkin(session, OPERATOR, first))
    assert sms(db, limits, phone, "YES") == (None, None)
    with db.session() as session:
        assert session.get(Campaign, campaign_id).status == "cancelled"  # invitations not sent are withdrawn
        assert "checkin.close" in [e.action for e in session.execute(select(AuditLog)).scalars()]
    second, _ = define_and_send(db, settings)
    with db.session() as session:
        closes_at = find_checkin(session, OPERATOR, second).closes_at
    assert float(redis.get(CHECKINS_OPEN_UNTIL_KEY) or 0) == 0  # sent without telling the menu (no commit hook)
    sweep_checkins(db, redis, now=closes_at - timedelta(minutes=1))
    assert float(redis.get(CHECKINS_OPEN_UNTIL_KEY)) == closes_at.timestamp()  # the sweep restores the mark
    assert sweep_checkins(db, redis, now=closes_at)["checkins_closed"] == 1
    assert float(redis.get(CHECKINS_OPEN_UNTIL_KEY)) == 0
    with db.session() as session:
        assert find_checkin(session, OPERATOR, second).status == CheckinStatus.CLOSED
        assert open_invitation(session, other, utcnow()) is None


def test_the_report_counts_answers_by_district_sex_and_age_band(db, settings, limits):
    year = utcnow().year
    people = [
        register(db, district="Maseru", sex="female", year_of_birth=year - 30)[1],
        register(db, district="Maseru", sex="female", year_of_birth=year - 31)[1],
        register(db, district="Berea", sex="male", year_of_birth=year - 50)[1],
    ]
    checkin_id, _ = define_and_send(db, settings, districts=[])
    for phone, income in zip(people, ("1", "1", "2"), strict=True):
        for text in ("YES", income, "3", "=HYPERLINK(1)"):
            sms(db, limits, phone, text)
    with db.session() as session:
        checkin = find_checkin(session, OPERATOR, checkin_id)
        counts = answer_counts(session, checkin)
        berea_only = answer_counts(session, checkin, ["Berea"])
    first = [(c.answer, c.district, c.sex, c.age_band, c.people) for c in counts if c.position == 1]
    assert first == [("no", "Berea", "male", "45-54", 1), ("yes", "Maseru", "female", "25-34", 2)]
    assert {c.people for c in counts if c.position == 2} == {2, 1} and all(
        c.answer == "3" for c in counts if c.position == 2
    )
    assert all(c.district == "Berea" for c in berea_only) and len(berea_only) == 2
    rows = list(csv.reader(io.StringIO(answers_csv(counts))))
    assert rows[0] == ["Question", "Question text", "Answer", "District", "Sex", "Age band", "People"]
    assert ["1", "Do you have an income now?", "yes", "Maseru", "female", "25-34", "2"] in rows
    # The third answer was refused (not a number of an option): the question is still open for them.
    assert sum(int(row[6]) for row in rows[1:] if row[0] == "3") == 0
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(CheckinAnswer)).scalar() == 6
