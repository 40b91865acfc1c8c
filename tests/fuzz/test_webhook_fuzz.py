"""Every provider callback fuzzed with hypothesis: random and missing fields, huge and empty values, any text, raw
bytes that are not UTF-8, and other content types. Whatever arrives, the answer is never a 5xx, never a stack trace,
and every refusal is plain text or JSON with a reason."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models.messages import InboundMessage
from tests.factories import register

WEBHOOKS = {
    "/webhooks/at/ussd": ("sessionId", "serviceCode", "phoneNumber", "networkCode", "text"),
    "/webhooks/at/ussd/events": (
        "sessionId",
        "phoneNumber",
        "status",
        "hopsCount",
        "durationInMillis",
        "errorMessage",
        "serviceCode",
        "networkCode",
        "cost",
        "date",
    ),
    "/webhooks/at/sms/inbound": ("from", "to", "text", "date", "id", "linkId", "networkCode"),
    "/webhooks/at/sms/delivery": ("id", "status", "phoneNumber", "networkCode", "failureReason", "retryCount"),
}
# Requests per callback: enough to reach every parser branch, few enough for the normal test run.
EXAMPLES_PER_WEBHOOK = 60
TRACE_MARKERS = ("Traceback", 'File "', "sqlalchemy.", "werkzeug.exceptions")
REFUSAL_TYPES = ("text/plain", "application/json")

# Values as the provider might send them, and as an attacker would: numbers, phones, dates, statuses, any text.
VALUES = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(["+26658000001", "58000001", "+27821234567", "Success", "Failed", "STOP", "HELP", "*123#", "1*1"]),
    st.integers().map(str),
    st.integers(min_value=2**31, max_value=10**30).map(str),
    # Values that broke callbacks before: NUL (PostgreSQL refuses it), dates an offset pushes past the calendar.
    st.sampled_from(["\x00", "a\x00b", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+05:00", str(2**40)]),
    st.datetimes().map(str),
    st.just(""),
    st.integers(min_value=1000, max_value=40000).map(lambda size: "9" * size),
)


# A well-formed callback of every kind, for the fuzzer to change a few fields of: past validation, into the handler.
WELL_FORMED = {
    "sessionId": "ATUid_fuzz",
    "serviceCode": "*123#",
    "phoneNumber": "+26658000001",
    "text": "",
    "status": "Success",
    "id": "ATXid_fuzz",
    "from": "+26658000001",
}


def forms(fields: tuple[str, ...]):
    """The callback's own fields, well-formed or missing or anything, plus unknown ones."""
    base = st.one_of(st.just({}), st.just({name: value for name, value in WELL_FORMED.items() if name in fields}))
    known = st.dictionaries(st.sampled_from(fields), VALUES, max_size=3)
    unknown = st.dictionaries(st.text(min_size=1, max_size=20), VALUES, max_size=3)
    return st.builds(lambda b, k, u: {**u, **b, **k}, base, known, unknown)


def bodies(fields: tuple[str, ...]):
    """(body bytes, content type): urlencoded forms, raw bytes in any encoding, multipart, JSON, nothing."""
    urlencoded = "application/x-www-form-urlencoded"
    return st.one_of(
        forms(fields).map(lambda form: (urlencode(form).encode(), urlencoded)),
        st.tuples(
            forms(fields).map(lambda form: urlencode(form, encoding="latin-1", errors="replace").encode("latin-1")),
            st.just(urlencoded + "; charset=latin-1"),
        ),
        st.tuples(st.binary(max_size=2000), st.sampled_from([urlencoded, "application/json", "text/plain", ""])),
        st.tuples(st.binary(max_size=200), st.just("multipart/form-data; boundary=xyz")),
        st.tuples(st.text(max_size=500).map(str.encode), st.just("application/json")),
    )


def check(response) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code < 500, body
    assert not any(marker in body for marker in TRACE_MARKERS), body
    if response.status_code >= 400:
        assert response.mimetype in REFUSAL_TYPES and body.strip(), (response.status_code, response.mimetype, body)


@pytest.mark.parametrize("path", WEBHOOKS)
def test_a_callback_never_fails_whatever_it_is_sent(app, path):
    client = app.test_client()

    @settings(
        max_examples=EXAMPLES_PER_WEBHOOK,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(sent=bodies(WEBHOOKS[path]), query=st.dictionaries(st.sampled_from(["token", "x"]), VALUES, max_size=2))
    def never_fails(sent, query):
        body, content_type = sent
        check(client.post(path, data=body, content_type=content_type, query_string=query))

    never_fails()


EVENTS = {"sessionId": "S1", "phoneNumber": "+26658000001", "status": "Success"}


@pytest.mark.parametrize(
    "extra",
    [
        {"hopsCount": str(10**20)},
        {"durationInMillis": str(2**40)},
        {"date": "9999-12-31T23:59:59-14:00"},
        {"errorMessage": "a\x00b"},
    ],
)
def test_what_the_fuzzer_found_is_a_400_with_a_reason(client, extra):
    response = client.post("/webhooks/at/ussd/events", data={**EVENTS, **extra})
    assert response.status_code == 400 and response.mimetype == "text/plain"
    assert next(iter(extra)) in response.get_data(as_text=True)


def test_an_inbound_sms_with_a_nul_is_kept(client, db):
    form = {"id": "ATXid_nul", "from": "+26658000001", "text": "Ke kopa\x00thuso"}
    assert client.post("/webhooks/at/sms/inbound", data=form).status_code == 200
    with db.session() as session:
        assert session.execute(select(InboundMessage.text)).scalar_one() == "Ke kopa thuso"


# The fuzzed phone number, with several people registered on it (a household phone): "whose?" and "for yourself or
# someone in your household?" are reached through the webhook too, and STOP acts for all of them.
HOUSEHOLD_PATHS = ("/webhooks/at/ussd", "/webhooks/at/sms/inbound")
HOUSEHOLD_ANSWERS = st.sampled_from(["1", "2", "0", "00", "3", "12345670", "Neo Mohapi", "STOP", "EMISA"])


@pytest.mark.parametrize("path", HOUSEHOLD_PATHS)
def test_a_household_phones_callbacks_never_fail(app, db, path):
    for name in ("Palesa Mohapi", "Thabo Mohapi", "Lineo Mohapi"):
        register(db, WELL_FORMED["phoneNumber"], full_name=name)
    client = app.test_client()
    ids = iter(range(10**6))

    @settings(max_examples=EXAMPLES_PER_WEBHOOK // 2, deadline=None, database=None)
    @given(answers=st.lists(st.one_of(HOUSEHOLD_ANSWERS, HOUSEHOLD_ANSWERS, VALUES), max_size=6))
    def never_fails(answers):
        form = {name: value for name, value in WELL_FORMED.items() if name in WEBHOOKS[path]}
        session_id, text = f"ATUid_household_{next(ids)}", ""
        for answer in ["", *answers]:
            text = f"{text}*{answer}" if text else answer  # cumulative, as Africa's Talking sends it
            sent = text if path.endswith("ussd") else answer
            form.update(text=sent, sessionId=session_id, id=f"ATXid_hh_{next(ids)}")
            response = client.post(path, data=form)
            check(response)
            if path.endswith("ussd") and response.status_code == 200:
                assert response.get_data(as_text=True).startswith(("CON ", "END "))

    never_fails()
