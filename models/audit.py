"""The audit log: who changed or exported what, and when. The programme owes this to its donor and the Government.

Rows are only ever added. Write the entry in the same transaction as the change it describes, so that there is
never a change without its entry, nor an entry for a change that was rolled back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text, and_, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UtcDateTime
from models.clock import utcnow
from models.db import Executor

# Longest actor, action and object id kept; longer values are cut rather than refused, because losing an audit
# entry to a long e-mail address would be worse than shortening it.
MAX_ACTOR_LENGTH = 120
MAX_ACTION_LENGTH = 64
MAX_OBJECT_TYPE_LENGTH = 40
MAX_OBJECT_ID_LENGTH = 64
MAX_IP_LENGTH = 45  # the longest textual IPv6 address


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(MAX_ACTOR_LENGTH))  # staff e-mail, "cli:<user>" or "ussd"
    action: Mapped[str] = mapped_column(String(MAX_ACTION_LENGTH), index=True)  # e.g. "grant.move"
    object_type: Mapped[str] = mapped_column(String(MAX_OBJECT_TYPE_LENGTH))  # e.g. "grant", "staff_user"
    object_id: Mapped[str | None] = mapped_column(String(MAX_OBJECT_ID_LENGTH))
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON object
    ip: Mapped[str | None] = mapped_column(String(MAX_IP_LENGTH))

    def __repr__(self) -> str:
        return f"<AuditLog id={self.id} {self.action} {self.object_type}:{self.object_id}>"

    @property
    def details_dict(self) -> dict[str, Any]:
        return json.loads(self.details or "{}")


def record(
    session: Executor,
    actor: str,
    action: str,
    object_type: str,
    object_id: object = None,
    *,
    ip: str | None = None,
    **details: Any,
) -> AuditLog:
    """Add one entry to `session`'s transaction. `details` must be JSON-able (dates and decimals become text).

    `ip` is the client address for web requests; it is a column, not a detail. Never put a password, a token or a
    full national ID in `details`. A Core connection (the USSD hop) gets the same row through one `INSERT`; the entry
    returned is then not attached to any session.
    """
    entry = AuditLog(
        at=utcnow(),
        actor=actor[:MAX_ACTOR_LENGTH],
        action=action[:MAX_ACTION_LENGTH],
        object_type=object_type[:MAX_OBJECT_TYPE_LENGTH],
        object_id=None if object_id is None else str(object_id)[:MAX_OBJECT_ID_LENGTH],
        details=json.dumps(details, default=str, sort_keys=True, ensure_ascii=False),
        ip=ip[:MAX_IP_LENGTH] if ip else None,
    )
    if not isinstance(session, Session):
        values = {column.key: getattr(entry, column.key) for column in AuditLog.__table__.columns if column.key != "id"}
        entry.id = session.execute(_INSERT, values).scalar_one()
        return entry
    session.add(entry)
    session.flush()
    return entry


_INSERT = insert(AuditLog.__table__).returning(AuditLog.__table__.c.id)


# Audit log rows on one page.
AUDIT_PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilters:
    """Exact matches on the audit log's columns; empty means any."""

    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""


def audit_entries(
    session: Session, filters: AuditFilters, *, before_id: int | None = None, limit: int = AUDIT_PAGE_SIZE
) -> tuple[list[AuditLog], int | None]:
    """Newest first, a page of entries older than `before_id`, and the id to ask for the next page with (or None).

    Keyset pagination (`id < before_id`) rather than OFFSET: the log only grows, and a page deep in it costs the
    same as the first one.
    """
    conditions = []
    if filters.actor:
        conditions.append(func.lower(AuditLog.actor) == filters.actor.strip().lower())
    if filters.action:
        conditions.append(AuditLog.action == filters.action.strip())
    if filters.object_type:
        conditions.append(AuditLog.object_type == filters.object_type.strip())
    if filters.object_id:
        conditions.append(AuditLog.object_id == filters.object_id.strip())
    if before_id is not None:
        conditions.append(AuditLog.id < before_id)
    query = select(AuditLog).where(and_(*conditions)).order_by(AuditLog.id.desc()).limit(limit + 1)
    entries = list(session.execute(query).scalars())
    more = len(entries) > limit
    entries = entries[:limit]
    return entries, (entries[-1].id if more else None)


def audit_actions(session: Session) -> list[str]:
    """The actions the log holds, for the filter's choices."""
    return list(session.execute(select(AuditLog.action).distinct().order_by(AuditLog.action)).scalars())
