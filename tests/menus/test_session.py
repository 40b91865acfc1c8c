"""Session state in Redis: answers holding `*`, re-sent hops, latest-only gateways, TTLs, speed, logging."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import redis as redis_lib
from sqlalchemy import event, func, select

from config.logging import ContextFilter
from menus import UssdEngine
from menus.engine import new_answer
from menus.session import LANGUAGE_TTL_SECONDS, Frame, SessionState, draft_key, language_key, session_key
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


def command_names(packed: bytes) -> list[str]:
    """The command names in a RESP payload as the client writes it (`*3\r\n$4\r\nMGET\r\n…`)."""
    lines = packed.split(b"\r\n")
    names, index = [], 0
    while index < len(lines) and lines[index].startswith(b"*"):
        count = int(lines[index][1:])
        names.append(lines[index + 2].decode().upper())
        index += 1 + 2 * count
    return names


def counting_client(redis: redis_lib.Redis) -> tuple[redis_lib.Redis, list[list[str]]]:
    """A real client on the same server whose connections record each write to the socket: one round trip each,
    with the commands it carried. Counted at the socket, so it holds whatever layer of redis-py sent them."""
    round_trips: list[list[str]] = []
    base = redis.connection_pool.connection_class

    class CountingConnection(base):
        def send_packed_command(self, command, check_health=True):
            chunks = [command] if isinstance(command, bytes | str) else command
            payload = b"".join(chunk.encode() if isinstance(chunk, str) else bytes(chunk) for chunk in chunks)
            round_trips.append(command_names(payload))
            return super().send_packed_command(command, check_health)

    pool = redis_lib.ConnectionPool(connection_class=CountingConnection, **redis.connection_pool.connection_kwargs)
    return redis_lib.Redis(connection_pool=pool), round_trips


@pytest.mark.usefixtures("english")
def test_a_plain_menu_hop_costs_one_redis_read_one_redis_write_and_no_database(settings, db, redis):
    client, round_trips = counting_client(redis)
    engine = UssdEngine(settings=settings, database=db, redis=client)
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    phone = Phone(engine)
    phone.dial()  # the first hop looks the language up
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        for answer in ("3", "1", "98", "0", "00", "6", "2"):
            round_trips.clear()
            statements.clear()
            phone.send(answer)
            assert len(round_trips) == 2, (answer, round_trips)
            assert round_trips[0] == ["MGET"]
            assert round_trips[1] and set(round_trips[1]) <= {"SET", "DEL"}
            assert statements == [], answer
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_returning_callers_dial_takes_the_language_from_redis_without_the_database(settings, db, redis):
    client, round_trips = counting_client(redis)
    engine = UssdEngine(settings=settings, database=db, redis=client)
    first = Phone(engine)
    first.dial()
    first.send("2")  # Sesotho, stored on the contact and copied to Redis in the hop's one write
    assert redis.get(language_key(PHONE)) == b"st"
    assert LANGUAGE_TTL_SECONDS - 2 <= redis.ttl(language_key(PHONE)) <= LANGUAGE_TTL_SECONDS
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    round_trips.clear()
    later = Phone(engine).dial()
    assert later.startswith("CON Thuso ho ba khutlileng")  # the Sesotho main menu
    assert statements == []
    assert round_trips == [["MGET"], ["SET", "SET"]]  # the session, and the language copy's TTL renewed


def test_a_dial_without_the_language_copy_reads_the_database_and_restores_the_copy(engine, phone, db, redis):
    phone.dial()
    phone.send("1")
    redis.delete(language_key(PHONE))  # expired, or Redis restarted empty
    assert Phone(engine).dial().startswith("CON Returnee support")
    assert redis.get(language_key(PHONE)) == b"en"


def test_an_unreadable_language_copy_is_ignored(engine, phone, db, redis):
    phone.dial()
    phone.send("2")
    redis.set(language_key(PHONE), "xx")
    assert Phone(engine).dial().startswith("CON Thuso ho ba khutlileng")  # from the database
    assert redis.get(language_key(PHONE)) == b"st"


@pytest.mark.usefixtures("english")
def test_a_registration_answer_writes_session_and_draft_in_one_pipeline(settings, db, redis):
    client, round_trips = counting_client(redis)
    phone = Phone(UssdEngine(settings=settings, database=db, redis=client))
    phone.dial()
    phone.send("1")
    round_trips.clear()
    phone.send("Thabo Mokoena")
    assert round_trips == [["MGET"], ["SET", "SET"]]


@pytest.mark.usefixtures("english")
def test_a_re_sent_hop_costs_one_redis_read_and_no_write(settings, db, redis):
    client, round_trips = counting_client(redis)
    phone = Phone(UssdEngine(settings=settings, database=db, redis=client))
    phone.dial()
    phone.send("3")
    round_trips.clear()
    phone.resend()
    assert round_trips == [["MGET"]]


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
