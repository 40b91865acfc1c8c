"""Payment results files: many grant moves at once, each through the one staff grant move
(`notifications.casework.grants.move_grant_for`), so a row is refused for exactly what a single move is refused
for: a row whose amount differs from the grant's is refused (the file has no reason column, and an amount change
needs a reason), and so is any amount the grant move would refuse (`NaN`, `1E+30`, above `GRANT_MAX_AMOUNT`).

A payment results file (CSV: reference, status, amount, channel, payment reference) is first checked (a dry run:
every row is really moved inside a savepoint that is then rolled back, so the check and the apply cannot disagree)
and then applied all or nothing: one bad row, found at check or at apply time, and the caller's transaction is
rolled back, so nothing is applied.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.actors import Actor
from models.grants import (
    Grant,
    GrantError,
    GrantRules,
    GrantStatus,
    clean_payment_reference,
    format_maloti,
    parse_amount,
    parse_channel,
)
from models.messages import OutboundMessage
from models.people import Beneficiary
from models.staff import Role
from notifications.casework.grants import move_grant_for

# The columns of a payment results file, in the order the template shows them. Headers are matched without regard
# to case, and spaces or dashes count as underscores ("Payment Reference" is `payment_reference`).
PAYMENT_COLUMNS = ("reference", "status", "amount", "channel", "payment_reference")
# What a payment results file may say happened to a grant; approvals and refusals are decisions, not payment results.
PAYMENT_RESULT_STATUSES = (GrantStatus.PAYMENT_SCHEDULED, GrantStatus.PAID, GrantStatus.PAYMENT_FAILED)
# Largest file and most rows taken at once: a month of payments for the whole programme fits easily.
MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 20_000
# References looked up per query.
LOOKUP_CHUNK = 500
# How much of the file's SHA-256 names it in the audit log (the `payments.import` entry's id).
FILE_ID_LENGTH = 16


class PaymentImportError(ValueError):
    """The file as a whole cannot be read (not CSV, wrong header, too big); the message says why."""


class PaymentImportRefused(Exception):
    """Applying found bad rows, so nothing was applied; `report` lists them."""

    def __init__(self, report: ImportReport):
        super().__init__(f"{len(report.errors)} bad row(s); nothing was applied")
        self.report = report


# --- payment results files -----------------------------------------------------------------------------------------


@dataclass
class ImportRow:
    """One data line of the file and what it does (or, with `error`, why it cannot)."""

    line: int  # as a spreadsheet numbers it: the header is line 1
    reference: str
    status: str
    amount: Decimal | None = None
    channel: str | None = None
    payment_reference: str | None = None
    name: str | None = None
    from_status: str | None = None
    error: str | None = None

    @property
    def amount_text(self) -> str:
        return format_maloti(self.amount) if self.amount is not None else ""


@dataclass
class ImportReport:
    rows: list[ImportRow] = field(default_factory=list)
    notices: list[OutboundMessage] = field(default_factory=list)  # owed by an applied import; kick after commit
    digest: str = ""  # SHA-256 of the file, for the audit log

    @property
    def errors(self) -> list[ImportRow]:
        return [row for row in self.rows if row.error]

    @property
    def changes(self) -> list[ImportRow]:
        return [row for row in self.rows if not row.error]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.errors

    def counts(self) -> dict[str, int]:
        """Good rows per new status, for the summary and the audit entry."""
        return dict(Counter(row.status for row in self.changes))


def _column_name(header: str) -> str:
    return "_".join(header.strip().lower().replace("-", " ").split())


def read_payment_file(content: bytes | str) -> list[ImportRow]:
    """Parse the file into rows, checking each field on its own; raises PaymentImportError for the whole file.

    Checks that need the database (the reference exists, the move is legal) come later, in `check_payment_results`.
    """
    if isinstance(content, bytes):
        if len(content) > MAX_IMPORT_BYTES:
            raise PaymentImportError(f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise PaymentImportError("the file is not UTF-8 text; save it from the spreadsheet as CSV UTF-8") from None
    content = content.removeprefix("\ufeff")
    if len(content.encode("utf-8")) > MAX_IMPORT_BYTES:
        raise PaymentImportError(f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
    try:
        lines = list(csv.reader(io.StringIO(content, newline="")))
    except csv.Error as exc:
        raise PaymentImportError(f"the file is not valid CSV: {exc}") from None
    if not lines or not any(cell.strip() for cell in lines[0]):
        raise PaymentImportError(f"the file is empty; the first line must be the header: {','.join(PAYMENT_COLUMNS)}")
    header = [_column_name(cell) for cell in lines[0]]
    missing = [name for name in PAYMENT_COLUMNS if name not in header]
    unknown = [name for name in header if name not in PAYMENT_COLUMNS]
    duplicated = sorted(name for name, times in Counter(header).items() if times > 1)
    if missing or unknown or duplicated:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(repr(name) for name in unknown)}")
        if duplicated:
            problems.append(f"repeated {', '.join(duplicated)}")
        raise PaymentImportError(f"wrong header ({'; '.join(problems)}); expected: {','.join(PAYMENT_COLUMNS)}")
    position = {name: header.index(name) for name in PAYMENT_COLUMNS}
    rows: list[ImportRow] = []
    for number, cells in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # spreadsheets leave blank lines at the end
        if len(rows) >= MAX_IMPORT_ROWS:
            raise PaymentImportError(f"the file has more than {MAX_IMPORT_ROWS} rows; split it")
        if len(cells) != len(header):
            rows.append(ImportRow(number, cells[0].strip() if cells else "", "", error=_wrong_width(cells, header)))
            continue
        values = {name: cells[index].strip() for name, index in position.items()}
        rows.append(_read_row(number, values))
    if not rows:
        raise PaymentImportError("the file has a header but no rows")
    references = Counter(row.reference for row in rows if row.reference)
    for row in rows:
        if not row.error and references[row.reference] > 1:
            others = [str(other.line) for other in rows if other.reference == row.reference and other is not row]
            row.error = f"duplicate reference: {row.reference} is also on line {', '.join(others)}"
    return rows


def _wrong_width(cells: list[str], header: list[str]) -> str:
    return f"{len(cells)} fields where the header has {len(header)}"


def _read_row(number: int, values: dict[str, str]) -> ImportRow:
    row = ImportRow(number, values["reference"], values["status"].lower())
    if not row.reference:
        row.error = "no reference"
        return row
    if row.status not in PAYMENT_RESULT_STATUSES:
        row.error = f"status {values['status']!r} is not a payment result; use {', '.join(PAYMENT_RESULT_STATUSES)}"
        return row
    if values["amount"]:
        try:
            row.amount = parse_amount(values["amount"])
        except GrantError as exc:
            row.error = f"bad amount: {exc}"
            return row
    try:
        row.channel = parse_channel(values["channel"])
        row.payment_reference = clean_payment_reference(values["payment_reference"])
    except GrantError as exc:
        row.error = str(exc)
    return row


def _grants_by_reference(session: Session, actor: Actor, references: list[str]) -> dict[str, Grant]:
    """The grants of these references that `actor` may see: others count as unknown, as they do everywhere."""
    found: dict[str, Grant] = {}
    for start in range(0, len(references), LOOKUP_CHUNK):
        chunk = references[start : start + LOOKUP_CHUNK]
        statement = (
            select(Beneficiary.reference, Grant)
            .join(Grant, Grant.beneficiary_id == Beneficiary.id)
            .where(Beneficiary.reference.in_(chunk))
        )
        for reference, grant in session.execute(statement):
            if actor.can_see_district(grant.beneficiary.district):
                found[reference] = grant
    return found


def _run(session: Session, actor: Actor, content: bytes | str, rules: GrantRules) -> ImportReport:
    """Move every good row and note why the others cannot move.

    A refused move writes nothing of its own, and no two good rows touch the same grant (duplicates are bad rows),
    so the rows cannot disturb one another; whatever a refused move left on its grant object is thrown away with the
    rest, because a report with a bad row is always rolled back. There are no savepoints per row on purpose: with
    the pysqlite driver, releasing the first savepoint of a transaction commits it, which would break all or
    nothing on SQLite.
    """
    raw = content.encode("utf-8") if isinstance(content, str) else content
    report = ImportReport(rows=read_payment_file(content), digest=hashlib.sha256(raw).hexdigest())
    actor.require_role(Role.OFFICER)
    grants = _grants_by_reference(session, actor, sorted({row.reference for row in report.rows if not row.error}))
    for row in report.rows:
        if row.error:
            continue
        grant = grants.get(row.reference)
        if grant is None:
            row.error = f"unknown reference {row.reference}"
            continue
        row.name, row.from_status = grant.beneficiary.full_name, grant.status
        try:
            _, notice = move_grant_for(
                session,
                actor,
                grant,
                row.status,
                rules=rules,
                amount=row.amount,
                channel=row.channel,
                payment_reference=row.payment_reference,
                payment_file=report.digest[:FILE_ID_LENGTH],
            )
        except GrantError as exc:
            row.error = str(exc)
            continue
        if notice is not None:
            report.notices.append(notice)
    return report


def check_payment_results(session: Session, actor: Actor, content: bytes | str, *, rules: GrantRules) -> ImportReport:
    """The dry run: what the file would change and every bad row with its reason. Changes nothing.

    The rows are really moved, inside a savepoint that is rolled back, so every rule of a real move is checked.
    Raises PaymentImportError when the file as a whole cannot be read.
    """
    savepoint = session.begin_nested()
    try:
        report = _run(session, actor, content, rules)
    finally:
        savepoint.rollback()
    report.notices = []
    return report


def apply_payment_results(
    session: Session, actor: Actor, content: bytes | str, *, rules: GrantRules, filename: str = ""
) -> ImportReport:
    """Apply the file, all or nothing, in the caller's transaction, with one `payments.import` audit entry.

    Raises PaymentImportRefused (with the report) when any row is bad, and PaymentImportError when the file cannot
    be read; the caller must then roll back, which the `with db.session()` block does by itself. On success the
    caller commits and kicks the queue for `report.notices`.
    """
    report = _run(session, actor, content, rules)
    if not report.ok:
        raise PaymentImportRefused(report)
    actor.audit(
        session,
        "payments.import",
        "payment_file",
        report.digest[:FILE_ID_LENGTH],
        filename=filename,
        sha256=report.digest,
        rows=len(report.rows),
        statuses=report.counts(),
        references=[row.reference for row in report.rows],
    )
    return report
