"""Session state in Redis: answers holding `*`, re-sent hops, latest-only gateways, TTLs, speed, logging."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import redis as redis_lib
from redis.client import Pipeline
from sqlalchemy import event, func, select

from config.logging import ContextFilter
from menus import UssdEngine
from menus.engine import new_answer
from menus.session import Frame, SessionState, draft_key, session_key
from models.messages import OutboundMessage
from models.people import Beneficiary
from models.requests import Feedback
from tests.menus.conftest import GOOD_ANSWERS, PHONE, Phone


def count(db, model) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize(
    ("last", "text", "answer"),
    [
        ("", "1", "1"),
        ("1", "1*2", "2"),
        ("1*2", "1*2*Thabo*Mokoena", "Thabo*Mokoena"),
        ("1*2", "1*2*", ""),
        ("1*2", "3", "3"),  # a gateway that sends only the latest answer
        ("1*2", "1*3", "1*3"),
    ],
)
def test_new_answer_is_the_remainder_of_the_cumulative_text_or_the_whole_text(last, text, answer):
    assert new_answer(last, text) == answer


@pytest.mark.usefixtures("english")
def test_an_answer_containing_a_star_is_kept_whole(phone, db):
    phone.dial()
    phone.walk("6", "2")
    phone.send("Paid *twice* to 5800*0001")
    with db.session() as session:
        assert session.execute(select(Feedback.text)).scalar_one() == "Paid *twice* to 5800*0001"


@pytest.mark.usefixtures("english")
def test_a_star_in_a_registration_answer_is_judged_as_one_answer(phone):
    phone.dial()
    phone.send("1")
    assert phone.send("Thabo*Mokoena").startswith("CON Enter your name in letters only.")
    assert phone.send("Thabo Mokoena").startswith("CON Sex:")


@pytest.mark.usefixtures("english")
def test_a_re_sent_confirm_hop_registers_once_and_owes_one_sms(phone, db):
    phone.dial()
    phone.send("1")
    phone.walk(*GOOD_ANSWERS)
    first = phone.send("1")
    assert first.startswith("END Thank you")
    assert phone.resend() == first
    assert phone.resend() == first
    assert count(db, Beneficiary) == 1 and count(db, OutboundMessage) == 1


@pytest.mark.usefixtures("english")
def test_a_re_sent_tips_hop_owes_one_sms(phone, db):
    phone.dial()
    phone.send("3")
    first = phone.send("6")
    assert phone.resend() == first
    assert count(db, OutboundMessage) == 1


@pytest.mark.usefixtures("english")
def test_a_re_sent_menu_hop_shows_the_same_screen_and_does_not_advance(phone):
    phone.dial()
    covid = phone.send("3")
    assert phone.resend() == covid
    assert phone.send("1").startswith("CON Prevention")  # the re-send did not count as choosing 3 again


@pytest.mark.usefixtures("english")
def test_a_re_sent_first_hop_shows_the_same_screen(phone):
    first = phone.dial()
    assert phone.resend() == first
    assert phone.send("2").startswith("CON Grant status") or "not registered" in phone.response.body


@pytest.mark.usefixtures("english")
def test_a_gateway_that_sends_only_the_latest_answer_works(engine, db):
    phone = Phone(engine, cumulative=False)
    phone.dial()
    phone.send("1")
    for answer in GOOD_ANSWERS:
        assert phone.send(answer).startswith("CON ")
    pages = [phone.response.body]
    while "98 More" in pages[-1]:
        pages.append(phone.send("98"))
    assert "Name: Thabo Mokoena" in "".join(pages)
    assert phone.send("1").startswith("END Thank you, Thabo.")
    assert count(db, Beneficiary) == 1


@pytest.mark.usefixtures("english")
def test_latest_only_gateway_repeating_an_answer_is_read_as_a_re_send(engine):
    """The documented ambiguity: two identical answers in a row on a latest-only gateway look like a re-send."""
    phone = Phone(engine, cumulative=False)
    phone.dial()
    covid = phone.send("3")
    assert phone.send("3") == covid


@pytest.mark.usefixtures("english")
def test_session_and_draft_live_in_redis_with_their_ttls(phone, redis, settings):
    phone.dial()
    phone.send("1")
    phone.send("Thabo Mokoena")
    state = json.loads(redis.get(session_key(phone.session_id)))
    assert state["last_text"] == "1*Thabo Mokoena" and state["language"] == "en"
    assert 0 < redis.ttl(session_key(phone.session_id)) <= settings.ussd_session_ttl_seconds
    assert 0 < redis.ttl(draft_key(PHONE)) <= settings.registration_draft_ttl_seconds
    assert json.loads(redis.get(draft_key(PHONE)))["answers"] == {"full_name": "Thabo Mokoena"}


def test_ttls_follow_the_settings(settings, db, redis):
    engine = UssdEngine(
        settings=settings.replace(ussd_session_ttl_seconds=42, registration_draft_ttl_seconds=4242),
        database=db,
        redis=redis,
    )
    phone = Phone(engine)
    phone.dial()
    phone.walk("1", "1", "Thabo Mokoena")
    assert 40 <= redis.ttl(session_key(phone.session_id)) <= 42
    assert 4240 <= redis.ttl(draft_key(PHONE)) <= 4242


def test_session_state_json_is_what_asdict_wrote_and_reads_back():
    """The hand-written serialisation must keep every field, and the format older processes wrote."""
    frame = Frame("question", {"field": "village"}, page=1, error="error.too_short", error_params={"minimum": 2})
    state = SessionState(
        language="st",
        stack=[Frame("main"), frame],
        last_text="1*Ha*Abia",
        last_body="CON …",
        ended=True,
        tips_sent=True,
    )
    assert json.loads(state.to_json()) == dataclasses.asdict(state)
    assert SessionState.from_json(state.to_json()) == state


class CountingPipeline(Pipeline):
    def __init__(self, *args, round_trips: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.round_trips = round_trips

    def execute(self, raise_on_error=True):
        self.round_trips.append(("pipeline", [command[0][0] for command in self.command_stack]))
        return super().execute(raise_on_error)


class CountingRedis(redis_lib.Redis):
    """A real client that records each round trip to the server: a command, or a whole pipeline."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.round_trips: list = []

    def execute_command(self, *args, **options):
        self.round_trips.append(("command", [args[0]]))
        return super().execute_command(*args, **options)

    def pipeline(self, transaction=True, shard_hint=None):
        return CountingPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint, round_trips=self.round_trips
        )


@pytest.mark.usefixtures("english")
def test_a_plain_menu_hop_costs_one_redis_read_one_redis_write_and_no_database(settings, db, redis):
    client = CountingRedis(connection_pool=redis.connection_pool)
    engine = UssdEngine(settings=settings, database=db, redis=client)
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    phone = Phone(engine)
    phone.dial()  # the first hop looks the language up
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        for answer in ("3", "1", "98", "0", "00", "6", "2"):
            client.round_trips.clear()
            statements.clear()
            phone.send(answer)
            assert [kind for kind, _ in client.round_trips] == ["command", "pipeline"], answer
            assert client.round_trips[0][1] == ["MGET"]
            assert set(client.round_trips[1][1]) <= {"SET", "DEL"}
            assert statements == [], answer
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


@pytest.mark.usefixtures("english")
def test_a_registration_answer_writes_session_and_draft_in_one_pipeline(settings, db, redis):
    client = CountingRedis(connection_pool=redis.connection_pool)
    phone = Phone(UssdEngine(settings=settings, database=db, redis=client))
    phone.dial()
    phone.send("1")
    client.round_trips.clear()
    phone.send("Thabo Mokoena")
    assert client.round_trips == [("command", ["MGET"]), ("pipeline", ["SET", "SET"])]


@pytest.mark.usefixtures("english")
def test_a_re_sent_hop_costs_one_redis_read_and_no_write(settings, db, redis):
    client = CountingRedis(connection_pool=redis.connection_pool)
    phone = Phone(UssdEngine(settings=settings, database=db, redis=client))
    phone.dial()
    phone.send("3")
    client.round_trips.clear()
    phone.resend()
    assert client.round_trips == [("command", ["MGET"])]


@pytest.mark.usefixtures("english")
def test_logs_carry_the_session_id_and_never_a_full_phone_number(phone, caplog):
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.DEBUG):
        phone.dial()
        phone.walk("4", "1", "00", "6", "1", "3")
    records = [record for record in caplog.records if record.name.startswith("menus")]
    assert records
    assert all(f"session={phone.session_id}" in record.context for record in records)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert PHONE not in text and PHONE[1:] not in text
    assert "+266****0001" in text


def test_a_session_state_from_an_older_deploy_starts_afresh(phone, redis, db):
    phone.dial()
    redis.set(session_key(phone.session_id), b"{not json")
    redis.set(draft_key(PHONE), b"[]")
    assert phone.send("1").startswith("CON ")


@pytest.mark.usefixtures("english")
def test_a_session_on_a_screen_this_version_does_not_have_starts_afresh(phone, redis):
    phone.dial()
    state = json.loads(redis.get(session_key(phone.session_id)))
    state["stack"] = [{"screen": "renamed_in_a_later_deploy"}]
    redis.set(session_key(phone.session_id), json.dumps(state))
    assert phone.send("3").startswith("CON Returnee support")
