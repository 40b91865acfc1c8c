"""Every setting of the gateway, read from the environment once, with its default and its reason."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from config.logging import LOG_FORMATS

DEVELOPMENT = "development"
TEST = "test"
PRODUCTION = "production"
ENVIRONMENTS = (DEVELOPMENT, TEST, PRODUCTION)

# The shortest secrets production accepts: a guessable webhook token lets anyone forge a USSD hop (and read a
# stranger's grant) or an inbound STOP; a short SECRET_KEY lets anyone forge a staff session cookie.
MIN_WEBHOOK_TOKEN_CHARS = 32
MIN_SECRET_KEY_BYTES = 32

# The development keys of national IDs at rest (models.crypto): derived from fixed, published text, so they protect
# nothing, and production refuses them; development and tests use these so that `make dev` needs no setup.
DEVELOPMENT_ENCRYPTION_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(b"returnee-gateway development encryption key; never for real data").digest()
).decode()
DEVELOPMENT_HASH_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(b"returnee-gateway development hash key; never for real data").digest()
).decode()

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Where development state lives (the SQLite file, the embedded Redis socket); ignored by git.
VAR_DIR = PROJECT_ROOT / "var"


class SettingsError(ValueError):
    """A setting is missing or cannot be parsed; the gateway refuses to start rather than guess."""


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _int_list(name: str, raw: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"{name} must be comma-separated whole numbers, got {raw!r}") from None
    if any(value < 0 for value in values):
        raise SettingsError(f"{name} must not be negative")
    return values


def _amount(name: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise SettingsError(f"{name} must be an amount in maloti such as 10000, got {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise SettingsError(f"{name} must be a positive amount in maloti, got {raw!r}")
    return value


# Words that switch a yes/no setting on or off.
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _bool(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word not in _TRUE_WORDS | _FALSE_WORDS:
        raise SettingsError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")
    return word in _TRUE_WORDS


# An E.164 number: a plus sign and 8 to 15 digits.
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")


def _phone_list(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated E.164 numbers (`+26659999001, +26659999002`); empty is none."""
    numbers = tuple(part.strip() for part in raw.split(",") if part.strip())
    wrong = [number for number in numbers if not _E164.fullmatch(number)]
    if wrong:
        raise SettingsError(f"{name} must be comma-separated E.164 numbers like +26659999001, got {wrong[0]!r}")
    return numbers


def _quiet_hours(name: str, raw: str) -> tuple[str, str] | None:
    """Parse `HH:MM-HH:MM`; empty turns quiet hours off."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        start, end = (part.strip() for part in raw.split("-"))
        for part in (start, end):
            hours, minutes = part.split(":")
            if not (0 <= int(hours) < 24 and 0 <= int(minutes) < 60):
                raise ValueError
    except ValueError:
        raise SettingsError(f"{name} must look like 20:00-07:00 or be empty, got {raw!r}") from None
    return start, end


def _networks(name: str, raw: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """Comma-separated CIDRs (`196.201.214.0/24, 10.0.0.5`); a bare address is a network of one."""
    try:
        return tuple(ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"{name} must be comma-separated networks like 196.201.214.0/24, got {raw!r}") from None


# The route name of Africa's Talking in SMS_ROUTES; every other route name is a Kannel route.
AFRICASTALKING_ROUTE = "africastalking"
# The SMS_ROUTES key that matches every number no other key matched.
ANY_NUMBER = "*"
# The environment names of Kannel route R's settings (R in upper case).
KANNEL_SETTING = "KANNEL_{route}_{name}"


@dataclass(frozen=True)
class KannelRoute:
    """One Kannel route: the smsbox that sends for it, its credentials, the smsc it names, its own send rate."""

    name: str  # as SMS_ROUTES writes it, e.g. VODACOM
    url: str  # smsbox base URL; the gateway calls {url}/cgi-bin/sendsms
    username: str
    password: str
    smsc: str  # Kannel's smsc-id of the link; empty lets Kannel's own routing choose
    rate_per_second: float
    sender: str  # the `from` of messages on this route (a short code or sender ID); empty lets Kannel choose


def _sms_routes(name: str, raw: str) -> tuple[tuple[str, str], ...]:
    """`vodacom=VODACOM;+2666=ECONET;*=africastalking` as (key, route) pairs; a `*` route is added when missing."""
    pairs: list[tuple[str, str]] = []
    for part in raw.split(";"):
        if not part.strip():
            continue
        key, sep, route = (piece.strip() for piece in part.partition("="))
        if not sep or not key or not route:
            raise SettingsError(f"{name} must be KEY=ROUTE pairs separated by ';', got {part.strip()!r}")
        if key.startswith("+") and not key[1:].isdigit():
            raise SettingsError(f"{name}: a number prefix is + and digits, got {key!r}")
        if not (key == ANY_NUMBER or key.startswith("+") or key.replace("-", "").isalnum()):
            raise SettingsError(f"{name}: a key is a network name, a number prefix like +2665 or *, got {key!r}")
        if not route.replace("_", "").isalnum():
            raise SettingsError(f"{name}: a route name is letters, digits and _, got {route!r}")
        pairs.append((key.lower(), AFRICASTALKING_ROUTE if route.lower() == AFRICASTALKING_ROUTE else route))
    if ANY_NUMBER not in dict(pairs):
        pairs.append((ANY_NUMBER, AFRICASTALKING_ROUTE))
    return tuple(pairs)


def kannel_routes(
    environ: Mapping[str, str], sms_routes: tuple[tuple[str, str], ...], default_rate: float
) -> tuple[KannelRoute, ...]:
    """Every Kannel route SMS_ROUTES names, from its KANNEL_R_* settings (their names depend on the routes, so they
    are read here rather than as fields). A route without a URL or user name refuses to start."""
    routes = []
    for route in dict.fromkeys(route for _, route in sms_routes if route != AFRICASTALKING_ROUTE):
        values = {
            setting: environ.get(KANNEL_SETTING.format(route=route.upper(), name=setting), "").strip()
            for setting in ("URL", "USERNAME", "PASSWORD", "SMSC", "RATE_PER_SECOND", "FROM")
        }
        url, username = values["URL"], values["USERNAME"]
        if not url or not username:
            names = ", ".join(KANNEL_SETTING.format(route=route.upper(), name=n) for n in ("URL", "USERNAME"))
            raise SettingsError(f"SMS_ROUTES names the Kannel route {route}: {names} must be set")
        rate_name = KANNEL_SETTING.format(route=route.upper(), name="RATE_PER_SECOND")
        rate = _float(rate_name, values["RATE_PER_SECOND"]) if values["RATE_PER_SECOND"] else default_rate
        if rate <= 0:
            raise SettingsError(f"{rate_name} must be positive")
        routes.append(
            KannelRoute(
                name=route,
                url=url.rstrip("/"),
                username=username,
                password=values["PASSWORD"],
                smsc=values["SMSC"],
                rate_per_second=rate,
                sender=values["FROM"],
            )
        )
    return tuple(routes)


@dataclass(frozen=True)
class Settings:
    """The gateway's settings. Field names are the environment variable names in lower case."""

    app_env: str = PRODUCTION  # development, test or production; unset is production, which refuses unsafe defaults
    secret_key: str = ""  # Flask secret; in production at least 32 bytes
    database_url: str = ""  # SQLAlchemy URL; SQLite file under var/ when empty
    redis_url: str = ""  # sessions and queues; empty starts an embedded Redis (development and test only)
    webhook_token: str = ""  # every /webhooks/ request must carry ?token=<this>, else 403; production: 32+ chars
    webhook_allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()  # CIDRs that may call /webhooks/; empty: any
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()  # CIDRs of proxies whose X-Forwarded-For is believed
    max_content_length: int = 4 * 1024 * 1024  # largest request body in bytes (413 above); over the 2 MB import
    at_username: str = "sandbox"  # Africa's Talking application user name
    at_api_key: str = ""  # Africa's Talking API key
    at_sender_id: str = ""  # sender ID or short code; empty lets the provider choose
    at_api_base_url: str = ""  # provider origin; empty picks production or sandbox from at_username
    ussd_service_code: str = ""  # the USSD code this deployment answers (e.g. *123#); empty accepts any
    ussd_max_chars: int = 182  # longest USSD screen in GSM-7 characters; some networks cut at 160
    test_numbers: tuple[str, ...] = ()  # E.164 numbers the console's browser phone may dial from in production
    ussd_session_ttl_seconds: int = 600  # a USSD session lasts at most ~180 s; keep state a little longer
    registration_draft_ttl_seconds: int = 86400  # an unfinished registration is kept 24 hours per number
    sms_rate_per_second: float = 10.0  # provider-wide send rate, across all workers
    sms_batch_size: int = 100  # recipients per provider call
    sms_send_concurrency: int = 4  # provider calls in flight per route a worker starts with; then it adapts (AIMD)
    sms_send_concurrency_max: int = 32  # most provider calls in flight per route and worker, however fast it answers
    quiet_hours: tuple[str, str] | None = ("20:00", "07:00")  # no bulk SMS in these Africa/Maseru hours
    sms_price_per_part: float = 0.30  # estimated provider price of one SMS part, in maloti, for campaign previews
    at_timeout_seconds: float = 15.0  # longest wait for the provider's answer to one send call
    sms_retry_backoff_seconds: tuple[int, ...] = (30, 120, 300, 600, 1800)  # waits between tries; then failed
    sms_claim_timeout_seconds: int = 120  # a claimed message untouched this long had its worker die mid-call
    sms_unknown_outcome_seconds: int = 1800  # how long to wait for a report to settle a mid-call death
    sms_credit_pause_seconds: int = 300  # after InsufficientBalance, sending pauses this long, then probes again
    sms_breaker_failures: int = 5  # consecutive provider-wide failures (5xx, timeouts) that stop all sending
    sms_breaker_cooldown_seconds: float = 5.0  # then sending waits this long before one call probes the provider
    sweep_interval_seconds: float = 30.0  # how often the worker re-enqueues messages left behind
    dashboard_refresh_seconds: float = 60.0  # the worker's sweep recounts the dashboard's figures when this old
    log_level: str = "INFO"  # root log level
    metrics_token: str = ""  # when set, GET /metrics wants `Authorization: Bearer <this>`; empty: open (firewall it)
    log_format: str = "text"  # text (one readable line) or json (one JSON object per line, for a log shipper)
    data_encryption_key: str = ""  # Fernet keys for national IDs at rest, newest first; required in production
    data_hash_key: str = ""  # HMAC key of the national ID hash (search, uniqueness); never rotated; required in prod
    retention_ussd_session_days: int = 90  # USSD session records (support questions come within weeks)
    retention_inbound_sms_days: int = 180  # text of SMS people sent; the row (counts, keyword) stays
    retention_sms_body_days: int = 30  # text of SMS sent, once their fate is known; status and dates stay
    retention_delivery_report_days: int = 30  # unmatched delivery reports (needed for minutes, kept for support)
    retention_audit_days: int = 2555  # audit entries: seven years, the donor's audit horizon
    retention_unregistered_days: int = 365  # numbers that never registered and went quiet: contact and free text
    covid_tips_sms_per_day: int = 1  # COVID-19 tips SMS one number can ask for in 24 hours (USSD)
    keyword_replies_per_hour: int = 3  # answers to HELP/STOP/START (and Sesotho) one number gets in an hour
    open_callbacks_per_number: int = 1  # call-back requests one number can have waiting for staff
    checkin_reminder_days: int = 3  # days after a check-in is sent when its one reminder goes (0: none); per check-in
    max_beneficiaries_per_phone: int = 4  # people one (shared household) phone number can register
    grant_max_amount: Decimal = Decimal("10000")  # largest grant in maloti; a larger amount is refused
    grant_four_eyes: bool = True  # who approved a grant's amount cannot schedule its payment; unset: production only
    sms_routes: tuple[tuple[str, str], ...] = ((ANY_NUMBER, AFRICASTALKING_ROUTE),)  # network/prefix/* → route
    kannel_routes: tuple[KannelRoute, ...] = ()  # read from KANNEL_<R>_* for every Kannel route SMS_ROUTES names
    kannel_callback_url: str = "http://127.0.0.1:5000"  # the gateway's origin as smsbox reaches it (dlr-url)
    national_id_attempts_per_day: int = 3  # national IDs one number can enter at USSD registration in 24 hours
    login_attempts_per_address: int = 30  # staff login tries from one address in 15 minutes (password spraying)
    staff_session_max_hours: int = 12  # a console login ends this long after it began, however busy
    login_attempts_per_account: int = 10  # staff login tries at one e-mail address in 15 minutes, from anywhere

    @property
    def is_production(self) -> bool:
        return self.app_env == PRODUCTION

    @property
    def provider_base_url(self) -> str:
        """The provider origin: the setting, else sandbox for the sandbox user, else production."""
        if self.at_api_base_url:
            return self.at_api_base_url.rstrip("/")
        if self.at_username == "sandbox":
            return "https://api.sandbox.africastalking.com"
        return "https://api.africastalking.com"

    def replace(self, **changes) -> Settings:
        return replace(self, **changes)


_PARSERS = {
    "ussd_max_chars": _int,
    "test_numbers": _phone_list,
    "ussd_session_ttl_seconds": _int,
    "registration_draft_ttl_seconds": _int,
    "sms_rate_per_second": _float,
    "sms_batch_size": _int,
    "sms_send_concurrency": _int,
    "sms_send_concurrency_max": _int,
    "quiet_hours": _quiet_hours,
    "at_timeout_seconds": _float,
    "sms_price_per_part": _float,
    "sms_retry_backoff_seconds": _int_list,
    "sms_claim_timeout_seconds": _int,
    "sms_unknown_outcome_seconds": _int,
    "sms_credit_pause_seconds": _int,
    "sms_breaker_failures": _int,
    "sms_breaker_cooldown_seconds": _float,
    "sweep_interval_seconds": _float,
    "dashboard_refresh_seconds": _float,
    "retention_ussd_session_days": _int,
    "retention_inbound_sms_days": _int,
    "retention_sms_body_days": _int,
    "retention_delivery_report_days": _int,
    "retention_audit_days": _int,
    "retention_unregistered_days": _int,
    "webhook_allowed_networks": _networks,
    "trusted_proxies": _networks,
    "max_content_length": _int,
    "covid_tips_sms_per_day": _int,
    "keyword_replies_per_hour": _int,
    "open_callbacks_per_number": _int,
    "checkin_reminder_days": _int,
    "max_beneficiaries_per_phone": _int,
    "grant_max_amount": _amount,
    "grant_four_eyes": _bool,
    "sms_routes": _sms_routes,
    "national_id_attempts_per_day": _int,
    "login_attempts_per_address": _int,
    "login_attempts_per_account": _int,
    "staff_session_max_hours": _int,
}
# Settings that are not one environment variable each (read by their own helper in `load_settings`).
_DERIVED = frozenset({"kannel_routes"})


def load_settings(environ: Mapping[str, str] | None = None, **overrides) -> Settings:
    """Read settings from `environ` (default `os.environ`), then apply typed `overrides` (used by tests)."""
    environ = os.environ if environ is None else environ
    values = {}
    for field in fields(Settings):
        if field.name in _DERIVED:
            continue
        raw = environ.get(field.name.upper())
        if raw is None:
            continue
        parse = _PARSERS.get(field.name)
        values[field.name] = parse(field.name.upper(), raw) if parse else raw
    values["kannel_routes"] = kannel_routes(
        environ,
        values.get("sms_routes", Settings.sms_routes),
        values.get("sms_rate_per_second", Settings.sms_rate_per_second),
    )
    values.update(overrides)
    # Segregation of duties is on in production unless switched off; development and tests have one person.
    values.setdefault("grant_four_eyes", values.get("app_env", PRODUCTION) == PRODUCTION)
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if settings.app_env not in ENVIRONMENTS:
        raise SettingsError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {settings.app_env!r}")
    if settings.is_production:
        if len(settings.secret_key.encode()) < MIN_SECRET_KEY_BYTES:
            raise SettingsError(
                f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes in production (APP_ENV unset means"
                " production): staff sessions are signed with it"
            )
        if len(settings.webhook_token) < MIN_WEBHOOK_TOKEN_CHARS:
            raise SettingsError(
                f"WEBHOOK_TOKEN must be at least {MIN_WEBHOOK_TOKEN_CHARS} characters in production (APP_ENV unset"
                " means production): without it anyone can forge provider callbacks"
            )
        if not settings.redis_url:
            raise SettingsError("REDIS_URL is required in production (the embedded Redis is for development)")
        if not settings.database_url:
            raise SettingsError("DATABASE_URL is required in production")
        if not settings.data_encryption_key or not settings.data_hash_key:
            raise SettingsError("DATA_ENCRYPTION_KEY and DATA_HASH_KEY are required in production (national IDs)")
        if {DEVELOPMENT_ENCRYPTION_KEY, DEVELOPMENT_HASH_KEY} & {
            key.strip() for key in f"{settings.data_encryption_key},{settings.data_hash_key}".split(",")
        }:
            raise SettingsError("DATA_ENCRYPTION_KEY and DATA_HASH_KEY must not be the published development keys")
    per_number = (
        settings.covid_tips_sms_per_day,
        settings.keyword_replies_per_hour,
        settings.open_callbacks_per_number,
        settings.national_id_attempts_per_day,
        settings.login_attempts_per_address,
        settings.login_attempts_per_account,
    )
    if min(per_number) < 0:
        raise SettingsError(
            "COVID_TIPS_SMS_PER_DAY, KEYWORD_REPLIES_PER_HOUR, OPEN_CALLBACKS_PER_NUMBER and"
            " NATIONAL_ID_ATTEMPTS_PER_DAY and LOGIN_ATTEMPTS_PER_* must not be negative"
        )
    if settings.max_beneficiaries_per_phone < 1:
        raise SettingsError("MAX_BENEFICIARIES_PER_PHONE must be at least 1")
    if settings.staff_session_max_hours < 1:
        raise SettingsError("STAFF_SESSION_MAX_HOURS must be at least 1")
    if settings.log_format not in LOG_FORMATS:
        raise SettingsError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {settings.log_format!r}")
    if settings.max_content_length < 1:
        raise SettingsError("MAX_CONTENT_LENGTH must be positive")
    if settings.ussd_max_chars < 60:
        raise SettingsError("USSD_MAX_CHARS below 60 cannot hold a menu")
    if settings.sms_batch_size < 1 or settings.sms_rate_per_second <= 0 or settings.sms_send_concurrency < 1:
        raise SettingsError("SMS_BATCH_SIZE, SMS_RATE_PER_SECOND and SMS_SEND_CONCURRENCY must be positive")
    if settings.sms_send_concurrency_max < settings.sms_send_concurrency:
        raise SettingsError("SMS_SEND_CONCURRENCY_MAX must be at least SMS_SEND_CONCURRENCY")
    if settings.sms_breaker_failures < 1 or settings.sms_breaker_cooldown_seconds <= 0:
        raise SettingsError("SMS_BREAKER_FAILURES and SMS_BREAKER_COOLDOWN_SECONDS must be positive")


def default_database_url() -> str:
    """SQLite file under var/, for development on a fresh machine."""
    VAR_DIR.mkdir(exist_ok=True)
    return f"sqlite:///{VAR_DIR / 'gateway.sqlite3'}"
