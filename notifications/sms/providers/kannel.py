"""Kannel: sending through smsbox's `cgi-bin/sendsms`, what its delivery reports (dlr-url) mean, and the fields of
its incoming-SMS callback (smsbox `get-url`/`post-url`). Kannel then speaks SMPP to the network's SMSC.

Kannel gives no message id in its answer, so the gateway names each message itself (`provider_message_id`, from
our own row id) and puts that id in the message's `dlr-url`: a report is matched to its row without asking Kannel.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode

import requests
from urllib3.exceptions import NewConnectionError

from config.settings import KannelRoute
from models.messages import MessageStatus
from models.phone import mask_phone
from notifications.sms.encoding import is_gsm7
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

log = logging.getLogger(__name__)

SENDSMS_PATH = "/cgi-bin/sendsms"
DELIVERY_PATH = "/webhooks/kannel/sms/delivery"
# Seconds to open the connection, and to wait for smsbox's answer (it answers once bearerbox has taken the SMS).
CONNECT_TIMEOUT_SECONDS = 3.05
READ_TIMEOUT_SECONDS = 15.0
# Kannel's sendsms takes one receiver a call (several would share one dlr-url, and so one message id).
BATCH_SIZE = 1
# Every delivery report Kannel can send: 1 delivered, 2 failed, 4 buffered, 8 taken by the SMSC, 16 refused by it.
DLR_MASK = 31
# `coding=2` is UCS-2 (Kannel's `coding` field: 0 GSM-7, 1 8-bit, 2 UCS-2); the text we send is UTF-8.
CODING_UCS2 = 2
CHARSET = "UTF-8"
HTTP_ACCEPTED = 202
HTTP_FORBIDDEN = 403
HTTP_SERVER_ERROR = 500
# What smsbox says when the credentials are wrong (a 403 also refuses a number on its black or white list).
AUTHORIZATION_FAILED = "Authorization failed"
# How much of an answer goes into an error: enough to read.
ANSWER_CHARS = 200
# Our name for a message on a Kannel route, from our row id: unique, and known before Kannel answers.
PROVIDER_ID = "kannel:{message_id}"

# Kannel's delivery report types (the `%d` of a dlr-url) and the names the gateway keeps them under.
DLR_TYPE_NAMES = {
    1: "KannelDelivered",
    2: "KannelFailed",
    4: "KannelBuffered",
    8: "KannelSmscAccepted",
    16: "KannelSmscRejected",
}
REPORT_STATUSES = {
    "KannelDelivered": MessageStatus.DELIVERED,
    "KannelFailed": MessageStatus.FAILED,
    "KannelBuffered": MessageStatus.BUFFERED,
    "KannelSmscAccepted": MessageStatus.SENT,
    "KannelSmscRejected": MessageStatus.REJECTED,
}
# The longest callback fields we accept.
MAX_ID_CHARS = 100
MAX_PHONE_CHARS = 32
MAX_TEXT_CHARS = 2000
MAX_ANSWER_CHARS = 500
FAILURE_REASON_CHARS = 64


def provider_message_id(message_id: int) -> str:
    return PROVIDER_ID.format(message_id=message_id)


class KannelProvider:
    """`SmsProvider` over one Kannel route: smsbox's sendsms, one number a call, through that route's smsc."""

    batch_size = BATCH_SIZE
    _local = threading.local()

    def __init__(
        self,
        route: KannelRoute,
        callback_url: str,
        webhook_token: str = "",
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
    ) -> None:
        self.route = route
        self.timeout = timeout
        self.sendsms_url = f"{route.url}{SENDSMS_PATH}"
        query = {"token": webhook_token} if webhook_token else {}
        # smsbox fills in %d (report type) and %A (the SMSC's answer); %p is the receiver, for matching by number.
        self._dlr_base = f"{callback_url.rstrip('/')}{DELIVERY_PATH}?{urlencode({**query, 'route': route.name})}"

    def dlr_url(self, message_id: int) -> str:
        return f"{self._dlr_base}&message={message_id}&type=%d&answer=%A&phone=%p"

    def send(self, text: str, phones: list[str], message_ids: Sequence[int] | None = None) -> list[RecipientResult]:
        """Send `text` to one number; Kannel's answer mapped onto the outcomes (see `_judge`)."""
        if len(phones) != 1 or message_ids is None or len(message_ids) != 1:
            raise ValueError("Kannel's sendsms takes one number and its message id a call")
        [phone], [message_id] = phones, message_ids
        params = {
            "username": self.route.username,
            "password": self.route.password,
            "to": phone,
            "text": text,
            "charset": CHARSET,
            "dlr-mask": DLR_MASK,
            "dlr-url": self.dlr_url(message_id),
        }
        if not is_gsm7(text):
            params["coding"] = CODING_UCS2
        if self.route.smsc:
            params["smsc"] = self.route.smsc
        if self.route.sender:
            params["from"] = self.route.sender
        try:
            response = self._session().get(self.sendsms_url, params=params, timeout=self.timeout)
        except requests.Timeout as exc:
            unknown = not isinstance(exc, requests.ConnectTimeout)
            raise ProviderUnavailableError(f"smsbox timed out: {exc}", outcome_unknown=unknown) from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            unknown = not isinstance(reason, NewConnectionError)
            raise ProviderUnavailableError(f"smsbox unreachable: {exc}", outcome_unknown=unknown) from exc
        result = self._judge(phone, message_id, response.status_code, response.text.strip()[:ANSWER_CHARS])
        if not result.accepted:
            log.warning(
                "SMS %s to %s not taken by Kannel route %s: %s",
                message_id,
                mask_phone(phone),
                self.route.name,
                result.error,
            )
        return [result]

    def _judge(self, phone: str, message_id: int, status: int, answer: str) -> RecipientResult:
        """smsbox answers 202 with "0: Accepted for delivery" or "3: Queued for later delivery" (bearerbox has it
        and will send when the SMSC link is up: both are ours to track by report); 403 for wrong credentials (the
        whole route is refused) or a number its lists deny; other 4xx for a request it will never take; 5xx for
        trouble that may pass."""
        if status == HTTP_ACCEPTED or 200 <= status < 300:
            return RecipientResult(
                phone=phone,
                outcome=Outcome.ACCEPTED,
                message_id=provider_message_id(message_id),
                status_code=status,
                status=answer,
                cost=None,
                parts=None,
                error=None,
            )
        if status == HTTP_FORBIDDEN and AUTHORIZATION_FAILED.lower() in answer.lower():
            raise ProviderRejectedError(
                f"Kannel route {self.route.name} refused the credentials: {answer}", status_code=status
            )
        if status >= HTTP_SERVER_ERROR:
            raise ProviderUnavailableError(f"Kannel answered HTTP {status}: {answer}", status_code=status)
        return RecipientResult.refused(
            phone, Outcome.PERMANENT, f"Kannel refused: HTTP {status} {answer}", status=f"Kannel{status}"
        )

    def _session(self) -> requests.Session:
        # One keep-alive session per sending thread: `requests.Session` is not safe to share between threads.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session


def parse_delivery_report(form: dict[str, str]) -> tuple[int, str, str, str | None]:
    """A dlr-url call: (our message id, the report's status name, the receiver as Kannel writes it, a failure
    reason for reports that say the message failed)."""
    raw_id = callback_field(form, "message", max_length=20).strip()
    raw_type = callback_field(form, "type", max_length=4).strip()
    if not raw_id.isdigit():
        raise CallbackError(f"form field message must be our message id, got {raw_id!r}")
    try:
        status = DLR_TYPE_NAMES[int(raw_type)]
    except (ValueError, KeyError):
        raise CallbackError(f"form field type must be one of {sorted(DLR_TYPE_NAMES)}, got {raw_type!r}") from None
    answer = callback_field(form, "answer", required=False, max_length=MAX_ANSWER_CHARS).strip()
    phone = callback_field(form, "phone", required=False, max_length=MAX_PHONE_CHARS).strip()
    failed = REPORT_STATUSES[status] in (MessageStatus.FAILED, MessageStatus.REJECTED)
    return int(raw_id), status, phone, (answer[:FAILURE_REASON_CHARS] or status) if failed else None


def parse_incoming(form: dict[str, str], routes: Sequence[KannelRoute]) -> IncomingSms:
    """A smsbox get-url/post-url call: `from` (%p), `to` (%P), `text` (%a), `id` (%I), `smsc` (%i), `time` (%t).
    The route is the one whose KANNEL_R_SMSC is that smsc, else the smsc id as Kannel names it."""
    smsc = callback_field(form, "smsc", required=False, max_length=MAX_ID_CHARS).strip()
    route = next((route.name for route in routes if route.smsc and route.smsc == smsc), smsc or None)
    return IncomingSms(
        provider_id=provider_message_id_of_incoming(callback_field(form, "id", max_length=MAX_ID_CHARS).strip()),
        raw_phone=callback_field(form, "from", max_length=MAX_PHONE_CHARS),
        text=callback_field(
            {"text": without_nul(form.get("text", ""))}, "text", required=False, max_length=MAX_TEXT_CHARS
        ),
        to=callback_field(form, "to", required=False, max_length=20) or None,
        sent_at=_parse_time(callback_field(form, "time", required=False, max_length=40)),
        route=route,
    )


def provider_message_id_of_incoming(kannel_id: str) -> str:
    """Kannel's id of an incoming SMS, kept apart from Africa's Talking's ids."""
    return f"kannel:{kannel_id}"


def _parse_time(raw: str) -> datetime | None:
    """Kannel's `%t` is `YYYY-MM-DD HH:MM:SS` in UTC; `%T` (seconds since 1970) is taken too."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        if raw.isdigit():
            return datetime.fromtimestamp(int(raw), tz=UTC)
        return datetime.fromisoformat(raw).replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise CallbackError(f"form field time is not a time: {raw!r}") from None
