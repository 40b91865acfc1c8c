"""A local stand-in for Africa's Talking's SMS API, for development and tests. It never runs in production.

It speaks the provider's bulk SMS API (`POST /version1/messaging`, answered like the real one) so the gateway's
provider client, workers and delivery-report webhook can be exercised end to end without an account, credit or a
phone: a developer reads what "was sent" in a browser at `/inbox/<phone>`, and tests script the provider's bad days
(failed deliveries, invalid numbers, no credit, HTTP 500, a hanging API) through `/_emulator/...`.

It is a separate Flask app under `devtools/`; nothing in the domain packages imports it. Run it on its own:

    python -m devtools.emulator --port 8025 \\
        --delivery-report-url 'http://127.0.0.1:5000/webhooks/at/sms/delivery?token=...' --report-delay 1.0

and point the gateway at it with `AT_API_BASE_URL=http://127.0.0.1:8025`. Tests start it in-process with
`EmulatorServer`.

Control endpoints (JSON):
- `POST /_emulator/outcomes` `{"default": RULE, "times": K, "numbers": {"+266...": RULE or null}}` where RULE is an
  outcome name or `{"outcome": NAME, "failure_reason": ..., "seconds": ..., "status_code": ..., "times": K}`.
  `times` limits a rule to K uses, after which that number (or the default) is back to `delivered`; a use is one
  provider call for `http_500` and `hang`, one recipient otherwise. Per-number rules merge; null removes one.
- `GET /_emulator/messages`: `{"requests": [...], "messages": [...], "reports": [...]}`, everything recorded.
- `POST /_emulator/config` `{"delivery_report_url": ..., "report_delay": ..., "api_key": ..., "latency": ...,
  "jitter": ..., "max_calls_per_second": ..., "max_in_flight": ...}`.

A real provider is a network away: `--latency 0.15 --jitter 0.05` delays every messaging call by 150 ms ± 50 ms
(uniformly; calls are served concurrently, one thread each, as a real API serves them). And a real provider pushes
back when pressed: `--max-calls-per-second R` answers HTTP 429 to a call that would make more than R calls in the
last second, `--max-in-flight N` to a call that finds N calls already being answered. A refused call takes no time and
records nothing but the request. Every request keeps its arrival time (`at`, Unix seconds), so a test can count the
calls and messages of any one-second window.
- `POST /_emulator/reset`: forget messages, rules and pending delivery reports.
"""

from __future__ import annotations

import argparse
import collections
import copy
import heapq
import itertools
import json
import logging
import random
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import requests
from flask import Flask, Response, abort, jsonify, render_template_string, request
from werkzeug.serving import make_server

from models.phone import mask_phone
from notifications.sms.encoding import sms_parts

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025
DEFAULT_REPORT_DELAY_SECONDS = 1.0
DEFAULT_HANG_SECONDS = 35.0  # longer than the provider client's read timeout
# Delivery reports that cannot be posted are tried this many times in all, waiting longer after each failure.
REPORT_ATTEMPTS = 3
REPORT_RETRY_BACKOFF_SECONDS = 0.5
REPORT_POST_TIMEOUT_SECONDS = 5.0
# How often a background server checks for `stop()`: short, so tests do not wait half a second per server.
SERVE_POLL_SECONDS = 0.05

# Africa's Talking's documentation does not say which 2xx it answers; 201 is what integrations report seeing, and
# it keeps clients honest about accepting any 2xx.
SEND_HTTP_STATUS = 201
TOO_MANY_REQUESTS_STATUS = 429
TOO_MANY_REQUESTS_TEXT = "Too Many Requests"
# The window of `max_calls_per_second`.
RATE_WINDOW_SECONDS = 1.0
UNAUTHORIZED_TEXT = "The supplied authentication is invalid"
CURRENCY = "LSL"
COST_PER_PART = Decimal("0.3000")
MESSAGE_ID_PREFIX = "ATXid_"
NO_MESSAGE_ID = "None"  # how the provider writes "no message id"
E164 = re.compile(r"^\+\d{6,15}$")
# Network codes are MCC+MNC (651 is Lesotho): Vodacom Lesotho numbers start +2665, Econet Telecom Lesotho +2666.
NETWORK_CODES = {"+2665": "65101", "+2666": "65102"}
UNKNOWN_NETWORK_CODE = "99999"

# Recipient statuses of the send answer (`notifications.sms.providers.africastalking` maps them), for the
# `status_code` outcome.
STATUS_NAMES = {
    100: "Processed",
    101: "Success",
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}
SENT_CODE = 101
ACCEPTED_CODES = frozenset({100, 101, 102})  # Processed, Sent, Queued: the message gets an id and a report
INVALID_NUMBER_CODE = 403
INSUFFICIENT_BALANCE_CODE = 405


class EmulatedOutcome(StrEnum):
    DELIVERED = "delivered"  # accepted, then a `Success` delivery report
    FAILED = "failed"  # accepted, then a `Failed` report with a failure reason
    REJECTED = "rejected"  # accepted, then a `Rejected` report with a failure reason
    INVALID_NUMBER = "invalid_number"  # statusCode 403 inside a successful answer
    INSUFFICIENT_BALANCE = "insufficient_balance"  # statusCode 405 inside a successful answer
    STATUS_CODE = "status_code"  # any recipient statusCode (e.g. 406, 501) inside a successful answer
    HTTP_500 = "http_500"  # the whole call answers HTTP 500
    HANG = "hang"  # the call answers only after `seconds` (messages accepted all the same)


# Outcomes that decide the whole call rather than one recipient; their `times` counts calls.
CALL_OUTCOMES = frozenset({EmulatedOutcome.HTTP_500, EmulatedOutcome.HANG})
DEFAULT_FAILURE_REASONS = {
    EmulatedOutcome.FAILED: "DeliveryFailure",
    EmulatedOutcome.REJECTED: "DoNotDisturbRejection",
}
REPORT_STATUSES = {
    EmulatedOutcome.DELIVERED: "Success",
    EmulatedOutcome.FAILED: "Failed",
    EmulatedOutcome.REJECTED: "Rejected",
}


class RuleError(ValueError):
    """An outcome rule posted to the emulator cannot be understood."""


@dataclass
class OutcomeRule:
    """What the emulator does with a number (or with every number, as the default)."""

    outcome: EmulatedOutcome = EmulatedOutcome.DELIVERED
    failure_reason: str | None = None
    seconds: float = DEFAULT_HANG_SECONDS
    status_code: int | None = None
    times: int | None = None  # uses left; None until changed

    @classmethod
    def parse(cls, raw: Any, times: Any = None) -> OutcomeRule:
        """A rule from its JSON form: an outcome name, or an object with `outcome` and its options."""
        if isinstance(raw, str):
            raw = {"outcome": raw}
        if not isinstance(raw, dict) or "outcome" not in raw:
            raise RuleError(f"a rule is an outcome name or an object with 'outcome', got {raw!r}")
        try:
            outcome = EmulatedOutcome(raw["outcome"])
        except ValueError:
            names = ", ".join(item.value for item in EmulatedOutcome)
            raise RuleError(f"unknown outcome {raw['outcome']!r}; known: {names}") from None
        times = raw.get("times", times)
        try:
            rule = cls(
                outcome=outcome,
                failure_reason=raw.get("failure_reason") or raw.get("failureReason"),
                seconds=float(raw.get("seconds", DEFAULT_HANG_SECONDS)),
                status_code=int(raw["status_code"]) if raw.get("status_code") is not None else None,
                times=int(times) if times is not None else None,
            )
        except (TypeError, ValueError) as exc:
            raise RuleError(f"bad rule {raw!r}: {exc}") from None
        if rule.times is not None and rule.times < 1:
            raise RuleError("times must be at least 1")
        if outcome is EmulatedOutcome.STATUS_CODE and rule.status_code not in STATUS_NAMES:
            raise RuleError(f"status_code must be one of {sorted(STATUS_NAMES)}")
        return rule


# What `POST /_emulator/config` may change, and how each value is read.
CONFIGURABLE = {
    "api_key": str,
    "username": str,
    "delivery_report_url": str,
    "report_delay": float,
    "latency": float,
    "jitter": float,
    "max_calls_per_second": float,
    "max_in_flight": int,
}


@dataclass(order=True)
class _PendingReport:
    due: float
    sequence: int
    message_id: str = ""
    attempt: int = 1


class EmulatorState:
    """Everything the emulator remembers, behind one lock: the web server answers from several threads."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        username: str | None = None,
        delivery_report_url: str | None = None,
        report_delay: float = DEFAULT_REPORT_DELAY_SECONDS,
        latency: float = 0.0,
        jitter: float = 0.0,
        max_calls_per_second: float | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        self.api_key = api_key  # when set, calls must carry exactly this key; otherwise any non-empty key
        self.username = username  # when set, calls must name this user
        self.delivery_report_url = delivery_report_url
        self.report_delay = report_delay
        self.latency = latency  # seconds every messaging call takes, as over a real network
        self.jitter = jitter  # latency varies uniformly by up to this much either way
        self.max_calls_per_second = max_calls_per_second  # above this, calls are answered 429 (None: no limit)
        self.max_in_flight = max_in_flight  # calls answered at once; one more is answered 429 (None: no limit)
        self._in_flight = 0
        self._arrivals: collections.deque[float] = collections.deque()  # accepted calls of the last second
        self._random = random.Random()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._reports_changed = threading.Condition(self._lock)
        self._pending: list[_PendingReport] = []
        self._sequence = itertools.count()
        self._reporter: threading.Thread | None = None
        self._default = OutcomeRule()
        self._numbers: dict[str, OutcomeRule] = {}
        self._requests: list[dict] = []
        self._messages: dict[str, dict] = {}  # by message id, in the order they were accepted
        self._reports: list[dict] = []

    # -- configuration -------------------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        """Change `api_key`, `username`, `delivery_report_url`, `report_delay`, `latency`, `jitter`,
        `max_calls_per_second` or `max_in_flight` while running (null lifts a limit)."""
        with self._lock:
            for name, value in changes.items():
                if name not in CONFIGURABLE:
                    raise RuleError(f"unknown setting {name!r}")
                parse = CONFIGURABLE[name]
                setattr(self, name, None if value is None else parse(value))

    def set_outcomes(self, spec: dict) -> None:
        """Apply `{"default": RULE, "times": K, "numbers": {phone: RULE or None}}` (see the module docstring)."""
        if not isinstance(spec, dict):
            raise RuleError("outcomes must be a JSON object")
        default = OutcomeRule.parse(spec["default"], spec.get("times")) if "default" in spec else None
        numbers = spec.get("numbers") or {}
        if not isinstance(numbers, dict):
            raise RuleError("numbers must map phone numbers to rules")
        parsed = {phone.strip(): None if raw is None else OutcomeRule.parse(raw) for phone, raw in numbers.items()}
        with self._lock:
            if default is not None:
                self._default = default
            for phone, rule in parsed.items():
                if rule is None:
                    self._numbers.pop(phone, None)
                else:
                    self._numbers[phone] = rule

    def outcomes(self) -> dict:
        with self._lock:
            return {
                "default": asdict(self._default),
                "numbers": {phone: asdict(rule) for phone, rule in self._numbers.items()},
            }

    def reset(self) -> None:
        """Forget everything recorded, every rule and every pending delivery report."""
        with self._lock:
            self._default = OutcomeRule()
            self._numbers.clear()
            self._requests.clear()
            self._messages.clear()
            self._reports.clear()
            self._pending.clear()

    def close(self) -> None:
        """Stop the delivery-report thread and wake any hanging call, so a server can stop at once."""
        self._closing.set()
        with self._lock:
            self._reports_changed.notify_all()
        if self._reporter is not None:
            self._reporter.join(timeout=REPORT_POST_TIMEOUT_SECONDS)

    # -- what the API handler uses -------------------------------------------------------------------------------

    def take_rules(self, phones: list[str]) -> dict[str, OutcomeRule]:
        """The rule for each number of one call, using up `times` as the module docstring says."""
        with self._lock:
            current = {phone: self._numbers.get(phone, self._default) for phone in phones}
            failing = {id(rule): rule for rule in current.values() if rule.outcome is EmulatedOutcome.HTTP_500}
            if failing:
                # A call that fails as a whole uses only the rules that failed it: no number got an answer.
                for rule in failing.values():
                    self._use(rule)
                return current
            rules: dict[str, OutcomeRule] = {}
            used_call_rules: set[int] = set()
            for phone in phones:
                # Looked up afresh: a rule used up by an earlier number of this call no longer applies.
                rule = rules[phone] = self._numbers.get(phone, self._default)
                if rule.outcome in CALL_OUTCOMES:
                    if id(rule) in used_call_rules:
                        continue
                    used_call_rules.add(id(rule))
                self._use(rule)
            return rules

    def _use(self, rule: OutcomeRule) -> None:
        """Count one use of `rule`; a rule with no uses left gives way to `delivered`. The caller holds the lock."""
        if rule.times is None:
            return
        rule.times -= 1
        if rule.times > 0:
            return
        if rule is self._default:
            self._default = OutcomeRule()
        for phone in [phone for phone, candidate in self._numbers.items() if candidate is rule]:
            del self._numbers[phone]

    def admit(self) -> bool:
        """May one more messaging call be answered now? False when answering it would exceed `max_in_flight` or
        `max_calls_per_second` (the caller answers 429); True counts it in flight until `done`."""
        now = time.monotonic()
        with self._lock:
            while self._arrivals and self._arrivals[0] <= now - RATE_WINDOW_SECONDS:
                self._arrivals.popleft()
            if self.max_in_flight is not None and self._in_flight >= self.max_in_flight:
                return False
            if self.max_calls_per_second is not None and len(self._arrivals) + 1 > self.max_calls_per_second:
                return False
            self._in_flight += 1
            self._arrivals.append(now)
            return True

    def done(self) -> None:
        """An admitted call has been answered."""
        with self._lock:
            self._in_flight -= 1

    def delay(self) -> float:
        """This call's latency: `latency` ± up to `jitter`, never negative."""
        with self._lock:
            spread = self._random.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
            return max(0.0, self.latency + spread)

    def wait(self, seconds: float) -> None:
        """Hang for `seconds`, or less if the emulator is closing."""
        self._closing.wait(seconds)

    def record_request(self, form: dict, headers: dict) -> dict:
        entry = {"time": _now(), "at": time.time(), "form": form, "headers": headers, "http_status": None}
        with self._lock:
            self._requests.append(entry)
        return entry

    def answered(self, entry: dict, http_status: int) -> None:
        with self._lock:
            entry["http_status"] = http_status

    def record_message(self, phone: str, text: str, sender: str | None, rule: OutcomeRule, parts: int) -> str:
        """Keep an accepted message, schedule its delivery report, and return its message id."""
        message_id = f"{MESSAGE_ID_PREFIX}{uuid.uuid4().hex}"
        report_status = REPORT_STATUSES.get(rule.outcome, REPORT_STATUSES[EmulatedOutcome.DELIVERED])
        failure_reason = None
        if rule.outcome in DEFAULT_FAILURE_REASONS:
            failure_reason = rule.failure_reason or DEFAULT_FAILURE_REASONS[rule.outcome]
        with self._lock:
            self._messages[message_id] = {
                "id": message_id,
                "phone": phone,
                "text": text,
                "sender": sender,
                "time": _now(),
                "parts": parts,
                "outcome": str(rule.outcome),
                "report_status": report_status,
                "failure_reason": failure_reason,
                "reported": False,
            }
            if self.delivery_report_url:
                self._schedule(_PendingReport(time.monotonic() + self.report_delay, next(self._sequence), message_id))
        return message_id

    def snapshot(self) -> dict:
        """Copies of everything recorded, safe to serialise while other threads go on."""
        with self._lock:
            return copy.deepcopy(
                {"requests": self._requests, "messages": list(self._messages.values()), "reports": self._reports}
            )

    def messages_for(self, phone: str) -> list[dict]:
        digits = _digits(phone)
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.values() if _digits(m["phone"]) == digits]

    def phones(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for message in self._messages.values():
                counts[message["phone"]] = counts.get(message["phone"], 0) + 1
            return counts

    # -- delivery reports ----------------------------------------------------------------------------------------

    def _schedule(self, pending: _PendingReport) -> None:
        """Queue a report; the caller holds the lock. One thread posts them all, in the order they fall due."""
        heapq.heappush(self._pending, pending)
        if self._reporter is None or not self._reporter.is_alive():
            self._reporter = threading.Thread(target=self._post_reports, name="sms-emulator-reports", daemon=True)
            self._reporter.start()
        self._reports_changed.notify_all()

    def _post_reports(self) -> None:
        while not self._closing.is_set():
            with self._lock:
                while not self._closing.is_set():
                    delay = self._pending[0].due - time.monotonic() if self._pending else None
                    if delay is not None and delay <= 0:
                        break
                    self._reports_changed.wait(delay)
                if self._closing.is_set():
                    return
                pending = heapq.heappop(self._pending)
                message = self._messages.get(pending.message_id)
                url = self.delivery_report_url
                if message is None or not url:
                    continue  # reset, or reports switched off since
                form = _report_form(message)
            self._post_report(url, form, pending)

    def _post_report(self, url: str, form: dict, pending: _PendingReport) -> None:
        error, http_status = None, None
        try:
            response = requests.post(url, data=form, timeout=REPORT_POST_TIMEOUT_SECONDS)
            http_status = response.status_code
            if not 200 <= http_status < 300:
                error = f"HTTP {http_status}"
        except requests.RequestException as exc:
            error = str(exc)
        with self._lock:
            self._reports.append({**form, "attempt": pending.attempt, "http_status": http_status, "error": error})
            message = self._messages.get(pending.message_id)
            if error is None:
                if message is not None:
                    message["reported"] = True
                return
            if pending.attempt < REPORT_ATTEMPTS:
                backoff = REPORT_RETRY_BACKOFF_SECONDS * 2 ** (pending.attempt - 1)
                self._schedule(
                    _PendingReport(
                        time.monotonic() + backoff, next(self._sequence), pending.message_id, pending.attempt + 1
                    )
                )
                return
        logger.warning(
            "emulator gave up posting the delivery report of %s for %s after %d attempts: %s",
            pending.message_id,
            mask_phone(form["phoneNumber"]),
            pending.attempt,
            error,
        )


def _report_form(message: dict) -> dict:
    form = {
        "id": message["id"],
        "status": message["report_status"],
        "phoneNumber": message["phone"],
        "networkCode": _network_code(message["phone"]),
        "retryCount": "0",
    }
    if message["failure_reason"]:
        form["failureReason"] = message["failure_reason"]
    return form


def create_emulator_app(state: EmulatorState | None = None) -> Flask:
    """The emulator's web app; `state` is shared with whoever started it (tests read and script it)."""
    state = state or EmulatorState()
    app = Flask(__name__)
    app.extensions["sms_emulator"] = state

    @app.post("/version1/messaging")
    def send_messages():
        entry = state.record_request(request.form.to_dict(), dict(request.headers))
        if not state.admit():
            response = Response(TOO_MANY_REQUESTS_TEXT, status=TOO_MANY_REQUESTS_STATUS, content_type="text/plain")
        else:
            try:
                state.wait(state.delay())
                response = _answer_send(state)
            finally:
                state.done()
        state.answered(entry, response.status_code)
        return response

    @app.get("/")
    def index():
        return render_template_string(INDEX_PAGE, phones=state.phones())

    @app.get("/inbox/<path:phone>")
    def inbox(phone: str):
        return render_template_string(INBOX_PAGE, phone=phone, messages=state.messages_for(phone))

    @app.get("/_emulator/messages")
    def recorded():
        return jsonify(state.snapshot())

    @app.get("/_emulator/outcomes")
    def outcomes():
        return jsonify(state.outcomes())

    @app.post("/_emulator/outcomes")
    def set_outcomes():
        try:
            state.set_outcomes(request.get_json(force=True, silent=True))
        except RuleError as exc:
            abort(Response(f"{exc}\n", status=400, content_type="text/plain"))
        return jsonify(state.outcomes())

    @app.post("/_emulator/config")
    def configure():
        try:
            state.configure(**(request.get_json(force=True, silent=True) or {}))
        except (RuleError, TypeError, ValueError) as exc:
            abort(Response(f"{exc}\n", status=400, content_type="text/plain"))
        return jsonify({name: getattr(state, name) for name in CONFIGURABLE if name != "api_key"})

    @app.post("/_emulator/reset")
    def reset():
        state.reset()
        return jsonify({"reset": True})

    return app


def _answer_send(state: EmulatorState) -> Response:
    """Answer one send call the way the provider would, after the rules of its numbers."""
    api_key = request.headers.get("apiKey", "")
    username = request.form.get("username", "")
    if not api_key or (state.api_key and api_key != state.api_key) or (state.username and username != state.username):
        return Response(UNAUTHORIZED_TEXT, status=401, content_type="text/plain")
    phones = [phone.strip() for phone in request.form.get("to", "").split(",") if phone.strip()]
    text = request.form.get("message", "")
    if not phones or not text:
        missing = "to" if not phones else "message"
        return Response(f"Request is missing required form field '{missing}'", status=400, content_type="text/plain")

    rules = state.take_rules(phones)
    if any(rule.outcome is EmulatedOutcome.HTTP_500 for rule in rules.values()):
        return Response("Internal Server Error", status=500, content_type="text/plain")
    hangs = [rule.seconds for rule in rules.values() if rule.outcome is EmulatedOutcome.HANG]
    if hangs:
        state.wait(max(hangs))

    sender = request.form.get("from") or None
    parts = sms_parts(text)
    recipients = [_recipient(state, phone, text, sender, rules[phone], parts) for phone in phones]
    sent = [recipient for recipient in recipients if recipient["messageId"] != NO_MESSAGE_ID]
    total = COST_PER_PART * parts * len(sent)
    body = {
        "SMSMessageData": {
            "Message": f"Sent to {len(sent)}/{len(phones)} Total Cost: {_money(total) if sent else '0'}",
            "Recipients": recipients,
        }
    }
    return Response(json.dumps(body), status=SEND_HTTP_STATUS, content_type="application/json")


def _recipient(state: EmulatorState, phone: str, text: str, sender: str | None, rule: OutcomeRule, parts: int):
    code = SENT_CODE
    if not E164.match(phone) or rule.outcome is EmulatedOutcome.INVALID_NUMBER:
        code = INVALID_NUMBER_CODE
    elif rule.outcome is EmulatedOutcome.INSUFFICIENT_BALANCE:
        code = INSUFFICIENT_BALANCE_CODE
    elif rule.outcome is EmulatedOutcome.STATUS_CODE:
        code = rule.status_code
    accepted = code in ACCEPTED_CODES
    message_id = state.record_message(phone, text, sender, rule, parts) if accepted else NO_MESSAGE_ID
    return {
        "statusCode": code,
        "number": phone,
        "status": STATUS_NAMES[code],
        "cost": _money(COST_PER_PART * parts) if accepted else "0",
        "messageId": message_id,
        "messageParts": parts,
    }


INDEX_PAGE = """<!doctype html>
<title>SMS emulator</title>
<h1>SMS emulator (development only)</h1>
{% if phones %}<ul>{% for phone, count in phones.items() %}
<li><a href="/inbox/{{ phone }}">{{ phone }}</a> ({{ count }})</li>{% endfor %}</ul>
{% else %}<p>No messages yet.</p>{% endif %}
"""

INBOX_PAGE = """<!doctype html>
<title>Inbox {{ phone }}</title>
<h1>Inbox of {{ phone }}</h1>
<p><a href="/">All numbers</a></p>
{% if messages %}<ol>{% for m in messages %}
<li><p><small>{{ m.time }} from {{ m.sender or "(default sender)" }}, {{ m.parts }} part(s),
{{ m.report_status }}{% if m.failure_reason %} ({{ m.failure_reason }}){% endif %}, id {{ m.id }}</small></p>
<pre style="white-space: pre-wrap">{{ m.text }}</pre></li>{% endfor %}</ol>
{% else %}<p>No messages for this number.</p>{% endif %}
"""


class EmulatorServer:
    """The emulator as a real HTTP server on a background thread (tests, a development launcher).

    Port 0 picks a free port; `url` tells which. Use as a context manager, or `start()` and `stop()`.
    """

    def __init__(self, state: EmulatorState | None = None, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.state = state or EmulatorState()
        self.app = create_emulator_app(self.state)
        self._server = make_server(host, port, self.app, threaded=True)
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SERVE_POLL_SECONDS,), name="sms-emulator", daemon=True
        )

    @property
    def url(self) -> str:
        """The origin to use as `AT_API_BASE_URL`."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _money(amount: Decimal) -> str:
    return f"{CURRENCY} {amount:.4f}"


def _network_code(phone: str) -> str:
    for prefix, code in NETWORK_CODES.items():
        if phone.startswith(prefix):
            return code
    return UNKNOWN_NETWORK_CODE


def _digits(phone: str) -> str:
    return "".join(char for char in phone if char.isdigit())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def main(argv: list[str] | None = None) -> None:
    """Run the emulator in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m devtools.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (default %(default)s)")
    parser.add_argument("--delivery-report-url", help="where to POST delivery reports (the gateway's webhook)")
    parser.add_argument(
        "--report-delay",
        type=float,
        default=DEFAULT_REPORT_DELAY_SECONDS,
        help="seconds between accepting a message and reporting its delivery (default %(default)s)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds every messaging call takes (default %(default)s)"
    )
    parser.add_argument(
        "--jitter", type=float, default=0.0, help="latency varies uniformly by up to this much (default %(default)s)"
    )
    parser.add_argument(
        "--max-calls-per-second", type=float, help="answer 429 to calls above this many in the last second"
    )
    parser.add_argument("--max-in-flight", type=int, help="answer 429 to a call that finds this many being answered")
    parser.add_argument("--api-key", help="accept only this API key (default: any non-empty key)")
    parser.add_argument("--username", help="accept only this user name (default: any)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = EmulatorState(
        api_key=args.api_key,
        username=args.username,
        delivery_report_url=args.delivery_report_url,
        report_delay=args.report_delay,
        latency=args.latency,
        jitter=args.jitter,
        max_calls_per_second=args.max_calls_per_second,
        max_in_flight=args.max_in_flight,
    )
    server = make_server(args.host, args.port, create_emulator_app(state), threaded=True)
    logger.info(
        "SMS emulator on http://%s:%d (inboxes at /inbox/<phone>), latency %.3f s ± %.3f s",
        args.host,
        server.server_port,
        args.latency,
        args.jitter,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        state.close()
        server.server_close()


if __name__ == "__main__":
    main()
