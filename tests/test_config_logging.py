"""`LOG_FORMAT=json`: a real USSD hop's and a real send's log lines, one JSON object each, context and masking kept."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator

import pytest

from config.logging import JSON, TEXT, ContextFilter, formatter
from config.settings import SettingsError, load_settings
from models.messages import MessageKind, MessagePriority
from models.people import get_or_create_contact
from notifications.sms.dispatch import Dispatcher
from notifications.sms.outbox import owe_text
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from tests.factories import next_phone

USSD = "/webhooks/at/ussd"


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict]]]:
    """`json_lines()`: what the root logger wrote so far, through a handler built as `configure_logging` builds it
    for LOG_FORMAT=json (its formatter and context filter), parsed one JSON object per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(JSON))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_ussd_hop_logs_one_json_object_per_line_with_its_session_and_a_masked_number(client, json_lines):
    form = {"sessionId": "ATUid_json", "serviceCode": "*123#", "phoneNumber": "+26658000001", "text": ""}
    assert client.post(USSD, data=form).status_code == 200
    assert client.post(USSD, data=form).status_code == 200  # sent again: answered from the session, and logged
    json_lines_now = json_lines()
    resent = [line for line in json_lines_now if "re-sent hop" in line["message"]]
    assert resent and resent[0]["session"] == "ATUid_json"
    assert {"time", "level", "logger", "message"} <= resent[0].keys() and resent[0]["level"] == "INFO"
    assert all("58000001" not in json.dumps(line) for line in json_lines_now)


def test_a_send_logs_its_claim_and_message_id_and_masks_the_number(db, redis, settings, emulator, json_lines):
    sms_settings = settings.replace(at_api_base_url=emulator.url, at_api_key="test-key", sms_rate_per_second=1000.0)
    dispatcher = Dispatcher(
        settings=sms_settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(sms_settings)
    )
    phone = next_phone()
    with db.session() as session:
        message_id = owe_text(session, get_or_create_contact(session, phone), MessageKind.STAFF, "Hello").id
    emulator.state.set_outcomes({"numbers": {phone: "invalid_number"}})
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    dispatcher.close()
    lines = json_lines()
    refused = [line for line in lines if line["message"].startswith(f"message {message_id} ")]
    assert refused and refused[0]["claim"] and refused[0]["logger"] == "notifications.sms.dispatch"
    assert all(phone.removeprefix("+266") not in json.dumps(line) for line in lines)


def test_an_exception_travels_inside_its_line():
    record = logging.LogRecord("gateway", logging.ERROR, __file__, 1, "hop failed", None, None)
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    ContextFilter().filter(record)
    line = formatter(JSON).format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


def test_log_format_is_text_or_json():
    assert load_settings({}, app_env="test").log_format == TEXT
    assert load_settings({"LOG_FORMAT": "json"}, app_env="test").log_format == JSON
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        load_settings({"LOG_FORMAT": "yaml"}, app_env="test")
