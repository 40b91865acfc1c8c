"""Staff accounts, their roles and district limits, password login with lockout, and API tokens.

The web console, the JSON API and the CLI all go through these functions; none of them imports Flask. Passwords are
kept as scrypt hashes made by `werkzeug.security`, whose parameters travel in the hash, so the cost can be raised
later without breaking the hashes already stored; hashes in the gateway's earlier format are still read, and
rewritten at the next login. API tokens are kept as SHA-256 digests: a token is a long random secret, so a fast
hash is enough, and a leaked table gives nothing that logs in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache

from sqlalchemy import Boolean, ForeignKey, Integer, String, and_, case, literal, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.security import check_password_hash, generate_password_hash

from models.base import Base, TimestampMixin, UtcDateTime, utcnow
from models.db import Database
from models.people import DISTRICTS

# werkzeug's scrypt, with werkzeug's cost: hashes read `scrypt:<n>:<r>:<p>$<salt>$<key>`.
PASSWORD_METHOD = "scrypt"
# The gateway's earlier format, `scrypt$<n>$<r>$<p>$<salt>$<key>` (base64): read until every account has logged in
# once more. The memory ceiling handed to OpenSSL must exceed 128 * n * r bytes, 16 MiB for the cost those used.
LEGACY_PASSWORD_PREFIX = "scrypt$"
LEGACY_SCRYPT_MAX_MEMORY = 64 * 1024 * 1024

MIN_PASSWORD_LENGTH = 10
# Longer inputs are refused before hashing, so that a login form cannot be used to burn CPU.
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 254
# Failed passwords in a row that lock an account, and for how long.
MAX_FAILED_LOGINS = 5
LOCKOUT_DURATION = timedelta(minutes=15)

# Bytes of randomness in an API token (43 URL-safe characters); the prefix is what lists show to tell tokens apart.
TOKEN_BYTES = 32
TOKEN_PREFIX_LENGTH = 8
# `last_used_at` is written at most this often, so that a busy API client does not turn every read into a write.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)

# Stored district lists are comma-separated; no district name contains a comma.
DISTRICT_SEPARATOR = ","


class Role(StrEnum):
    """What a staff member may do. Each role can do everything the ones before it can."""

    VIEWER = "viewer"  # reads reports and records
    OFFICER = "officer"  # also changes beneficiaries and grants, within their districts
    ADMIN = "admin"  # also manages staff, tokens and settings; sees every district

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class StaffError(ValueError):
    """A staff account could not be created or changed; the message says why, for the operator."""


class LoginFailure(StrEnum):
    UNKNOWN_EMAIL = "unknown_email"
    WRONG_PASSWORD = "wrong_password"
    LOCKED = "locked"
    INACTIVE = "inactive"
    THROTTLED = "throttled"  # too many tries from this address or at this account lately (gateway.auth)


class LoginError(Exception):
    """A refused login. The message is precise (for logs and the CLI); the web form shows one generic text instead,
    so that it does not tell an attacker which e-mail addresses exist."""

    def __init__(self, reason: LoginFailure, message: str):
        super().__init__(message)
        self.reason = reason


class StaffUser(TimestampMixin, Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(MAX_EMAIL_LENGTH), unique=True)  # lower case
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # Comma-separated names from DISTRICTS; empty means every district.
    districts: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Every console session carries the number it started under; raising it ends every session of the account
    # (a password change, a deactivation, an admin's "sign out everywhere").
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="staff_user", order_by="ApiToken.id")

    def __repr__(self) -> str:
        return f"<StaffUser id={self.id} role={self.role}>"

    @property
    def district_list(self) -> tuple[str, ...]:
        """The districts this account is limited to; empty means all of them."""
        return tuple(name for name in (self.districts or "").split(DISTRICT_SEPARATOR) if name)

    def can_see_district(self, district: str) -> bool:
        """Officers and viewers limited to districts see only those; admins and unlimited accounts see all."""
        limited = self.district_list
        return self.role == Role.ADMIN or not limited or district in limited

    def has_role(self, role: Role | str) -> bool:
        """True when this account's role is `role` or one above it (viewer < officer < admin)."""
        return Role(self.role).rank >= Role(role).rank

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and _as_utc(self.locked_until) > now


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the token
    prefix: Mapped[str] = mapped_column(String(TOKEN_PREFIX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    staff_user: Mapped[StaffUser] = relationship(back_populates="tokens")

    def __repr__(self) -> str:
        return f"<ApiToken id={self.id} prefix={self.prefix}>"


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def hash_password(password: str) -> str:
    """A new hash of `password` (werkzeug's scrypt, a fresh salt each time)."""
    return generate_password_hash(password, method=PASSWORD_METHOD)


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`, in either format; a malformed stored hash never matches."""
    if stored.startswith(LEGACY_PASSWORD_PREFIX):
        return _verify_legacy_password(password, stored)
    try:
        return check_password_hash(stored, password)
    except ValueError:  # an unknown method, or parameters scrypt refuses
        return False


def password_needs_rehash(stored: str) -> bool:
    """Whether `stored` is in the earlier format, or has another method or cost than a new hash would have."""
    return stored.partition("$")[0] != _dummy_hash().partition("$")[0]


def _verify_legacy_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, key = stored.split("$")
        expected = base64.b64decode(key)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=LEGACY_SCRYPT_MAX_MEMORY,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@cache
def _dummy_hash() -> str:
    """A hash to check unknown e-mail addresses against, so that they take as long to refuse as known ones."""
    return hash_password(secrets.token_urlsafe(TOKEN_BYTES))


def normalize_email(email: str) -> str:
    """E-mail addresses are compared in lower case; refuse what cannot be one."""
    cleaned = email.strip().lower()
    local, at, domain = cleaned.partition("@")
    if not (local and at and "." in domain) or len(cleaned) > MAX_EMAIL_LENGTH or any(c.isspace() for c in cleaned):
        raise StaffError(f"{email!r} is not an e-mail address")
    return cleaned


def parse_districts(districts: str | Iterable[str] | None) -> tuple[str, ...]:
    """Names from DISTRICTS, matched without regard to case (`maseru,LERIBE` or a list); unknown names refused."""
    if districts is None:
        return ()
    parts = districts.split(DISTRICT_SEPARATOR) if isinstance(districts, str) else districts
    by_lower = {name.lower(): name for name in DISTRICTS}
    chosen: list[str] = []
    for part in parts:
        name = by_lower.get(part.strip().lower())
        if name is None:
            if not part.strip():
                continue
            raise StaffError(f"unknown district {part.strip()!r}; the districts are {', '.join(DISTRICTS)}")
        if name not in chosen:
            chosen.append(name)
    return tuple(sorted(chosen, key=DISTRICTS.index))


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StaffError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters")


def find_staff(session: Session, email: str) -> StaffUser | None:
    return session.execute(select(StaffUser).where(StaffUser.email == email.strip().lower())).scalar_one_or_none()


def create_staff(
    session: Session, email: str, role: Role | str, password: str, districts: str | Iterable[str] | None = None
) -> StaffUser:
    """A new, active staff account. Refuses a taken e-mail, an unknown role or district, and a short password."""
    email = normalize_email(email)
    try:
        role = Role(str(role).strip().lower())
    except ValueError:
        raise StaffError(f"unknown role {role!r}; the roles are {', '.join(Role)}") from None
    chosen = parse_districts(districts)
    if chosen and role == Role.ADMIN:
        raise StaffError("an admin sees every district; leave the districts out")
    check_password_rules(password)
    if find_staff(session, email) is not None:
        raise StaffError(f"there is already a staff account for {email}")
    user = StaffUser(
        email=email,
        password_hash=hash_password(password),
        role=role,
        districts=DISTRICT_SEPARATOR.join(chosen),
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(database: Database, email: str, password: str, now: datetime | None = None) -> StaffUser:
    """The account for this e-mail and password, or LoginError.

    Every try counts towards the lockout before its password is checked (`_count_try`), in a transaction of its own
    that is committed at once: the count stands whatever happens next, and no row lock or pooled connection is
    held through the slow password check. Unknown addresses and locked accounts still pay for one scrypt, so that
    response times do not tell them apart. The account comes back detached, its columns loaded.
    """
    now = now or utcnow()
    if len(password) > MAX_PASSWORD_LENGTH:
        password = ""  # never matches a stored password, and costs the same as any other
    with database.session() as session:
        user = find_staff(session, email) if len(email) <= MAX_EMAIL_LENGTH else None
        if user is not None:
            tries, locked_until = _count_try(session, user.id, now)
            _note(user, failed_logins=tries, locked_until=locked_until)
    if user is None:
        verify_password(password, _dummy_hash())
        raise LoginError(LoginFailure.UNKNOWN_EMAIL, f"no staff account for {email!r}")
    if tries > MAX_FAILED_LOGINS:
        verify_password(password, _dummy_hash())
        raise LoginError(LoginFailure.LOCKED, _locked_message(user.email, locked_until))
    if not verify_password(password, user.password_hash):
        if tries == MAX_FAILED_LOGINS:
            raise LoginError(LoginFailure.LOCKED, _locked_message(user.email, locked_until))
        raise LoginError(LoginFailure.WRONG_PASSWORD, f"wrong password for {user.email}")
    if not user.active:
        raise LoginError(LoginFailure.INACTIVE, f"the account {user.email} is disabled")
    with database.session() as session:
        user = session.get_one(StaffUser, user.id)
        if password_needs_rehash(user.password_hash):
            # The one moment the password is at hand: an older format or cost is rewritten as a new hash.
            user.password_hash = hash_password(password)
        session.execute(
            update(_staff_users)
            .where(_staff_users.c.id == user.id)
            .values(failed_logins=0, locked_until=None, last_login_at=now)
        )
        _note(user, failed_logins=0, locked_until=None, last_login_at=now)
    return user


_staff_users = StaffUser.__table__


def _count_try(session: Session, user_id: int, now: datetime) -> tuple[int, datetime | None]:
    """Count one login try against the account before its password is checked, in one atomic statement; returns
    the tries in this window (the try included) and the end of the lock.

    One `UPDATE ... SET failed_logins = failed_logins + 1 ... RETURNING`: a burst of parallel tries, from threads,
    processes or machines, each gets its own number, so only the first MAX_FAILED_LOGINS are checked at all; a
    read-then-write would let every try of the burst read "not locked yet". The try that reaches the limit starts
    the lock in the same statement; a lock that has ended starts a new window. A good password resets the count.
    """
    table = _staff_users
    expired = and_(table.c.locked_until.is_not(None), table.c.locked_until <= now)
    tries = case((expired, 1), else_=table.c.failed_logins + 1)
    locked_until = case(
        (expired, None),
        (
            and_(table.c.locked_until.is_(None), tries >= MAX_FAILED_LOGINS),
            literal(now + LOCKOUT_DURATION, UtcDateTime),
        ),
        else_=table.c.locked_until,
    )
    statement = (
        update(table)
        .where(table.c.id == user_id)
        .values(failed_logins=tries, locked_until=locked_until)
        .returning(table.c.failed_logins, table.c.locked_until)
    )
    count, until = session.execute(statement).one()
    return count, until


def _note(user: StaffUser, **written) -> None:
    """Show on the loaded account what a Core statement wrote, without marking it as a change to write again."""
    for name, value in written.items():
        set_committed_value(user, name, value)


def _locked_message(email: str, locked_until: datetime | None) -> str:
    minutes = int(LOCKOUT_DURATION.total_seconds() // 60)
    until = _as_utc(locked_until).strftime("%H:%M UTC") if locked_until else "-"
    return (
        f"the account {email} is locked after {MAX_FAILED_LOGINS} wrong passwords in a row; "
        f"it opens again at {until} ({minutes} minutes after the last try)"
    )


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def issue_token(session: Session, user: StaffUser, name: str) -> tuple[ApiToken, str]:
    """A new API token for `user`, and its text. Only the hash is stored: show the text once, it cannot be recovered."""
    if not user.active:
        raise StaffError(f"the account {user.email} is disabled")
    name = name.strip()
    if not name:
        raise StaffError("a token needs a name, to tell it apart when revoking")
    plaintext = secrets.token_urlsafe(TOKEN_BYTES)
    token = ApiToken(
        staff_user_id=user.id, name=name[:80], token_hash=hash_token(plaintext), prefix=plaintext[:TOKEN_PREFIX_LENGTH]
    )
    session.add(token)
    session.flush()
    return token, plaintext


def token_in_use(session: Session, plaintext: str, now: datetime | None = None) -> ApiToken | None:
    """The live token of an active account that `plaintext` is, else None; notes the use at most once a minute.

    The token, not only its account, so that the audit entry of an API action can name the token it used.
    """
    if not plaintext:
        return None
    token = session.execute(select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext))).scalar_one_or_none()
    if token is None or token.revoked_at is not None or not token.staff_user.active:
        return None
    now = now or utcnow()
    if token.last_used_at is None or now - _as_utc(token.last_used_at) >= TOKEN_TOUCH_INTERVAL:
        token.last_used_at = now
        session.flush()
    return token


def user_for_token(session: Session, plaintext: str, now: datetime | None = None) -> StaffUser | None:
    """The active account a live token belongs to, else None."""
    token = token_in_use(session, plaintext, now)
    return token.staff_user if token is not None else None


def revoke_token(session: Session, token: ApiToken, now: datetime | None = None) -> None:
    """Stop a token from working; the row stays, so that the audit log's references to it still resolve."""
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        session.flush()


def change_access(session: Session, user: StaffUser, role: str, districts, *, by: StaffUser | None) -> dict:
    """Set `user`'s role and districts; returns what changed (empty if nothing). Refuses what `create_staff` would.

    `by` is the account making the change (None: a CLI operator, who has no account to lock out). Everything is
    checked before anything is changed, so a refusal leaves `user` as it was.
    """
    try:
        new_role = Role(role.strip().lower())
    except ValueError:
        raise StaffError(f"unknown role {role!r}; the roles are {', '.join(Role)}") from None
    chosen = parse_districts(districts)
    if chosen and new_role == Role.ADMIN:
        raise StaffError("an admin sees every district; leave the districts out")
    if by is not None and user.id == by.id and new_role != Role.ADMIN:
        raise StaffError("you cannot take the admin role from your own account; ask another admin")
    changes = {}
    if new_role != user.role:
        changes["role"] = [user.role, str(new_role)]
        user.role = new_role
    if chosen != user.district_list:
        changes["districts"] = [list(user.district_list), list(chosen)]
        user.districts = DISTRICT_SEPARATOR.join(chosen)
    session.flush()
    return changes


def set_active(user: StaffUser, active: bool, *, by: StaffUser | None) -> None:
    """Deactivate (no login, no API token works, every console session ends) or reactivate an account; never one's
    own (`by`: None for a CLI operator)."""
    if by is not None and user.id == by.id and not active:
        raise StaffError("you cannot deactivate your own account")
    if not active:
        end_sessions(user)
    user.active = active


def end_sessions(user: StaffUser) -> None:
    """End every console session of the account: each one carries the old generation, which no longer matches."""
    user.session_generation = (user.session_generation or 0) + 1


def change_password(user: StaffUser, current: str, new: str) -> None:
    """Set a new password for the account's owner, who must give the current one; every session of the account
    ends (the caller carries its own session over to the new generation)."""
    if not verify_password(current[:MAX_PASSWORD_LENGTH], user.password_hash):
        raise StaffError("the current password is wrong")
    check_password_rules(new)
    if new == current:
        raise StaffError("the new password must differ from the current one")
    user.password_hash = hash_password(new)
    end_sessions(user)
