"""Whatever a caller with an open check-in types, on its screens: a CON or END screen that fits, never an exception,
and never more than one answer per question.

Runs against the real Redis and both databases; each example registers its own caller and sends a check-in.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from menus import UssdEngine
from models.checkins import CheckinAnswer
from notifications.checkins.definitions import create_checkin, send_checkin, start_invitations
from notifications.sms.encoding import gsm7_length, is_gsm7
from tests.factories import OPERATOR
from tests.menus.conftest import Phone, register
from tests.notifications.checkins.test_checkins import definition

_numbers = itertools.count(1)

KEYPAD = st.sampled_from(["0", "00", "98", "99", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "97"])
NOISE = st.one_of(
    st.just(""),
    st.just("*"),
    st.sampled_from(["yes", "E", "che", "END", "1*2", " 3 ", "-1", "05"]),
    st.text(max_size=12),
    st.text(alphabet="AZaz09 *#'-.", min_size=100, max_size=300),
)
ANSWER = st.one_of(KEYPAD, KEYPAD, KEYPAD, NOISE)


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    language=st.sampled_from(["en", "st"]),
    width=st.sampled_from([182, 160]),
    cumulative=st.booleans(),
    answers=st.lists(ANSWER, max_size=16),
)
def test_any_input_on_the_checkin_screens_gets_a_screen_that_fits(
    settings, db, redis, language, width, cumulative, answers
):
    number = f"+2665{next(_numbers) + 5000000:07d}"
    register(db, number, language=language)
    with db.session() as session:
        checkin = create_checkin(session, OPERATOR, definition(districts=[]), settings)
        campaign = send_checkin(session, OPERATOR, checkin)
    start_invitations(redis, checkin, campaign)
    engine = UssdEngine(settings=settings.replace(ussd_max_chars=width), database=db, redis=redis)
    phone = Phone(engine, number=number, cumulative=cumulative)
    bodies = [phone.dial(), phone.send("7")]
    for answer in answers:
        if phone.response.end:
            bodies.append(phone.dial())
        bodies.append(phone.send(answer))
    for body in bodies:
        assert body.startswith(("CON ", "END ")), body
        assert is_gsm7(body), body
        assert gsm7_length(body) <= width, body
    with db.session() as session:
        per_question = session.execute(
            select(func.count())
            .select_from(CheckinAnswer)
            .group_by(CheckinAnswer.invitation_id, CheckinAnswer.question_id)
        ).scalars()
        assert all(count == 1 for count in per_question)
