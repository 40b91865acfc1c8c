"""Africa's Talking: sending through its bulk SMS API (the `africastalking` SDK), what its delivery reports mean,
and the fields of its incoming-SMS and delivery-report callbacks. Everything the gateway knows about this provider
is in this module; the rest sees only `notifications.sms.providers.base`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from africastalking.Service import validate_phone
from africastalking.SMS import SMSService
from urllib3.exceptions import NewConnectionError

from config.settings import AFRICASTALKING_ROUTE
from models.messages import MessageStatus
from models.phone import mask_phone
from notifications.sms.providers.base import (
    CallbackError,
    IncomingSms,
    Outcome,
    ProviderRejectedError,
    ProviderUnavailableError,
    RecipientResult,
    callback_field,
    without_nul,
)

logger = logging.getLogger(__name__)

# Seconds to open the connection, and to wait for the answer once the request is sent. The read timeout is
# generous because the provider validates and prices a whole batch before it answers.
CONNECT_TIMEOUT_SECONDS = 3.05
READ_TIMEOUT_SECONDS = 30.0
DEFAULT_TIMEOUT = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)

API_VERSION_PATH = "/version1"
HTTP_TOO_MANY_REQUESTS = 429
HTTP_SERVER_ERROR = 500
# How much of an error answer's body goes into an exception message: enough to read, not a whole HTML page.
ERROR_BODY_CHARS = 300
# The provider's way of saying "no message id" inside a JSON answer.
NO_MESSAGE_ID = "None"

# Recipient status codes of Africa's Talking's SMS API (its "SMS: sending" documentation).
ACCEPTED_CODES = frozenset({100, 101, 102})  # Processed, Sent, Queued
PERMANENT_CODES = frozenset({401, 402, 403, 404, 406, 407, 409})  # RiskHold ... DoNotDisturbRejection
INSUFFICIENT_BALANCE_CODE = 405
RETRY_CODES = frozenset({500, 501, 502})  # InternalServerError, GatewayError, RejectedByGateway
# The names of those codes, for an answer that carries a status text but no usable code.
STATUS_CODES_BY_NAME = {
    "Processed": 100,
    "Sent": 101,
    "Success": 101,
    "Queued": 102,
    "RiskHold": 401,
    "InvalidSenderId": 402,
    "InvalidPhoneNumber": 403,
    "UnsupportedNumberType": 404,
    "InsufficientBalance": 405,
    "UserInBlacklist": 406,
    "CouldNotRoute": 407,
    "DoNotDisturbRejection": 409,
    "InternalServerError": 500,
    "GatewayError": 501,
    "RejectedByGateway": 502,
}

# Delivery report statuses (its "SMS: delivery reports" documentation), mapped to our lifecycle.
REPORT_STATUSES = {
    "Sent": MessageStatus.SENT,
    "Submitted": MessageStatus.SUBMITTED,
    "Buffered": MessageStatus.BUFFERED,
    "Success": MessageStatus.DELIVERED,
    "Failed": MessageStatus.FAILED,
    "AbsentSubscriber": MessageStatus.FAILED,
    "Rejected": MessageStatus.REJECTED,
    "Expired": MessageStatus.EXPIRED,
}


class _StatusKeepingSMSService(SMSService):
    """The SDK's SMS service, except that sending returns the HTTP response instead of judging it.

    The SDK's own `_make_request` raises `AfricasTalkingException(response.text)` for every non-2xx answer and
    loses the status code, yet a 503 (retry later) and a 401 (fix the API key) call for opposite actions. Catching
    that exception cannot tell them apart, so this subclass replaces only the transport step: the SDK still builds
    the request (URL, form fields `username`, `to`, `message`, `bulkSMSMode`, `from`, `enqueue`; headers `apiKey`,
    `Accept`), and `requests` sends it exactly as the SDK would, but the response comes back whole. The signature
    follows africastalking 2.0.3; the provider tests against the emulator fail loudly if an upgrade changes it.
    """

    _local = threading.local()

    def _make_request(self, url, method, headers, data, params, callback=None, timeout=DEFAULT_TIMEOUT):
        # One keep-alive session per sending thread: a new TCP (and TLS) connection per call would cost more
        # than the call itself, and a `requests.Session` is not safe to share between threads.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session.request(method, url, headers=headers, data=data, params=params, timeout=timeout)


class AfricasTalkingProvider:
    """`SmsProvider` over Africa's Talking's bulk SMS API, through the `africastalking` SDK."""

    def __init__(
        self,
        username: str,
        api_key: str,
        base_url: str,
        sender_id: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        enqueue: bool = False,
        batch_size: int = 100,
    ) -> None:
        self.sender_id = sender_id or None
        self.batch_size = batch_size
        self.timeout = timeout
        self.enqueue = enqueue
        self._service = _StatusKeepingSMSService(username, api_key)
        # The SDK picks production or sandbox from the user name; the setting (or a local emulator) wins.
        self._service._baseUrl = f"{base_url.rstrip('/')}{API_VERSION_PATH}"

    @classmethod
    def from_settings(cls, settings, **overrides) -> AfricasTalkingProvider:
        """The provider configured by `AT_USERNAME`, `AT_API_KEY`, `AT_SENDER_ID`, `AT_API_BASE_URL` and
        `AT_TIMEOUT_SECONDS` (the longest wait for an answer; connecting never waits longer than that either)."""
        read_timeout = settings.at_timeout_seconds
        options = {
            "sender_id": settings.at_sender_id or None,
            "timeout": (min(CONNECT_TIMEOUT_SECONDS, read_timeout), read_timeout),
            "batch_size": settings.sms_batch_size,
            **overrides,
        }
        return cls(settings.at_username, settings.at_api_key, settings.provider_base_url, **options)

    @property
    def base_url(self) -> str:
        return self._service._baseUrl

    def send(self, text: str, phones: list[str], message_ids: Sequence[int] | None = None) -> list[RecipientResult]:
        """Send `text` to `phones` in one provider call; one result per distinct number, in the order given.

        Numbers the SDK would refuse to send (not `+` and digits) are answered PERMANENT without a call, so one
        bad number cannot sink the batch. Raises `ProviderUnavailableError` or `ProviderRejectedError` when the
        call as a whole fails. `message_ids` are not needed: the provider answers with its own ids.
        """
        phones = list(dict.fromkeys(phones))  # one SMS per number, even if a caller repeats one
        malformed = {phone: _malformed(phone) for phone in phones if not validate_phone(phone)}
        sendable = [phone for phone in phones if phone not in malformed]
        answered: dict[str, RecipientResult] = {}
        summary = ""
        if sendable:
            payload = self._call(text, sendable)
            answered, summary = _parse_answer(payload, sendable)
        results = [malformed.get(phone) or answered.get(phone) or _missing(phone, summary) for phone in phones]
        _log_results(results)
        return results

    def _call(self, text: str, phones: list[str]) -> Any:
        """One HTTP call through the SDK; the parsed JSON answer, or a `ProviderError`."""
        try:
            response = self._service.send(
                text, phones, sender_id=self.sender_id, enqueue=self.enqueue, timeout=self.timeout
            )
        except requests.Timeout as exc:
            # A connect timeout means the request never left; a read timeout means it may have been accepted.
            unknown = not isinstance(exc, requests.ConnectTimeout)
            raise ProviderUnavailableError(f"provider timed out: {exc}", outcome_unknown=unknown) from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            unknown = not _never_connected(exc)
            raise ProviderUnavailableError(f"provider unreachable: {exc}", outcome_unknown=unknown) from exc

        status = response.status_code
        body = response.text[:ERROR_BODY_CHARS].strip()
        if status >= HTTP_SERVER_ERROR or status == HTTP_TOO_MANY_REQUESTS:
            raise ProviderUnavailableError(f"provider answered HTTP {status}: {body}", status_code=status)
        if not 200 <= status < 300:
            raise ProviderRejectedError(f"provider refused the call, HTTP {status}: {body}", status_code=status)
        # The SDK wants exactly `application/json`; accept a charset parameter too, the body is what matters.
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if media_type != "application/json":
                raise ValueError(f"content type {media_type or 'missing'}")
            return response.json()
        except ValueError as exc:
            raise ProviderUnavailableError(
                f"provider answered HTTP {status} with no readable JSON ({exc}): {body}",
                status_code=status,
                outcome_unknown=True,
            ) from exc


def _parse_answer(payload: Any, phones: list[str]) -> tuple[dict[str, RecipientResult], str]:
    """Results by number from the provider's JSON, and its summary line (`Message`)."""
    data = payload.get("SMSMessageData") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise ProviderUnavailableError(
            f"provider answer has no SMSMessageData: {str(payload)[:ERROR_BODY_CHARS]}",
            status_code=200,
            outcome_unknown=True,
        )
    summary = str(data.get("Message") or "")
    wanted = {_digits(phone): phone for phone in phones}
    results: dict[str, RecipientResult] = {}
    for entry in data.get("Recipients") or []:
        if not isinstance(entry, dict):
            continue
        # Match on digits: the provider may write a number without its `+`.
        phone = wanted.get(_digits(str(entry.get("number") or "")))
        if phone is not None and phone not in results:
            results[phone] = _recipient_result(phone, entry)
    return results, summary


def _recipient_result(phone: str, entry: dict) -> RecipientResult:
    status = str(entry.get("status") or "")
    code = _int_or_none(entry.get("statusCode"))
    if code is None:
        code = STATUS_CODES_BY_NAME.get(status)
    message_id = entry.get("messageId")
    message_id = None if message_id in (None, "", NO_MESSAGE_ID) else str(message_id)
    cost = entry.get("cost")
    cost = None if cost in (None, "", NO_MESSAGE_ID) else str(cost)
    outcome, error = _classify(code, status, message_id)
    return RecipientResult(
        phone=phone,
        outcome=outcome,
        message_id=message_id if outcome is Outcome.ACCEPTED else None,
        status_code=code,
        status=status,
        cost=cost,
        parts=_int_or_none(entry.get("messageParts")),
        error=error,
    )


def _classify(code: int | None, status: str, message_id: str | None) -> tuple[Outcome, str | None]:
    """The outcome of one recipient, and the reason when it was not accepted."""
    described = f"{status or 'no status'} ({code if code is not None else 'no code'})"
    if code in ACCEPTED_CODES:
        if message_id is None:
            # Accepted without an id cannot be tracked, and the provider's docs show this shape for failures.
            return Outcome.RETRY, f"provider said {described} but gave no message id"
        return Outcome.ACCEPTED, None
    if code in PERMANENT_CODES:
        return Outcome.PERMANENT, f"provider refused the number: {described}"
    if code == INSUFFICIENT_BALANCE_CODE:
        return Outcome.NO_CREDIT, f"provider account out of credit: {described}"
    if code in RETRY_CODES:
        return Outcome.RETRY, f"provider trouble: {described}"
    return Outcome.RETRY, f"unknown provider status: {described}"


def _malformed(phone: str) -> RecipientResult:
    return RecipientResult.refused(
        phone, Outcome.PERMANENT, "not an E.164 number (+ and digits); not sent", status="InvalidPhoneNumber"
    )


def _missing(phone: str, summary: str) -> RecipientResult:
    """A number the answer did not mention: nothing says it was taken, so it is retried.

    The provider answers a call it refuses as a whole (a wrong sender ID, for one) with a 200, an explanation in
    `Message` and no recipients; that explanation is kept as the reason.
    """
    return RecipientResult.retry(phone, f"provider answer did not mention this number: {summary or 'no message'}")


def _log_results(results: list[RecipientResult]) -> None:
    accepted = sum(result.accepted for result in results)
    logger.info("SMS provider took %d of %d recipients", accepted, len(results))
    for result in results:
        if not result.accepted:
            logger.warning("SMS to %s not accepted (%s): %s", mask_phone(result.phone), result.outcome, result.error)


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the connection was never opened (refused, unknown host), so the provider cannot have the SMS."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _digits(phone: str) -> str:
    return "".join(char for char in phone if char.isdigit())


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# The longest fields of its callbacks that we accept; longer values are not from the provider.
MAX_ID_CHARS = 100
MAX_PHONE_CHARS = 32
MAX_TEXT_CHARS = 2000


def parse_incoming(form: dict[str, str]) -> IncomingSms:
    """An incoming-SMS callback (`from`, `to`, `text`, `date`, `id`, `linkId`, `networkCode`)."""
    return IncomingSms(
        provider_id=callback_field(form, "id", max_length=MAX_ID_CHARS),
        raw_phone=callback_field(form, "from", max_length=MAX_PHONE_CHARS),
        text=callback_field(
            {"text": without_nul(form.get("text", ""))}, "text", required=False, max_length=MAX_TEXT_CHARS
        ),
        to=callback_field(form, "to", required=False, max_length=20) or None,
        link_id=callback_field(form, "linkId", required=False, max_length=MAX_ID_CHARS) or None,
        network_code=callback_field(form, "networkCode", required=False, max_length=10) or None,
        sent_at=parse_date(callback_field(form, "date", required=False, max_length=40)),
        route=AFRICASTALKING_ROUTE,
    )


def parse_date(raw: str) -> datetime | None:
    """The provider writes `2021-03-01 10:00:00` or ISO 8601, in UTC."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that moves it past year 1 or 9999
        raise CallbackError(f"form field date is not a date: {raw!r}") from None
