"""The staff actions on staff accounts, one function each, used alike by the console and the CLI.

Each takes the acting `models.actors.Actor`, needs the admin role (a CLI operator who names no account has the
server's authority), applies the rules of `models.staff`, and writes its audit entry through `Actor.audit` in the
caller's transaction. The caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from models.actors import Actor
from models.staff import (
    ApiToken,
    Role,
    StaffUser,
    change_access,
    create_staff,
    issue_token,
    revoke_token,
    set_active,
)


def create_staff_account(
    session: Session,
    actor: Actor,
    email: str,
    role: Role | str,
    password: str,
    districts: str | Iterable[str] | None = None,
) -> StaffUser:
    """A new active account, audited as `staff.create`; `StaffError` for a taken e-mail, an unknown district or role,
    or a short password."""
    actor.require_role(Role.ADMIN)
    user = create_staff(session, email, role, password, districts)
    actor.audit(
        session,
        "staff.create",
        "staff_user",
        user.id,
        email=user.email,
        role=user.role,
        districts=list(user.district_list),
    )
    return user


def change_staff_access(
    session: Session, actor: Actor, user: StaffUser, role: Role | str, districts: str | Iterable[str] | None
) -> dict:
    """Set the role and districts; returns what changed, audited as `staff.update` with old and new values."""
    actor.require_role(Role.ADMIN)
    changes = change_access(session, user, str(role), districts, by=actor.staff)
    if changes:
        actor.audit(session, "staff.update", "staff_user", user.id, email=user.email, **changes)
    return changes


def set_staff_active(session: Session, actor: Actor, user: StaffUser, active: bool) -> None:
    """Deactivate (no login, no API token works) or reactivate, audited as `staff.deactivate` / `staff.reactivate`."""
    actor.require_role(Role.ADMIN)
    set_active(user, active, by=actor.staff)
    session.flush()
    actor.audit(session, "staff.reactivate" if active else "staff.deactivate", "staff_user", user.id, email=user.email)


def issue_api_token(session: Session, actor: Actor, user: StaffUser, name: str) -> tuple[ApiToken, str]:
    """A new API token for `user` and its text (show it once), audited as `token.issue`."""
    actor.require_role(Role.ADMIN)
    token, plaintext = issue_token(session, user, name)
    actor.audit(
        session, "token.issue", "api_token", token.id, staff_user=user.email, name=token.name, prefix=token.prefix
    )
    return token, plaintext


def revoke_api_token(session: Session, actor: Actor, token: ApiToken) -> bool:
    """Stop a token from working, audited as `token.revoke`; False (and no entry) if it was already revoked."""
    actor.require_role(Role.ADMIN)
    if token.revoked_at is not None:
        return False
    revoke_token(session, token)
    actor.audit(
        session,
        "token.revoke",
        "api_token",
        token.id,
        staff_user=token.staff_user.email,
        name=token.name,
        prefix=token.prefix,
    )
    return True
