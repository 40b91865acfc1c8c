"""Finding beneficiaries and their messages for staff: one search box, filters, district limits, keyset pages.

The console, the JSON API and the CSV export all read through here, so that they agree on who may see what: an
officer or viewer limited to districts never gets a row from another district, whichever door they use.

Pages are cut by keyset on the id, newest registration first (ids are handed out at registration), never by
OFFSET: page 2,000 of 100,000 rows costs what page 1 costs, and a row registered while someone pages does not shift
the pages under them. A list cut by registration dates pages along (registration time, id) instead, on its own
index: ids follow registration time, but the planner cannot know it, and a walk of the id index to a month 90 days
back would first read every later registration (250,000 rows at a million people). The cursor stays the id of the
last row shown. Every search term is matched through an index that already exists (reference, national ID
and phone are unique columns); only a name is matched by pattern, and a pattern walks the id index from the newest
row and stops at the first page full. A name that matches nobody would read every name (about 40 ms for 100,000
rows); on PostgreSQL the trigram index on `lower(full_name)` (pg_trgm, models/people.py) answers it in under a
millisecond, and SQLite still reads the names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Select, bindparam, false, func, or_, select, tuple_
from sqlalchemy.orm import Session

from models.actors import Actor, PermissionDeniedError
from models.clock import end_of_lesotho_day, start_of_lesotho_day
from models.crypto import national_id_digest
from models.grants import Grant, GrantEvent, GrantStatus
from models.messages import MessageStatus, OutboundMessage
from models.notices import UnsentNotice, unsent_notices
from models.people import DISTRICTS, Beneficiary, Contact, Language, Sex
from models.phone import PhoneNumberError, mask_national_id, mask_phone, normalize_phone
from models.reference import is_valid_reference
from models.requests import CallbackRequest, Feedback
from models.staff import Role, StaffUser
from models.ussd import UssdSessionRecord

# Rows on a page unless the client asks otherwise, and the most it may ask for.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# Rows fetched per round trip when an export walks the whole filtered list.
EXPORT_CHUNK = 1000
# Longest search text kept; nobody's name, number or ID is longer.
MAX_QUERY_LENGTH = 120
# Most rows of each kind (SMS, USSD sessions, call-backs, feedback) shown on one beneficiary's page.
HISTORY_LIMIT = 100
# A search text of digits and phone punctuation with at least this many digits is also tried as a phone number.
MIN_PHONE_DIGITS = 8
_PHONE_LIKE = re.compile(r"\+?[\d\s().-]+")
# A search text of letters and digits, with a digit, this long, that is not a reference, is a national ID search.
_ID_LIKE = re.compile(r"[A-Za-z0-9]{5,20}")
PHONE_SEARCH, NATIONAL_ID_SEARCH = "phone", "national_id"
SEARCH_AUDIT = "beneficiary.search"
# LIKE wildcards typed by a user are matched literally.
LIKE_ESCAPE = "\\"


class SearchError(ValueError):
    """A filter or cursor that cannot be used; the message says which and why (shown to staff, returned as 400)."""


@dataclass(frozen=True)
class BeneficiaryFilters:
    """What staff asked for. Empty fields do not filter."""

    q: str = ""
    district: str | None = None
    sex: str | None = None
    status: str | None = None
    language: str | None = None
    registered_from: date | None = None
    registered_to: date | None = None  # inclusive

    def as_params(self) -> dict[str, str]:
        """The filters as query parameters (for next-page links and the export link), empty ones left out."""
        params = {
            "q": self.q,
            "district": self.district,
            "sex": self.sex,
            "status": self.status,
            "language": self.language,
            "registered_from": self.registered_from.isoformat() if self.registered_from else None,
            "registered_to": self.registered_to.isoformat() if self.registered_to else None,
        }
        return {name: value for name, value in params.items() if value}

    def for_audit(self) -> dict[str, str]:
        """`as_params` with the search text masked when it is a phone number or national ID: the audit log never
        holds either in full."""
        params = self.as_params()
        if "q" in params:
            params["q"] = masked_search_text(self.q)
        return params


@dataclass(frozen=True)
class BeneficiaryRow:
    """One line of the beneficiary list: enough to recognise a person, without loading their history."""

    id: int
    reference: str
    full_name: str
    sex: str
    year_of_birth: int
    district: str
    village: str
    national_id: str | None
    registered_at: datetime
    phone: str | None  # None: registered without a phone
    language: str | None
    alerts_on: bool
    grant_status: str | None
    grant_amount: Decimal | None


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None  # pass as `after` for the next page; None on the last page


@dataclass
class BeneficiaryRecord:
    """Everything staff may see about one beneficiary, newest first where it is a history."""

    beneficiary: Beneficiary
    grant: Grant | None
    events: list[GrantEvent] = field(default_factory=list)
    messages: list[OutboundMessage] = field(default_factory=list)
    ussd_sessions: list[UssdSessionRecord] = field(default_factory=list)
    callbacks: list[CallbackRequest] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    unsent_notices: list[UnsentNotice] = field(default_factory=list)  # for a person registered without a phone
    # Others registered with the same (household) phone: the SMS, call-backs and alerts above are theirs too.
    others_on_phone: int = 0


# --- input ---------------------------------------------------------------------------------------------------------


def _choice(value: str | None, choices, what: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    by_lower = {str(choice).lower(): str(choice) for choice in choices}
    if value.lower() not in by_lower:
        raise SearchError(f"unknown {what} {value!r}; one of: {', '.join(map(str, choices))}")
    return by_lower[value.lower()]


def _date(value: str | None, what: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SearchError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


def parse_filters(args: Mapping[str, str]) -> BeneficiaryFilters:
    """Filters from query parameters (`q`, `district`, `sex`, `status`, `language`, `registered_from`,
    `registered_to`); raises SearchError for a value that matches nothing the programme knows."""
    filters = BeneficiaryFilters(
        q=" ".join((args.get("q") or "").split())[:MAX_QUERY_LENGTH],
        district=_choice(args.get("district"), DISTRICTS, "district"),
        sex=_choice(args.get("sex"), list(Sex), "sex"),
        status=_choice(args.get("status"), list(GrantStatus), "grant status"),
        language=_choice(args.get("language"), list(Language), "language"),
        registered_from=_date(args.get("registered_from"), "registered_from"),
        registered_to=_date(args.get("registered_to"), "registered_to"),
    )
    if filters.registered_from and filters.registered_to and filters.registered_from > filters.registered_to:
        raise SearchError("registered_from is after registered_to")
    return filters


def parse_cursor(value: str | None) -> int | None:
    """The `after` cursor: the id of the last row of the previous page."""
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise SearchError(f"bad cursor {value!r}; pass back the next_cursor of the previous page")
    return int(value)


def parse_limit(value: str | None) -> int:
    value = (value or "").strip()
    if not value:
        return PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise SearchError(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(value)


# --- who sees what -------------------------------------------------------------------------------------------------


def visible_districts(staff: StaffUser) -> tuple[str, ...] | None:
    """The districts `staff` may see, or None for all of them (admins and unlimited accounts)."""
    allowed = tuple(district for district in DISTRICTS if staff.can_see_district(district))
    return None if len(allowed) == len(DISTRICTS) else allowed


def find_visible_beneficiary(session: Session, staff: StaffUser, reference: str) -> Beneficiary | None:
    """The beneficiary with `reference`, or None when there is none or it lies outside `staff`'s districts.

    The two cases look the same on purpose: an officer must not learn that a reference exists elsewhere.
    """
    reference = reference.strip()
    if not reference.isdigit():
        return None
    beneficiary = session.execute(select(Beneficiary).where(Beneficiary.reference == reference)).scalar_one_or_none()
    if beneficiary is None or not staff.can_see_district(beneficiary.district):
        return None
    return beneficiary


# --- the list ------------------------------------------------------------------------------------------------------


def _like_escape(text: str) -> str:
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def exact_terms(q: str, unmask: bool = True) -> list:
    """Conditions on unique columns, any one of which makes a row match the search box.

    Reference and national ID are exact (national IDs are kept in upper case; what was typed is tried as well, for
    rows written by other means), the ID through its keyed hash, since the column itself is encrypted. A text that
    looks like a phone number is also matched on the normalised number.
    """
    q = q.strip()
    if not unmask:  # a viewer: the reference only, even for a text that could also be a phone number
        return [Beneficiary.reference == q]
    id_hashes = sorted({national_id_digest(q), national_id_digest(q.upper())} - {None})
    terms = [Beneficiary.reference == q, Beneficiary.national_id_hash.in_(id_hashes)]
    phone = _phone_of(q)
    if phone is not None:
        terms.append(Beneficiary.contact_id == select(Contact.id).where(Contact.phone == phone).scalar_subquery())
    return terms


def identifying_search(q: str) -> str | None:
    """`PHONE_SEARCH` or `NATIONAL_ID_SEARCH` when the search text is an exact phone number or national ID (which
    unmask a person), else None (a name or a reference). A reference (eight digits with a check digit) can also
    read as a Lesotho number: it counts as a reference, and a viewer's search matches it as a reference only."""
    q = q.strip()
    if is_valid_reference(q):
        return None
    if _phone_of(q) is not None:
        return PHONE_SEARCH
    if _ID_LIKE.fullmatch(q) and any(char.isdigit() for char in q):
        return NATIONAL_ID_SEARCH
    return None


def masked_search_text(q: str) -> str:
    """The search text as the audit log may keep it: a phone number or national ID masked, anything else as is."""
    phone = _phone_of(q.strip())
    if phone is not None:  # a reference that also reads as a number is masked too: it may be one
        return mask_phone(phone)
    if identifying_search(q) == NATIONAL_ID_SEARCH:
        return mask_national_id(q.strip())
    return q


def _phone_of(q: str) -> str | None:
    if not (_PHONE_LIKE.fullmatch(q) and sum(char.isdigit() for char in q) >= MIN_PHONE_DIGITS):
        return None
    try:
        return normalize_phone(q)
    except PhoneNumberError:
        return None


def name_term(q: str):
    """A text with a letter in it matches names without regard to case, anywhere in them ("moko" finds "Palesa
    Mokoena"); None for a text without letters, which is no name."""
    q = q.strip()
    if not any(char.isalpha() for char in q):
        return None
    # The pattern is written into the SQL, not bound: psycopg prepares a statement run 5 times, and PostgreSQL's
    # generic plan for `LIKE $1` cannot know that the trigram index will find few rows (measured: 41-55 ms instead
    # of under 1 ms for a name that matches nobody). SQLAlchemy quotes the literal.
    pattern = bindparam("name_pattern", f"%{_like_escape(q.lower())}%", literal_execute=True)
    return func.lower(Beneficiary.full_name).like(pattern, escape=LIKE_ESCAPE)


def search_condition(session: Session, staff: StaffUser, filters: BeneficiaryFilters, unmask: bool = True):
    """What the search box means for these filters: the exact matches when there are any, else the name match.

    Asking the unique columns first (a few index lookups) and the name only when they find nothing keeps a
    reference, phone or ID search from paying for a pattern over every name, and keeps the name query simple
    enough for the planner to walk the id index and stop at the first page full.
    """
    if not filters.q:
        return None
    exact = or_(*exact_terms(filters.q, unmask))
    probe = _filtered(select(Beneficiary.id).outerjoin(Contact, Beneficiary.contact_id == Contact.id), staff, filters)
    if filters.status:
        probe = probe.outerjoin(Grant, Grant.beneficiary_id == Beneficiary.id)
    if session.execute(probe.where(exact).limit(1)).first() is not None:
        return exact
    name = name_term(filters.q)
    return name if name is not None else false()


def _language():
    """The language of SMS about the person: their own (several people may share a household phone, and a person
    without a phone has only theirs), else, for a registration older than household phones, the phone's."""
    return func.coalesce(Beneficiary.own_language, Contact.language)


def _filtered(statement: Select, staff: StaffUser, filters: BeneficiaryFilters) -> Select:
    conditions = []
    allowed = visible_districts(staff)
    if allowed is not None:
        conditions.append(Beneficiary.district.in_(allowed))
    if filters.district:
        conditions.append(Beneficiary.district == filters.district)
    if filters.sex:
        conditions.append(Beneficiary.sex == filters.sex)
    if filters.status:
        conditions.append(Grant.status == filters.status)
    if filters.language:
        conditions.append(_language() == filters.language)
    # "Registered between" dates are Lesotho days, as in campaign audiences and reports.
    if filters.registered_from:
        conditions.append(Beneficiary.created_at >= start_of_lesotho_day(filters.registered_from))
    if filters.registered_to:
        conditions.append(Beneficiary.created_at < end_of_lesotho_day(filters.registered_to))
    return statement.where(*conditions)


def _rows_statement(staff: StaffUser, filters: BeneficiaryFilters, match) -> Select:
    statement = (
        select(
            Beneficiary.id,
            Beneficiary.reference,
            Beneficiary.full_name,
            Beneficiary.sex,
            Beneficiary.year_of_birth,
            Beneficiary.district,
            Beneficiary.village,
            Beneficiary.national_id,
            Beneficiary.created_at,
            Contact.phone,
            _language().label("language"),
            func.coalesce(Contact.alerts_on, false()),
            Grant.status,
            Grant.amount,
        )
        .outerjoin(Contact, Beneficiary.contact_id == Contact.id)
        .outerjoin(Grant, Grant.beneficiary_id == Beneficiary.id)
    )
    statement = _filtered(statement, staff, filters)
    if match is not None:
        statement = statement.where(match)
    if _dated(filters):
        return statement.order_by(Beneficiary.created_at.desc(), Beneficiary.id.desc())
    return statement.order_by(Beneficiary.id.desc())


def _dated(filters: BeneficiaryFilters) -> bool:
    """Whether the list is cut by registration dates, and so pages along registration time (see the module)."""
    return filters.registered_from is not None or filters.registered_to is not None


def _after(session: Session, filters: BeneficiaryFilters, after: int):
    """The keyset condition for the rows after the row `after`, in the list's order."""
    if _dated(filters):
        registered = session.execute(select(Beneficiary.created_at).where(Beneficiary.id == after)).scalar()
        if registered is not None:
            return tuple_(Beneficiary.created_at, Beneficiary.id) < tuple_(registered, after)
    return Beneficiary.id < after


def search_beneficiaries(
    session: Session,
    staff: StaffUser,
    filters: BeneficiaryFilters,
    *,
    after: int | None = None,
    limit: int = PAGE_SIZE,
    unmask: bool = True,
) -> Page:
    """One page of the beneficiaries `staff` may see that match `filters`, newest first, after the row `after`."""
    statement = _rows_statement(staff, filters, search_condition(session, staff, filters, unmask))
    if after is not None:
        statement = statement.where(_after(session, filters, after))
    rows = [BeneficiaryRow(*row) for row in session.execute(statement.limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=rows, next_cursor=str(rows[-1].id) if more else None)


def search_beneficiaries_for(
    session: Session, actor: Actor, filters: BeneficiaryFilters, *, after: int | None = None, limit: int = PAGE_SIZE
) -> Page:
    """`search_beneficiaries` for a staff member, in the console or the API. A search by an exact phone number or
    national ID finds out who a number or an ID belongs to: it needs the officer role (`PermissionDeniedError`
    for a viewer), and is audited as `beneficiary.search` with the text masked, on every page."""
    kind = identifying_search(filters.q)
    unmask = actor.has_role(Role.OFFICER)
    if unmask and kind is None and _phone_of(filters.q.strip()) is not None:
        kind = PHONE_SEARCH  # a reference that also reads as a number: an officer's search matches it as one too
    if kind is not None:
        if not unmask:
            raise PermissionDeniedError(
                f"searching by an exact {kind.replace('_', ' ')} needs the officer role; you are {actor.staff.role}."
                " Search by name or reference instead."
            )
        actor.audit(session, SEARCH_AUDIT, "beneficiary", None, q=masked_search_text(filters.q), by=kind)
    return search_beneficiaries(session, actor.staff, filters, after=after, limit=limit, unmask=unmask)


def count_beneficiaries(session: Session, staff: StaffUser, filters: BeneficiaryFilters) -> int:
    """How many rows an export of `filters` holds, for the audit entry."""
    statement = (
        select(func.count())
        .select_from(Beneficiary)
        .outerjoin(Contact, Beneficiary.contact_id == Contact.id)
        .outerjoin(Grant, Grant.beneficiary_id == Beneficiary.id)
    )
    statement = _filtered(statement, staff, filters)
    match = search_condition(session, staff, filters)
    return session.execute(statement if match is None else statement.where(match)).scalar_one()


def iter_beneficiaries(
    session: Session, staff: StaffUser, filters: BeneficiaryFilters, chunk: int = EXPORT_CHUNK
) -> Iterator[BeneficiaryRow]:
    """Every matching row, a keyset page at a time, so that an export of 100,000 rows never holds them all."""
    after = None
    while True:
        page = search_beneficiaries(session, staff, filters, after=after, limit=chunk)
        yield from page.items
        if page.next_cursor is None:
            return
        after = int(page.next_cursor)


# --- one beneficiary -----------------------------------------------------------------------------------------------


def beneficiary_record(session: Session, beneficiary: Beneficiary, limit: int = HISTORY_LIMIT) -> BeneficiaryRecord:
    """The profile, the grant and its whole timeline, and the latest SMS, USSD sessions, call-backs and feedback."""
    grant = session.execute(select(Grant).where(Grant.beneficiary_id == beneficiary.id)).scalar_one_or_none()
    events = []
    if grant is not None:
        timeline = select(GrantEvent).where(GrantEvent.grant_id == grant.id).order_by(GrantEvent.id)
        events = list(session.execute(timeline).scalars())
    contact_id, phone = beneficiary.contact_id, beneficiary.phone

    def latest(model, condition, order):
        if contact_id is None:  # registered without a phone: no SMS, sessions or requests (`IS NULL` matches others')
            return []
        return list(session.execute(select(model).where(condition).order_by(order.desc()).limit(limit)).scalars())

    return BeneficiaryRecord(
        beneficiary=beneficiary,
        grant=grant,
        events=events,
        messages=latest(
            OutboundMessage,
            or_(OutboundMessage.contact_id == contact_id, OutboundMessage.phone == phone),
            OutboundMessage.id,
        ),
        ussd_sessions=latest(UssdSessionRecord, UssdSessionRecord.phone == phone, UssdSessionRecord.id),
        callbacks=latest(CallbackRequest, CallbackRequest.contact_id == contact_id, CallbackRequest.id),
        feedback=latest(Feedback, Feedback.contact_id == contact_id, Feedback.id),
        unsent_notices=unsent_notices(session, beneficiary.id, limit),
        others_on_phone=len(beneficiary.contact.beneficiaries) - 1 if beneficiary.contact is not None else 0,
    )


# --- outbound SMS --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageFilters:
    reference: str | None = None
    phone: str | None = None  # E.164
    status: str | None = None


def parse_message_filters(args: Mapping[str, str]) -> MessageFilters:
    """`reference`, `phone` (any way of writing a served number) and `status` from query parameters."""
    phone = (args.get("phone") or "").strip()
    if phone:
        try:
            phone = normalize_phone(phone)
        except PhoneNumberError as exc:
            raise SearchError(f"phone {phone!r}: {exc}") from None
    return MessageFilters(
        reference=(args.get("reference") or "").strip() or None,
        phone=phone or None,
        status=_choice(args.get("status"), list(MessageStatus), "message status"),
    )


def search_messages(
    session: Session, staff: StaffUser, filters: MessageFilters, *, after: int | None = None, limit: int = PAGE_SIZE
) -> Page:
    """One page of outbound SMS, newest first. Staff limited to districts see only messages to beneficiaries of
    those districts (a message to a number that never registered belongs to no district, so only to all-district
    accounts)."""
    statement = select(OutboundMessage).order_by(OutboundMessage.id.desc())
    allowed = visible_districts(staff)
    if allowed is not None or filters.reference:
        beneficiaries = select(Beneficiary.contact_id)
        if allowed is not None:
            beneficiaries = beneficiaries.where(Beneficiary.district.in_(allowed))
        if filters.reference:
            beneficiaries = beneficiaries.where(Beneficiary.reference == filters.reference)
        statement = statement.where(OutboundMessage.contact_id.in_(beneficiaries))
    if filters.phone:
        statement = statement.where(OutboundMessage.phone == filters.phone)
    if filters.status:
        statement = statement.where(OutboundMessage.status == filters.status)
    if after is not None:
        statement = statement.where(OutboundMessage.id < after)
    items = list(session.execute(statement.limit(limit + 1)).scalars())
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=str(items[-1].id) if more else None)
