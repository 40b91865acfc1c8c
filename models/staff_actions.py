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
    StaffError,
    StaffUser,
    change_access,
    change_password,
    create_staff,
    end_sessions,
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
    """A new API token for `user` and its text (show it once), audited as `token.issue`.

    An admin issues tokens only for their own account: a token for someone else would let the admin act in that
    person's name in the audit log, and its text passes through the admin's hands. A CLI operator who names no
    account holds the server, and may issue one for anyone.
    """
    actor.require_role(Role.ADMIN)
    if actor.staff is not None and actor.staff.id != user.id:
        raise StaffError(
            f"admins issue API tokens only for themselves; {user.email} logs in and asks an admin for the admin role,"
            " or an operator issues it on the server (flask --app wsgi staff token)"
        )
    token, plaintext = issue_token(session, user, name)
    actor.audit(
        session, "token.issue", "api_token", token.id, staff_user=user.email, name=token.name, prefix=token.prefix
    )
    return token, plaintext


def change_own_password(session: Session, actor: Actor, current: str, new: str) -> StaffUser:
    """The actor changes their own password (the current one needed); every session of the account ends.
    Audited as `staff.password_change`."""
    if actor.staff is None:
        raise StaffError("only a staff account has a password to change")
    user = session.get_one(StaffUser, actor.staff.id)
    change_password(user, current, new)
    session.flush()
    actor.audit(session, "staff.password_change", "staff_user", user.id, email=user.email)
    return user


def sign_out_everywhere(session: Session, actor: Actor, user: StaffUser) -> None:
    """End every console session of `user` (a lost laptop, a shared computer). Audited as `staff.sign_out`."""
    actor.require_role(Role.ADMIN)
    end_sessions(user)
    session.flush()
    actor.audit(session, "staff.sign_out", "staff_user", user.id, email=user.email)


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
