"""Answering a check-in on USSD: `7` appears only while one is open for the caller, one question a screen, a wrong
key re-asks with a reason, declining, and once done (by USSD or SMS) `7` is gone."""

from __future__ import annotations

from sqlalchemy import select

from models.checkins import CheckinAnswer, CheckinInvitation, InvitationStatus
from notifications.checkins.definitions import (
    close_checkin,
    create_checkin,
    find_checkin,
    send_checkin,
    start_invitations,
)
from notifications.sms.inbound import receive_sms
from tests.factories import OPERATOR
from tests.menus.conftest import PHONE, Phone, register
from tests.notifications.checkins.test_checkins import definition

SEVEN = "7 Answer a short check-in"


def send(db, settings, redis, **changes) -> int:
    """A check-in sent to everyone, as the console sends it (the menu is told one is open after the commit)."""
    with db.session() as session:
        checkin = create_checkin(session, OPERATOR, definition(districts=[], **changes), settings)
        campaign = send_checkin(session, OPERATOR, checkin)
    start_invitations(redis, checkin, campaign)
    return checkin.id


def test_seven_is_absent_without_an_open_checkin_and_the_other_numbers_never_move(db, redis, settings, phone):
    register(db)
    main = phone.dial()
    assert SEVEN not in main and "6 Contact us" in main
    send(db, settings, redis)
    main = phone.dial()
    assert main.endswith("6 Contact us\n" + SEVEN)
    assert phone.send("7").startswith("CON Check-in for Palesa: Six months on. 3 short questions.\n1 Start\n2 No")


def test_answering_question_by_question_with_a_wrong_key_re_asked(db, redis, settings, phone):
    register(db)
    send(db, settings, redis)
    phone.dial()
    phone.send("7")
    first = phone.send("1")
    assert first.startswith("CON 1/3: Do you have an income now?\n1 Yes\n2 No\n3 Prefer not to answer")
    assert phone.send("4") == "CON Invalid choice.\n" + first[len("CON ") :]
    second = phone.send("1")
    assert second.startswith("CON 2/3: How many meals") and "Enter a number from 1 to 5.\n99 Prefer not" in second
    assert phone.send("6").startswith("CON Enter a number from 1 to 5.\n2/3:")
    assert phone.send("3").startswith("CON 3/3: Is your business still running?\n1 Yes, growing\n2 Yes\n3 Closed")
    assert phone.send("99").startswith("END Thank you for answering.")  # 99 passes any question
    with db.session() as session:
        assert session.execute(select(CheckinAnswer.value).order_by(CheckinAnswer.id)).scalars().all() == [1, 3, None]
        assert session.execute(select(CheckinInvitation.status)).scalar_one() == InvitationStatus.ANSWERED
    assert SEVEN not in phone.dial()


def test_a_dropped_session_resumes_at_the_next_question_and_00_keeps_seven(db, redis, settings, phone):
    register(db)
    send(db, settings, redis)
    phone.dial()
    phone.walk("7", "1", "2")
    assert phone.send("00").endswith(SEVEN)  # back on the main menu, 7 is still there
    phone.dial()  # the session dropped
    phone.send("7")
    assert phone.send("1").startswith("CON 2/3: How many meals")


def test_declining_the_whole_checkin_and_seven_is_gone(db, redis, settings, phone):
    register(db)
    send(db, settings, redis)
    phone.dial()
    phone.send("7")
    assert phone.send("2").startswith("END No problem. We will not ask you about this check-in again.")
    assert SEVEN not in phone.dial()
    with db.session() as session:
        assert session.execute(select(CheckinInvitation.status)).scalar_one() == InvitationStatus.DECLINED


def test_answered_by_sms_meanwhile_is_told_it_is_done(db, redis, settings, limits, phone):
    register(db)
    send(db, settings, redis)
    phone.dial()  # 7 shown
    with db.session() as session:
        for number, text in enumerate(("YES", "1", "2", "1")):
            receive_sms(session, limits=limits, provider_id=f"sms-{number}", phone=PHONE, text=text)
    assert phone.send("7") == "END You have already answered this check-in. Thank you."


def test_closed_meanwhile_and_in_sesotho(db, redis, settings, engine):
    register(db, language="st")
    checkin_id = send(db, settings, redis)
    phone = Phone(engine)
    main = phone.dial()
    assert main.endswith("7 Araba lipotso tse khuts'oane")
    assert phone.send("7").startswith("CON Lipotso tsa Palesa: Likhoeli tse tseletseng.")
    with db.session() as session:
        close_checkin(session, OPERATOR, find_checkin(session, OPERATOR, checkin_id))
    assert phone.send("1").startswith("END Lipotso tsena li koetsoe.")
    assert "7 " not in phone.dial()
