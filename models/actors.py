"""Who does a staff action, whichever way it arrived: the console, the API or the operator CLI.

Every staff action (`notifications.casework`, `notifications.campaigns.actions`, `models.staff`) takes one
`Actor` and writes its audit entry through `Actor.audit`, in the same transaction as the change. So the audit log
names the same person, address and interface for the same action wherever it came from, and the permission rules
(role, districts) are asked of the actor in one way.

A CLI operator who names no account (`--as EMAIL`) acts with the server's own authority: whoever can run
`flask --app wsgi` on the server already holds the database credentials, so a role check would only be theatre.
They are named `cli:<login>` in the log. With `--as`, that account's role and districts apply as in the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from models.audit import AuditLog, record
from models.db import Executor
from models.staff import ApiToken, Role, StaffUser

OPERATOR_PREFIX = "cli:"


class Via(StrEnum):
    """The interface an action came through; written on every audit entry."""

    CONSOLE = "console"
    API = "api"
    CLI = "cli"
    USSD = "ussd"  # the returnee on their own phone


# How the audit log names a returnee acting on their own phone (grant events name them the same way).
RETURNEE_ACTOR = "ussd"


class PermissionDeniedError(Exception):
    """The actor's role does not allow this action; the message says which role it needs."""


@dataclass(frozen=True)
class Actor:
    """The person behind a staff action: name for the audit log, account whose limits apply, and where from."""

    name: str
    via: Via
    staff: StaffUser | None = None  # None: a CLI operator with the server's authority
    ip: str | None = None
    token: ApiToken | None = None  # the API token the request carried

    @classmethod
    def for_staff(cls, staff: StaffUser, via: Via, *, ip: str | None = None, token: ApiToken | None = None) -> Actor:
        return cls(name=staff.email, via=via, staff=staff, ip=ip, token=token)

    @classmethod
    def operator(cls, login: str) -> Actor:
        """A CLI operator who named no staff account."""
        return cls(name=f"{OPERATOR_PREFIX}{login}", via=Via.CLI)

    @classmethod
    def returnee(cls) -> Actor:
        """The person on their own phone, registering themselves through the USSD menu: no staff account, no
        district limit (they register where they live)."""
        return cls(name=RETURNEE_ACTOR, via=Via.USSD)

    @property
    def district_list(self) -> tuple[str, ...]:
        """The districts this actor is limited to; empty means all of them."""
        if self.staff is None or self.staff.role == Role.ADMIN:
            return ()
        return self.staff.district_list

    def can_see_district(self, district: str | None) -> bool:
        return self.staff is None or self.staff.can_see_district(district or "")

    def has_role(self, role: Role | str) -> bool:
        return self.staff is None or self.staff.has_role(role)

    def require_role(self, role: Role | str) -> None:
        """Raise `PermissionDeniedError` unless the actor holds `role` or one above it."""
        if not self.has_role(role):
            raise PermissionDeniedError(f"this needs the {Role(role)} role; you are {self.staff.role}")

    def audit(
        self, session: Executor, action: str, object_type: str, object_id: object = None, **details: Any
    ) -> AuditLog:
        """Write the audit entry of this actor's action into `session`'s transaction."""
        if self.token is not None:
            details.setdefault("token", f"{self.token.name} ({self.token.prefix}…)")
        return record(session, self.name, action, object_type, object_id, ip=self.ip, via=str(self.via), **details)
