"""Whatever a caller types, on whatever screen: a CON or END screen that fits, never an exception.

Runs against the real Redis and both databases. Each example dials from its own phone number and session ids, so
the function-scoped fixtures can be shared between examples without cleaning.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from menus import UssdEngine
from notifications.sms.encoding import gsm7_length, is_gsm7
from tests.menus.conftest import GOOD_ANSWERS, Phone, register, set_language

_numbers = itertools.count(1)

KEYPAD = st.sampled_from(["0", "00", "98", "99", "1", "2", "3", "4", "5", "6", "7", "10", "11", "30", "31"])
NOISE = st.one_of(
    st.just(""),
    st.just("*"),
    st.just("**1*"),
    st.sampled_from(["1985", "2020", "Thabo Mokoena", "ls12345", "Ha Abia", "1*2*3", "12345678", "10000009"]),
    st.text(alphabet=st.characters(codec="ascii"), max_size=12),
    st.text(max_size=12),  # any unicode, control characters and NUL included
    st.text(alphabet="AZaz09 *#'-.", min_size=100, max_size=300),
)
ANSWER = st.one_of(KEYPAD, KEYPAD, NOISE)
# Often start by walking into the registration form, so that its late questions get random input too.
# Or into `6 Contact us`, up to the erasure request, as a stranger and once registered.
OPENING = st.sampled_from(
    [
        (),
        ("1",),
        ("1", *GOOD_ANSWERS[:4]),
        ("1", *GOOD_ANSWERS[:8]),
        ("1", *GOOD_ANSWERS),
        ("6", "3"),
        ("1", *GOOD_ANSWERS, "1", "6", "3"),
        # A phone that has people on it: "for yourself or someone in your household?", "whose?", a reference.
        ("1", "2", *GOOD_ANSWERS[:6]),
        ("1", "2", *GOOD_ANSWERS),
        ("1", "1"),
        ("2",),
        ("2", "2"),
    ]
)
# Household members registered on the number before it dials (0: a stranger; 4: a full phone by default).
HOUSEHOLD_NAMES = ("Palesa Mohapi", "Lineo Mohapi", "Thabo Mohapi", "Palesa Lebona", "Neo Mohapi")


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    language=st.sampled_from([None, "en", "st"]),
    width=st.sampled_from([182, 160]),
    cumulative=st.booleans(),
    opening=OPENING,
    answers=st.lists(ANSWER, max_size=14),
    resend_at=st.sets(st.integers(min_value=0, max_value=20), max_size=3),
    people=st.integers(min_value=0, max_value=len(HOUSEHOLD_NAMES)),
)
def test_any_input_on_any_screen_gets_a_screen_that_fits(
    settings, db, redis, language, width, cumulative, opening, answers, resend_at, people
):
    number = f"+2665{next(_numbers):07d}"
    if language:
        set_language(db, number, language)
    references = [
        register(db, number, name=name, max_per_phone=len(HOUSEHOLD_NAMES)) for name in HOUSEHOLD_NAMES[:people]
    ]
    if references:  # on "whose?" a caller may type a reference: one of theirs
        answers = [references[0] if answer == "12345678" else answer for answer in answers]
    engine = UssdEngine(settings=settings.replace(ussd_max_chars=width), database=db, redis=redis)
    phone = Phone(engine, number=number, cumulative=cumulative)
    bodies = [phone.dial()]
    for step, answer in enumerate([*opening, *answers]):
        if phone.response.end:
            bodies.append(phone.dial())
        bodies.append(phone.resend() if step in resend_at else phone.send(answer))
    for body in bodies:
        assert body.startswith(("CON ", "END ")), body
        assert is_gsm7(body), body
        assert gsm7_length(body) <= width, body
