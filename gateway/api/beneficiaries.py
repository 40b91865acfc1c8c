"""Beneficiaries, their grants and the SMS sent to them, as JSON: the same searches, roles and district limits as
the console (`models.search`), and grant moves through the same function (`notifications.casework.payments`).

This module is imported by `gateway.console.beneficiaries`, which attaches its routes to the API blueprint before
the app registers it; `gateway/api/__init__.py` is the better home for that import once its owner adds it.
"""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, Response, abort, g, jsonify, request

from gateway.api.openapi import ERROR_CONTENT, json_body
from gateway.auth import current_actor, json_error, token_required
from gateway.services import get_services
from menus.corrections import (
    CorrectionError,
    CorrectionNotFoundError,
    IdentityCheck,
    correct_beneficiary,
    move_to_new_number,
)
from models.actors import PermissionDeniedError
from models.answers import FIELDS, FIELDS_BY_NAME, AnswersError
from models.corrections import CORRECTABLE_FIELDS
from models.grants import (
    MAX_PAYMENT_REFERENCE_LENGTH,
    MAX_REASON_LENGTH,
    GrantError,
    GrantRules,
    GrantStatus,
    IllegalTransitionError,
    PaymentChannel,
    parse_amount,
)
from models.messages import MessageStatus
from models.people import DISTRICTS, ConsentChannel, Language, MainNeed, Sex
from models.phone import mask_national_id, mask_phone
from models.registration import AlreadyRegisteredError, HouseholdFullError, NationalIdTakenError
from models.search import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    BeneficiaryRow,
    SearchError,
    beneficiary_record,
    find_visible_beneficiary,
    parse_cursor,
    parse_filters,
    parse_limit,
    parse_message_filters,
    search_beneficiaries_for,
    search_messages,
)
from models.staff import Role, StaffUser
from notifications.casework.grants import GrantNotFoundError, move_grant_for
from notifications.casework.registration import (
    ALREADY_REGISTERED,
    HOUSEHOLD_FULL,
    NATIONAL_ID_TAKEN,
    WALK_IN_EXTRA_FIELDS,
    after_registration,
    parse_walk_in,
    register_beneficiary_for,
)
from notifications.sms.queues import kick

GRANT_EVENT_FIELDS = frozenset({"status", "reason", "amount", "channel", "payment_reference"})


def _phone(staff: StaffUser, phone: str | None) -> str | None:
    """Viewers get masked numbers, as in the console."""
    return phone if staff.has_role(Role.OFFICER) else mask_phone(phone)


def _amount(amount: Decimal | None) -> str | None:
    return None if amount is None else f"{amount:.2f}"


def _when(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def row_json(staff: StaffUser, row: BeneficiaryRow) -> dict:
    return {
        "reference": row.reference,
        "full_name": row.full_name,
        "sex": row.sex,
        "year_of_birth": row.year_of_birth,
        "district": row.district,
        "village": row.village,
        "phone": _phone(staff, row.phone),
        "language": row.language,
        "alerts_on": row.alerts_on,
        "national_id": mask_national_id(row.national_id) if row.national_id else None,  # masked in lists
        "grant_status": row.grant_status,
        "grant_amount": _amount(row.grant_amount),
        "registered_at": _when(row.registered_at),
    }


def message_json(staff: StaffUser, message) -> dict:
    return {
        "id": message.id,
        "phone": _phone(staff, message.phone),
        "kind": message.kind,
        "priority": message.priority,
        "language": message.language,
        "body": message.body,
        "status": message.status,
        "failure_reason": message.failure_reason,
        "parts": message.parts,
        "cost": message.cost,
        "created_at": _when(message.created_at),
        "submitted_at": _when(message.submitted_at),
        "final_at": _when(message.final_at),
    }


def _text(value: str | int | float | None) -> str | None:
    """A JSON field as text for the domain, which checks it; None stays None."""
    return None if value is None else str(value)


def _bad_request(exc: Exception) -> Response:
    return json_error(400, str(exc))


bp = Blueprint("beneficiaries", __name__)


@bp.get("/beneficiaries")
@token_required
def list_beneficiaries() -> Response:
    """A page of beneficiaries, newest first; pass `next_cursor` back as `after` for the next page."""
    staff: StaffUser = g.staff
    try:
        filters = parse_filters(request.args)
        after = parse_cursor(request.args.get("after"))
        limit = parse_limit(request.args.get("limit"))
    except SearchError as exc:
        return _bad_request(exc)
    try:
        with get_services().db.session() as session:
            page = search_beneficiaries_for(session, current_actor(), filters, after=after, limit=limit)
    except PermissionDeniedError as exc:
        return json_error(403, str(exc))
    return {"items": [row_json(staff, row) for row in page.items], "next_cursor": page.next_cursor}


# The walk-in registration's JSON fields: the answers of models.answers.FIELDS (`name` for the full name), then the
# language, the phone and consent. Every value is text or a whole number, but consent, which must be `true`.
REGISTRATION_NAME_FIELD = "name"
REGISTRATION_FIELDS = (
    REGISTRATION_NAME_FIELD,
    *(answer.name for answer in FIELDS if answer.name != "full_name"),
    *WALK_IN_EXTRA_FIELDS,
)
REQUIRED_REGISTRATION_FIELDS = tuple(
    name
    for name in REGISTRATION_FIELDS
    if name != "phone" and not (name in FIELDS_BY_NAME and FIELDS_BY_NAME[name].optional)
)
# What the API calls the answers whose names differ from the form's.
_API_NAMES = {"full_name": REGISTRATION_NAME_FIELD}


@bp.post("/beneficiaries")
@token_required(role=Role.OFFICER)
def post_beneficiary() -> Response:
    """Register a walk-in (officer or admin, in their districts): 201 with the beneficiary and its `reference`;
    400 with the reason of every refused field, as the USSD form would refuse them, or for a duplicate."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, f"send a JSON object with: {', '.join(REGISTRATION_FIELDS)}")
    unknown = sorted(set(body) - set(REGISTRATION_FIELDS))
    if unknown:
        return json_error(400, f"unknown fields: {', '.join(unknown)}")
    for name, value in body.items():
        if name != "consent" and value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            return json_error(400, f"{name}: must be a string (years and household_size may be numbers)")
    raw = {("full_name" if name == REGISTRATION_NAME_FIELD else name): value for name, value in body.items()}
    try:
        walk_in = parse_walk_in(raw)
    except AnswersError as exc:
        fields = {_API_NAMES.get(name, name): reason for name, reason in exc.errors.items()}
        response = jsonify(error="; ".join(f"{name}: {reason}" for name, reason in fields.items()), fields=fields)
        response.status_code = 400
        return response
    services = get_services()
    try:
        with services.db.session() as session:
            registration = register_beneficiary_for(
                session,
                current_actor(),
                walk_in.answers,
                phone=walk_in.phone,
                language=walk_in.language,
                consent=ConsentChannel.IN_PERSON,
                max_per_phone=services.settings.max_beneficiaries_per_phone,
            )
    except PermissionDeniedError as exc:
        return json_error(403, str(exc))
    except AlreadyRegisteredError:
        return json_error(400, f"phone: {ALREADY_REGISTERED}")
    except HouseholdFullError as full:
        return json_error(400, f"phone: {HOUSEHOLD_FULL.format(limit=full.limit)}")
    except NationalIdTakenError:
        return json_error(400, f"national_id: {NATIONAL_ID_TAKEN}")
    after_registration(services.redis, registration)
    response = jsonify(_detail(g.staff, registration.reference))
    response.status_code = 201
    response.headers["Location"] = f"{request.path}/{registration.reference}"
    return response


def _detail(staff: StaffUser, reference: str) -> dict:
    with get_services().db.session() as session:
        beneficiary = find_visible_beneficiary(session, staff, reference)
        if beneficiary is None:
            abort(404, description=f"no beneficiary with reference {reference} in your districts")
        found = beneficiary_record(session, beneficiary)
        b, grant = found.beneficiary, found.grant
        return {
            "reference": b.reference,
            "full_name": b.full_name,
            "sex": b.sex,
            "year_of_birth": b.year_of_birth,
            "district": b.district,
            "village": b.village,
            "returned_from": b.returned_from,
            "year_of_return": b.year_of_return,
            "household_size": b.household_size,
            "main_need": b.main_need,
            "phone": _phone(staff, b.phone),
            "language": b.language,
            "alerts_on": b.alerts_on,
            # Officers verify identities; viewers only read figures.
            "national_id": b.national_id if staff.has_role(Role.OFFICER) else mask_national_id(b.national_id),
            "registered_at": _when(b.created_at),
            "registered_via": b.registered_via,
            "consent_channel": b.consent_channel,
            "consent_recorded_by": b.consent_recorded_by,
            "grant": None
            if grant is None
            else {
                "status": grant.status,
                "amount": _amount(grant.amount),
                "payment_channel": grant.payment_channel,
                "payment_reference": grant.payment_reference,
                "events": [
                    {
                        "from_status": event.from_status,
                        "to_status": event.to_status,
                        "actor": event.actor,
                        "reason": event.reason,
                        "at": _when(event.created_at),
                    }
                    for event in found.events
                ],
            },
            "messages": [message_json(staff, message) for message in found.messages],
            # A person without a phone: the notices they were owed, kept unsent for the officer to pass on.
            "unsent_notices": [
                {"kind": notice.kind, "language": notice.language, "body": notice.body, "at": _when(notice.created_at)}
                for notice in found.unsent_notices
            ],
        }


@bp.get("/beneficiaries/<reference>")
@token_required
def get_beneficiary(reference: str) -> Response:
    """One beneficiary with their grant, its whole timeline, and the latest SMS sent to them."""
    return _detail(g.staff, reference)


@bp.post("/beneficiaries/<reference>/grant/events")
@token_required(role=Role.OFFICER)
def post_grant_event(reference: str) -> Response:
    """Move the grant: 201 with the beneficiary; 400 for bad input, 409 for a move the lifecycle does not allow."""
    staff: StaffUser = g.staff
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, "send a JSON object: {status, reason?, amount?, channel?, payment_reference?}")
    unknown = sorted(set(body) - GRANT_EVENT_FIELDS)
    if unknown:
        return json_error(400, f"unknown fields: {', '.join(unknown)}")
    if not all(value is None or isinstance(value, str | int | float) for value in body.values()):
        return json_error(400, "every field must be a string (amount may be a number)")
    status = body.get("status")
    if not isinstance(status, str) or status not in set(GrantStatus):
        return json_error(400, f"status must be one of: {', '.join(GrantStatus)}")
    try:
        amount = parse_amount(str(body["amount"])) if body.get("amount") not in (None, "") else None
        with get_services().db.session() as session:
            _, notice = move_grant_for(
                session,
                current_actor(),
                reference,
                status,
                rules=GrantRules.of(get_services().settings),
                reason=_text(body.get("reason")),
                amount=amount,
                channel=_text(body.get("channel")),
                payment_reference=_text(body.get("payment_reference")),
            )
    except GrantNotFoundError:
        return json_error(404, f"no beneficiary with reference {reference} in your districts")
    except IllegalTransitionError as exc:
        return json_error(409, str(exc))
    except GrantError as exc:
        return json_error(400, str(exc))
    if notice is not None:
        kick(get_services().redis, notice.priority)
    return _detail(staff, reference), 201


@bp.patch("/beneficiaries/<reference>")
@token_required(role=Role.OFFICER)
def patch_beneficiary(reference: str) -> Response:
    """Correct some of the beneficiary's answers: 200 with the beneficiary; 400 with the rule a value breaks."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not body:
        return json_error(400, f"send a JSON object with some of: {', '.join(CORRECTABLE_FIELDS)}")
    if not all(value is None or isinstance(value, str | int) for value in body.values()):
        return json_error(400, "every value must be a string (year_of_birth and household_size may be numbers)")
    try:
        with get_services().db.session() as session:
            correct_beneficiary(session, current_actor(), reference, body)
    except CorrectionNotFoundError:
        return json_error(404, f"no beneficiary with reference {reference} in your districts")
    except CorrectionError as exc:
        return json_error(400, str(exc))
    return _detail(g.staff, reference)


NUMBER_MOVE_FIELDS = frozenset({"new_phone", "check", "national_id"})


@bp.post("/beneficiaries/<reference>/number")
@token_required(role=Role.OFFICER)
def post_number_move(reference: str) -> Response:
    """Move the registration to the returnee's new number, once the officer has checked who asks; both are told."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not set(body) <= NUMBER_MOVE_FIELDS:
        return json_error(400, "send a JSON object: {new_phone, check, national_id?}")
    if not all(value is None or isinstance(value, str) for value in body.values()):
        return json_error(400, "every field must be a string")
    services = get_services()
    try:
        with services.db.session() as session:
            move = move_to_new_number(
                session,
                services.redis,
                current_actor(),
                reference,
                body.get("new_phone") or "",
                body.get("check") or "",
                national_id=body.get("national_id"),
            )
            priority = move.notices[0].priority
    except CorrectionNotFoundError:
        return json_error(404, f"no beneficiary with reference {reference} in your districts")
    except CorrectionError as exc:
        return json_error(400, str(exc))
    kick(services.redis, priority)
    return _detail(g.staff, reference)


@bp.get("/messages")
@token_required
def list_messages() -> Response:
    """Outbound SMS, newest first, by `reference`, `phone` or `status`; `after`/`limit` as for beneficiaries."""
    staff: StaffUser = g.staff
    try:
        filters = parse_message_filters(request.args)
        after = parse_cursor(request.args.get("after"))
        limit = parse_limit(request.args.get("limit"))
    except SearchError as exc:
        return _bad_request(exc)
    with get_services().db.session() as session:
        page = search_messages(session, staff, filters, after=after, limit=limit)
        items = [message_json(staff, message) for message in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


# --- OpenAPI description -------------------------------------------------------------------------------------------


def _query(name: str, description: str, enum=None, schema_type: str = "string") -> dict:
    schema: dict = {"type": schema_type}
    if enum is not None:
        schema["enum"] = [str(value) for value in enum]
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_REFERENCE = {"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGING = [
    _query("after", "next_cursor of the previous page"),
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": PAGE_SIZE},
    },
]

_TEXT_OR_NUMBER = {"oneOf": [{"type": "integer"}, {"type": "string"}]}
# How the API names where a returnee came back from (any spelling of the stored value is accepted too).
RETURNED_FROM_NAMES = ("South Africa", "Other")

OPENAPI_PATHS = {
    "/beneficiaries": {
        "get": {
            "summary": "Search and filter beneficiaries (newest first, keyset pages)",
            "parameters": [
                _query("q", "name (any part, any case), phone number, reference or national ID"),
                _query("district", "district", DISTRICTS),
                _query("sex", "sex", list(Sex)),
                _query("status", "grant status", list(GrantStatus)),
                _query("language", "language", list(Language)),
                _query("registered_from", "first registration date, Lesotho time (YYYY-MM-DD)"),
                _query("registered_to", "last registration date, inclusive (YYYY-MM-DD)"),
                *_PAGING,
            ],
            "responses": {
                "200": {"description": "{items: [beneficiary], next_cursor: string|null}; national IDs masked"},
                "400": {"description": "A filter, cursor or limit that cannot be used", "content": ERROR_CONTENT},
            },
        },
        "post": {
            "summary": "Register a walk-in (officer or admin, in their districts): the USSD questions and rules,"
            " consent given in person; the phone is optional",
            "requestBody": json_body(
                {
                    "type": "object",
                    "required": list(REQUIRED_REGISTRATION_FIELDS),
                    "properties": {
                        "name": {"type": "string", "description": "full name"},
                        "sex": {"type": "string", "enum": [str(s) for s in Sex]},
                        "year_of_birth": _TEXT_OR_NUMBER,
                        "district": {"type": "string", "enum": list(DISTRICTS)},
                        "village": {"type": "string", "description": "village or community council"},
                        "returned_from": {"type": "string", "enum": list(RETURNED_FROM_NAMES)},
                        "year_of_return": _TEXT_OR_NUMBER,
                        "national_id": {"type": "string", "nullable": True, "description": "optional"},
                        "household_size": _TEXT_OR_NUMBER,
                        "main_need": {"type": "string", "enum": [str(n) for n in MainNeed]},
                        "language": {"type": "string", "enum": [str(lang) for lang in Language]},
                        "consent": {"type": "boolean", "enum": [True], "description": "the person agreed, in person"},
                        "phone": {
                            "type": "string",
                            "nullable": True,
                            "description": "optional Lesotho or South African mobile; without one, notices are kept"
                            " unsent on the beneficiary",
                        },
                    },
                    "additionalProperties": False,
                }
            ),
            "responses": {
                "201": {"description": "Registered: the beneficiary as GET returns it, with its `reference`"},
                "400": {
                    "description": "A refused answer (`fields` gives the reason of each), a number already"
                    " registered or a national ID another beneficiary holds",
                    "content": ERROR_CONTENT,
                },
                "403": {"description": "A viewer, or a district not the token's", "content": ERROR_CONTENT},
            },
        },
    },
    "/beneficiaries/{reference}": {
        "get": {
            "summary": "One beneficiary with their grant, its events and their latest SMS",
            "parameters": [_REFERENCE],
            "responses": {
                "200": {"description": "The beneficiary"},
                "404": {"description": "No such reference in the token's districts", "content": ERROR_CONTENT},
            },
        },
        "patch": {
            "summary": "Correct the beneficiary's answers (officer or admin), checked as registration checks them",
            "parameters": [_REFERENCE],
            "requestBody": json_body(
                {
                    "type": "object",
                    "minProperties": 1,
                    "properties": {
                        "full_name": {"type": "string"},
                        "sex": {"type": "string", "enum": [str(s) for s in Sex]},
                        "year_of_birth": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                        "district": {"type": "string", "enum": list(DISTRICTS)},
                        "village": {"type": "string"},
                        "national_id": {
                            "type": "string",
                            "nullable": True,
                            "description": "empty or null removes it",
                        },
                        "household_size": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                        "main_need": {"type": "string", "enum": [str(n) for n in MainNeed]},
                    },
                    "additionalProperties": False,
                }
            ),
            "responses": {
                "200": {"description": "Corrected (audited, old and new values); the beneficiary as GET returns it"},
                "400": {
                    "description": "A value registration would refuse, or a district not yours",
                    "content": ERROR_CONTENT,
                },
                "404": {"description": "No such reference in the token's districts", "content": ERROR_CONTENT},
            },
        },
    },
    "/beneficiaries/{reference}/number": {
        "post": {
            "summary": "Move the registration to a returnee's new number (officer or admin); both numbers get an SMS",
            "parameters": [_REFERENCE],
            "requestBody": json_body(
                {
                    "type": "object",
                    "required": ["new_phone", "check"],
                    "properties": {
                        "new_phone": {"type": "string", "description": "Lesotho or South African mobile"},
                        "check": {
                            "type": "string",
                            "enum": [str(c) for c in IdentityCheck],
                            "description": "how the officer made sure it is the returnee",
                        },
                        "national_id": {
                            "type": "string",
                            "description": "the ID the caller gave; required for reference_and_national_id",
                        },
                    },
                    "additionalProperties": False,
                }
            ),
            "responses": {
                "200": {"description": "Moved; the beneficiary as GET returns it"},
                "400": {
                    "description": "Bad number, failed check, or the number is someone else's",
                    "content": ERROR_CONTENT,
                },
                "404": {"description": "No such reference in the token's districts", "content": ERROR_CONTENT},
            },
        }
    },
    "/beneficiaries/{reference}/grant/events": {
        "post": {
            "summary": "Move the grant (officer or admin); the returnee is sent the SMS notice the move calls for",
            "parameters": [_REFERENCE],
            "requestBody": json_body(
                {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string", "enum": [str(s) for s in GrantStatus]},
                        "reason": {
                            "type": "string",
                            "maxLength": MAX_REASON_LENGTH,
                            "description": "required for not_eligible, withdrawn",
                        },
                        "amount": {"type": "string", "description": "maloti; required to approve"},
                        "channel": {"type": "string", "enum": [str(c) for c in PaymentChannel]},
                        "payment_reference": {"type": "string", "maxLength": MAX_PAYMENT_REFERENCE_LENGTH},
                    },
                    "additionalProperties": False,
                }
            ),
            "responses": {
                "201": {"description": "Moved; the beneficiary as GET returns it"},
                "400": {
                    "description": "Bad input: unknown status, no reason, amount or channel",
                    "content": ERROR_CONTENT,
                },
                "404": {"description": "No such reference in the token's districts", "content": ERROR_CONTENT},
                "409": {"description": "An illegal move; the error says which are allowed", "content": ERROR_CONTENT},
            },
        }
    },
    "/messages": {
        "get": {
            "summary": "Outbound SMS, newest first (keyset pages)",
            "parameters": [
                _query("reference", "beneficiary reference"),
                _query("phone", "phone number"),
                _query("status", "message status", list(MessageStatus)),
                *_PAGING,
            ],
            "responses": {
                "200": {"description": "{items: [message], next_cursor: string|null}"},
                "400": {"description": "A filter, cursor or limit that cannot be used", "content": ERROR_CONTENT},
            },
        }
    },
}
