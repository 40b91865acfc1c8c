"""Provider callbacks (Africa's Talking, Kannel). Each handler validates the form, calls one domain function and
shapes the answer; what a provider's fields mean is in its module under `notifications.sms.providers`."""

from __future__ import annotations

import hmac
import logging
import time
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
from notifications.sms.providers import africastalking, kannel
from notifications.sms.providers.base import CallbackError, IncomingSms, callback_field
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


class BadRequest(CallbackError):
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


@bp.errorhandler(CallbackError)
def bad_request(error: CallbackError) -> Response:
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
    return callback_field(form, name, required=required, max_length=max_length)


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
    return answer_ussd(_read_form())


def answer_ussd(form: dict[str, str]) -> Response:
    """One hop from the provider's form fields, after the caller checks: the webhook's, and the console's browser
    phone, which builds the same form so that what staff rehearse is what a phone gets."""
    started = time.perf_counter()
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
        "ended_at": africastalking.parse_date(_field(form, "date", required=False, max_length=40)),
    }
    with log_context(session=session_id), services.db.session() as session:
        record_session_end(session, session_id=session_id, phone=phone, status=status[:20], **fields)
    return _plain("OK")


@bp.post("/at/sms/inbound")
def sms_inbound() -> Response:
    """An SMS to the programme. 200 as soon as it is stored: the provider re-sends whatever it does not see answered."""
    return _receive(africastalking.parse_incoming(_read_form()))


@bp.route("/kannel/sms/inbound", methods=["GET", "POST"])
def kannel_sms_inbound() -> Response:
    """An SMS to the programme through Kannel (smsbox get-url or post-url). 200 once stored, as for Africa's
    Talking; smsbox answers the sender with our body unless the service says `omit-empty`, so it is empty."""
    form = _read_form() if request.method == "POST" else request.args.to_dict()
    _receive(kannel.parse_incoming(form, get_services().settings.kannel_routes))
    return _plain("")


def _receive(incoming: IncomingSms) -> Response:
    services = get_services()
    try:
        phone, served = normalize_phone(incoming.raw_phone), True
    except PhoneNumberError:
        phone, served = incoming.raw_phone.strip()[:16], False
    with log_context(sms=incoming.provider_id), services.db.session() as session:
        _inbound, reply = receive_sms(
            session,
            limits=services.limits,
            provider_id=incoming.provider_id,
            phone=phone,
            text=incoming.text,
            to=incoming.to,
            link_id=incoming.link_id,
            network_code=incoming.network_code,
            sent_at=incoming.sent_at,
            served=served,
            route=incoming.route,
        )
    if reply is not None:
        kick(services.redis, reply.priority)
    return _plain("OK")


@bp.post("/at/sms/delivery")
def sms_delivery() -> Response:
    """A delivery report. 200 to anything well-formed, unknown statuses too, so the provider stops re-sending."""
    form = _read_form()
    provider_id = _field(form, "id", max_length=100)
    status = _field(form, "status", max_length=32)
    failure_reason = _field(form, "failureReason", required=False, max_length=64) or None
    return _record_report(
        provider_id, status, _field(form, "phoneNumber", required=False, max_length=32), failure_reason
    )


@bp.route("/kannel/sms/delivery", methods=["GET", "POST"])
def kannel_sms_delivery() -> Response:
    """A Kannel delivery report: the dlr-url the gateway gave the message, with Kannel's `%d`, `%A` and `%p`."""
    form = _read_form() if request.method == "POST" else request.args.to_dict()
    form.update({key: value for key, value in request.args.items() if key not in form})
    message_id, status, raw_phone, failure_reason = kannel.parse_delivery_report(form)
    return _record_report(kannel.provider_message_id(message_id), status, raw_phone, failure_reason)


def _record_report(provider_id: str, status: str, raw_phone: str, failure_reason: str | None) -> Response:
    services = get_services()
    try:
        phone = normalize_phone(raw_phone) if raw_phone else None
    except PhoneNumberError:
        phone = raw_phone.strip()[:16]
    with log_context(message=provider_id), services.db.session() as session:
        record_delivery_report(session, provider_id, status, phone, failure_reason)
    return _plain("OK")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
