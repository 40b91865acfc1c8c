"""Africa's Talking callbacks. Each handler validates the form, calls one domain function and shapes the answer."""

from __future__ import annotations

import hmac
import logging
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import redis
from flask import Blueprint, Flask, Response, abort, request
from sqlalchemy.exc import SQLAlchemyError

from config.logging import log_context
from config.metrics import (
    HOP_ANSWERED,
    HOP_COUNTERS,
    HOP_UNAVAILABLE,
    HOP_UNSERVED,
    REFUSED_BAD_REQUEST,
    REFUSED_NETWORK,
    REFUSED_TOKEN,
    SESSION_END_OTHER,
    USSD_END_STATUSES,
    USSD_HOP_SECONDS,
    USSD_SESSIONS_ENDED,
    WEBHOOK_REFUSALS,
)
from gateway.security import caller_allowed
from gateway.services import get_services
from menus import UssdRequest, UssdResponse, unavailable_response, unserved_number_response
from models.phone import PhoneNumberError, mask_phone, normalize_phone
from models.ussd import record_session_end
from notifications.sms.delivery import record_delivery_report
from notifications.sms.inbound import receive_sms
from notifications.sms.queues import kick

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# Longest provider session id we accept; longer values are not from the provider.
MAX_SESSION_ID_LENGTH = 100
# Longest cumulative USSD text we accept (a session is short; this is far above any real one).
MAX_USSD_TEXT_LENGTH = 2000
# The largest callback body we read, and the most fields in it: the provider's are a few hundred bytes.
MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 30
URLENCODED = "application/x-www-form-urlencoded"
# The largest count (hops, milliseconds) a callback may carry: the database column is a 32-bit integer.
MAX_COUNT = 2**31 - 1


class BadRequest(ValueError):
    """A callback the provider could not have sent: answered 400 with the reason."""


@bp.before_request
def require_token() -> None:
    """Only the provider may call: from WEBHOOK_ALLOWED_NETWORKS when set, and with WEBHOOK_TOKEN as ?token= when set
    (production requires it); the provider does not sign requests."""
    settings = get_services().settings
    if not caller_allowed(settings):
        log.warning("refused %s from %s: not in WEBHOOK_ALLOWED_NETWORKS", request.path, request.remote_addr)
        WEBHOOK_REFUSALS.labels(reason=REFUSED_NETWORK).inc()
        abort(Response("caller not in WEBHOOK_ALLOWED_NETWORKS\n", status=403, mimetype="text/plain"))
    expected = settings.webhook_token
    if expected and not hmac.compare_digest(request.args.get("token", "").encode(), expected.encode()):
        WEBHOOK_REFUSALS.labels(reason=REFUSED_TOKEN).inc()
        abort(Response("invalid or missing token\n", status=403, mimetype="text/plain"))


@bp.errorhandler(BadRequest)
def bad_request(error: BadRequest) -> Response:
    log.warning("rejected %s: %s", request.path, error)
    WEBHOOK_REFUSALS.labels(reason=REFUSED_BAD_REQUEST).inc()
    return Response(f"{error}\n", status=400, mimetype="text/plain")


def _read_form() -> dict[str, str]:
    """The callback's fields.

    The provider posts `application/x-www-form-urlencoded`, which the standard library parses in one call, for a
    third of what werkzeug's general form parser costs on every USSD hop; anything else (a test tool posting
    multipart) still goes through werkzeug.
    """
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise BadRequest(f"the body is longer than {MAX_FORM_BYTES} bytes")
    if request.mimetype != URLENCODED:
        return request.form.to_dict()
    body = request.get_data(as_text=True)
    if len(body) > MAX_FORM_BYTES:  # sent without a Content-Length
        raise BadRequest(f"the body is longer than {MAX_FORM_BYTES} bytes")
    try:
        return dict(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except ValueError:
        raise BadRequest(f"more than {MAX_FORM_FIELDS} form fields") from None


def _field(form: dict[str, str], name: str, *, required: bool = True, max_length: int = 200) -> str:
    value = form.get(name)
    if value is None or (required and not value.strip()):
        if required:
            raise BadRequest(f"missing form field: {name}")
        return ""
    if len(value) > max_length:
        raise BadRequest(f"form field {name} is longer than {max_length} characters")
    if "\x00" in value:  # no provider sends one, and PostgreSQL cannot store it
        raise BadRequest(f"form field {name} holds a NUL character")
    return value


def _optional_int(form: dict[str, str], name: str) -> int | None:
    raw = _field(form, name, required=False, max_length=20).strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"form field {name} must be a whole number, got {raw!r}") from None
    if not 0 <= value <= MAX_COUNT:
        raise BadRequest(f"form field {name} must be from 0 to {MAX_COUNT}")
    return value


def _plain(text: str) -> Response:
    return Response(text, mimetype="text/plain")


@bp.post("/at/ussd")
def ussd() -> Response:
    """One USSD hop: answers `CON …` or `END …`; never a 500, because the phone would show a cryptic error."""
    started = time.perf_counter()
    form = _read_form()
    services = get_services()
    session_id = _field(form, "sessionId", max_length=MAX_SESSION_ID_LENGTH)
    raw_phone = _field(form, "phoneNumber", max_length=32)
    service_code = _field(form, "serviceCode", max_length=40)
    text = _field(form, "text", required=False, max_length=MAX_USSD_TEXT_LENGTH)
    network_code = _field(form, "networkCode", required=False, max_length=10)
    expected_code = services.settings.ussd_service_code
    if expected_code and service_code != expected_code:
        raise BadRequest(f"serviceCode {service_code!r} is not this deployment's ({expected_code})")
    with log_context(session=session_id):
        try:
            phone = normalize_phone(raw_phone)
        except PhoneNumberError as exc:
            log.info("refused number %s: %s", mask_phone(raw_phone), exc)
            return _answered(unserved_number_response(), HOP_UNSERVED, started)
        try:
            response = services.ussd.handle(
                UssdRequest(
                    session_id=session_id, phone=phone, service_code=service_code, network_code=network_code, text=text
                )
            )
        except (redis.RedisError, SQLAlchemyError):
            log.exception("USSD hop failed for %s; answered the unavailable screen", mask_phone(phone))
            return _answered(unavailable_response(), HOP_UNAVAILABLE, started)
    return _answered(response, HOP_ANSWERED, started)


def _answered(response: UssdResponse, outcome: str, started: float) -> Response:
    """The hop's answer, counted: one increment and one observation, all a hop can afford."""
    HOP_COUNTERS[response.end, outcome].inc()
    USSD_HOP_SECONDS.observe(time.perf_counter() - started)
    return _plain(response.body)


@bp.post("/at/ussd/events")
def ussd_events() -> Response:
    """The provider's end-of-session report, kept for support and statistics."""
    form = _read_form()
    services = get_services()
    session_id = _field(form, "sessionId", max_length=MAX_SESSION_ID_LENGTH)
    raw_phone = _field(form, "phoneNumber", max_length=32)
    status = _field(form, "status", max_length=20)
    if status not in USSD_END_STATUSES:
        log.warning("unknown USSD session status %r for session %s", status, session_id)
    USSD_SESSIONS_ENDED.labels(status=status if status in USSD_END_STATUSES else SESSION_END_OTHER).inc()
    try:
        phone = normalize_phone(raw_phone)
    except PhoneNumberError:
        phone = raw_phone[:16]
    fields = {
        "service_code": _field(form, "serviceCode", required=False, max_length=40) or None,
        "network_code": _field(form, "networkCode", required=False, max_length=10) or None,
        "hops_count": _optional_int(form, "hopsCount"),
        "duration_ms": _optional_int(form, "durationInMillis"),
        "cost": _field(form, "cost", required=False, max_length=32) or None,
        "error_message": _field(form, "errorMessage", required=False, max_length=1000) or None,
        "ended_at": _parse_date(_field(form, "date", required=False, max_length=40)),
    }
    with log_context(session=session_id), services.db.session() as session:
        record_session_end(session, session_id=session_id, phone=phone, status=status[:20], **fields)
    return _plain("OK")


@bp.post("/at/sms/inbound")
def sms_inbound() -> Response:
    """An SMS to the programme. 200 as soon as it is stored: the provider re-sends whatever it does not see answered."""
    form = _read_form()
    # A NUL in a message is a gateway's encoding slip (GSM-7 writes @ as 0x00); keep the message rather than refuse
    # it, which would only make the provider re-send it for ever. PostgreSQL cannot store a NUL.
    form["text"] = form.get("text", "").replace("\x00", " ")
    services = get_services()
    provider_id = _field(form, "id", max_length=100)
    raw_phone = _field(form, "from", max_length=32)
    text = _field(form, "text", required=False, max_length=2000)
    sent_at = _parse_date(_field(form, "date", required=False, max_length=40))
    try:
        phone, served = normalize_phone(raw_phone), True
    except PhoneNumberError:
        phone, served = raw_phone.strip()[:16], False
    with log_context(sms=provider_id), services.db.session() as session:
        _inbound, reply = receive_sms(
            session,
            limits=services.limits,
            provider_id=provider_id,
            phone=phone,
            text=text,
            to=_field(form, "to", required=False, max_length=20) or None,
            link_id=_field(form, "linkId", required=False, max_length=100) or None,
            network_code=_field(form, "networkCode", required=False, max_length=10) or None,
            sent_at=sent_at,
            served=served,
        )
    if reply is not None:
        kick(services.redis, reply.priority)
    return _plain("OK")


@bp.post("/at/sms/delivery")
def sms_delivery() -> Response:
    """A delivery report. 200 to anything well-formed, unknown statuses too, so the provider stops re-sending."""
    form = _read_form()
    services = get_services()
    provider_id = _field(form, "id", max_length=100)
    status = _field(form, "status", max_length=32)
    raw_phone = _field(form, "phoneNumber", required=False, max_length=32)
    try:
        phone = normalize_phone(raw_phone) if raw_phone else None
    except PhoneNumberError:
        phone = raw_phone.strip()[:16]
    failure_reason = _field(form, "failureReason", required=False, max_length=64) or None
    with log_context(message=provider_id), services.db.session() as session:
        record_delivery_report(session, provider_id, status, phone, failure_reason)
    return _plain("OK")


def _parse_date(raw: str) -> datetime | None:
    """The provider writes `2021-03-01 10:00:00` or ISO 8601, in UTC."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that moves it past year 1 or 9999
        raise BadRequest(f"form field date is not a date: {raw!r}") from None


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
