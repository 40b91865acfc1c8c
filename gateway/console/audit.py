"""The audit log page for admins: newest first, filtered by actor, action or object, a page at a time."""

from __future__ import annotations

import json

from flask import Blueprint, render_template, request

from gateway.auth import login_required
from gateway.services import get_services
from models.audit import AuditFilters, AuditLog, audit_actions, audit_entries
from models.corrections import masked_details
from models.staff import Role

bp = Blueprint("audit", __name__)


def shown_details(entry: AuditLog) -> str:
    """The entry's details with a corrected person's name, village and numbers masked (models.corrections)."""
    return json.dumps(masked_details(entry.action, entry.details_dict), sort_keys=True, ensure_ascii=False)


@bp.get("/audit")
@login_required(role=Role.ADMIN)
def audit_log():
    """`?actor=&action=&object_type=&object_id=` filter exactly; `?before=<id>` is the next (older) page."""
    filters = AuditFilters(
        actor=request.args.get("actor", ""),
        action=request.args.get("action", ""),
        object_type=request.args.get("object_type", ""),
        object_id=request.args.get("object_id", ""),
    )
    before = request.args.get("before", type=int)
    with get_services().db.session() as session:
        entries, next_before = audit_entries(session, filters, before_id=before)
        actions = audit_actions(session)
    filter_args = {name: value for name, value in vars(filters).items() if value}
    return render_template(
        "audit/index.html",
        entries=entries,
        next_before=next_before,
        filters=filters,
        filter_args=filter_args,
        actions=actions,
        first_page=before is None,
        shown_details=shown_details,
    )
