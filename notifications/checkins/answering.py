"""Answering a check-in, by USSD or by SMS: which invitation is open for a phone, the next question, an answer.

Both channels use these functions, so an answer given on one is seen by the other: a person may start on USSD and
finish by SMS. They are Core statements on an `Executor` (a USSD hop's connection or a session), built once.

A phone shared by a household can hold several people, each with an invitation of their own. The phone answers them
one at a time, oldest invitation first; the USSD screen names the person the questions are about.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, bindparam, exists, func, select, update

from models.checkins import (
    FINISHED_INVITATION_STATUSES,
    NO,
    PENDING_INVITATION_STATUSES,
    YES,
    Checkin,
    CheckinAnswer,
    CheckinInvitation,
    CheckinQuestion,
    CheckinStatus,
    InvitationStatus,
    QuestionKind,
)
from models.db import Executor, dialect_name, insert_on_conflict
from models.people import Beneficiary, Contact

# What a person types to pass one question, when the question is a number (a choice has its last option).
PREFER_NOT_TO_ANSWER = "99"

_invitation = CheckinInvitation.__table__
_checkin = Checkin.__table__
_question = CheckinQuestion.__table__
_answer = CheckinAnswer.__table__
_contact = Contact.__table__
_beneficiary = Beneficiary.__table__


class InvalidCheckinAnswer(ValueError):  # noqa: N818  (a reason shown to the person, not a failure)
    """The text is no answer to the question; `reason` is `choice` or `number`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Outcome(StrEnum):
    NEXT = "next"  # recorded; another question follows
    FINISHED = "finished"  # recorded; that was the last question
    ALREADY_FINISHED = "already_finished"  # the person had answered or declined already (on the other channel)
    CLOSED = "closed"  # the check-in closed in the meantime


@dataclass(frozen=True)
class OpenInvitation:
    id: int
    checkin_id: int
    status: str
    channel: str | None
    full_name: str
    title_en: str
    title_st: str
    questions: int

    @property
    def first_name(self) -> str:
        return (self.full_name.split() or [""])[0]

    def title_for(self, language: str | None) -> str:
        return self.title_st if language == "st" else self.title_en


@dataclass(frozen=True)
class QuestionView:
    """One question as a channel shows it; yes/no options come from the channel's own texts."""

    id: int
    position: int
    count: int
    kind: str
    text_en: str
    text_st: str
    options: tuple[tuple[str, str], ...]
    low: int | None
    high: int | None

    def text_for(self, language: str | None) -> str:
        return self.text_st if language == "st" else self.text_en

    def option_labels(self, language: str | None) -> list[str]:
        return [sesotho if language == "st" else english for english, sesotho in self.options]

    @property
    def choices(self) -> int:
        """The numbered answers before the last option, "prefer not to answer" (none for a number question)."""
        if self.kind == QuestionKind.YES_NO:
            return 2
        return len(self.options)


def _is_open(now_param: str = "now"):
    return and_(
        _checkin.c.status == CheckinStatus.OPEN,
        _checkin.c.opens_at <= bindparam(now_param),
        _checkin.c.closes_at > bindparam(now_param),
    )


_QUESTION_COUNT = (
    select(func.count()).where(_question.c.checkin_id == _checkin.c.id).correlate(_checkin).scalar_subquery()
)
_OPEN_BASE = (
    select(
        _invitation.c.id,
        _invitation.c.checkin_id,
        _invitation.c.status,
        _invitation.c.channel,
        _beneficiary.c.full_name,
        _checkin.c.title_en,
        _checkin.c.title_st,
        _QUESTION_COUNT,
    )
    .select_from(
        _invitation.join(_contact, _contact.c.id == _invitation.c.contact_id)
        .join(_checkin, _checkin.c.id == _invitation.c.checkin_id)
        .join(_beneficiary, _beneficiary.c.id == _invitation.c.beneficiary_id)
    )
    .where(
        _invitation.c.status.in_([str(status) for status in PENDING_INVITATION_STATUSES]),
        _is_open(),
    )
)
_OPEN_FOR_PHONE = _OPEN_BASE.where(_contact.c.phone == bindparam("phone")).order_by(_invitation.c.id).limit(1)
_OPEN_BY_ID = _OPEN_BASE.where(_invitation.c.id == bindparam("invitation"))
_FINISHED_FOR_PHONE = (
    select(_invitation.c.id)
    .select_from(
        _invitation.join(_contact, _contact.c.id == _invitation.c.contact_id).join(
            _checkin, _checkin.c.id == _invitation.c.checkin_id
        )
    )
    .where(
        _contact.c.phone == bindparam("phone"),
        _invitation.c.status.in_([str(status) for status in FINISHED_INVITATION_STATUSES]),
        _is_open(),
    )
    .limit(1)
)
_STATE = (
    select(_invitation.c.status, _is_open().label("open"))
    .select_from(_invitation.join(_checkin, _checkin.c.id == _invitation.c.checkin_id))
    .where(_invitation.c.id == bindparam("invitation"))
)
_ALL_QUESTIONS = _question.alias("all_questions")
_NEXT_QUESTION = (
    select(
        _question.c.id,
        _question.c.position,
        select(func.count())
        .select_from(_ALL_QUESTIONS)
        .where(_ALL_QUESTIONS.c.checkin_id == bindparam("checkin"))
        .scalar_subquery(),
        _question.c.kind,
        _question.c.text_en,
        _question.c.text_st,
        _question.c.options_json,
        _question.c.min_value,
        _question.c.max_value,
    )
    .where(
        _question.c.checkin_id == bindparam("checkin"),
        ~exists(
            select(1).where(_answer.c.invitation_id == bindparam("invitation"), _answer.c.question_id == _question.c.id)
        ),
    )
    .order_by(_question.c.position)
    .limit(1)
)
_CHECKIN_OF = select(_invitation.c.checkin_id).where(_invitation.c.id == bindparam("invitation"))
_FINISH = (
    update(_invitation)
    .where(
        _invitation.c.id == bindparam("invitation"),
        _invitation.c.status.in_([str(status) for status in PENDING_INVITATION_STATUSES]),
    )
    .values(status=bindparam("status"), channel=bindparam("channel"), finished_at=bindparam("now"))
)
_PROGRESS = (
    update(_invitation)
    .where(_invitation.c.id == bindparam("invitation"), _invitation.c.status == InvitationStatus.INVITED)
    .values(status=InvitationStatus.ANSWERING)
)
_CHANNEL = update(_invitation).where(_invitation.c.id == bindparam("invitation")).values(channel=bindparam("channel"))


def open_invitation(db: Executor, phone: str, now: datetime) -> OpenInvitation | None:
    """The oldest invitation of a person on `phone` that is neither answered nor declined, to an open check-in."""
    row = db.execute(_OPEN_FOR_PHONE, {"phone": phone, "now": now}).first()
    return OpenInvitation(*row) if row else None


def invitation_by_id(db: Executor, invitation_id: int, now: datetime) -> OpenInvitation | None:
    """The invitation, if it is still pending and its check-in open."""
    row = db.execute(_OPEN_BY_ID, {"invitation": invitation_id, "now": now}).first()
    return OpenInvitation(*row) if row else None


def has_finished_open_checkin(db: Executor, phone: str, now: datetime) -> bool:
    """Whether a person on `phone` has answered or declined a check-in that is still open (to say "done")."""
    return db.execute(_FINISHED_FOR_PHONE, {"phone": phone, "now": now}).first() is not None


def invitation_outcome(db: Executor, invitation_id: int, now: datetime) -> Outcome | None:
    """Why an invitation takes no answer: None if it still does."""
    row = db.execute(_STATE, {"invitation": invitation_id, "now": now}).first()
    if row is None or not row.open:
        return Outcome.CLOSED
    if row.status in FINISHED_INVITATION_STATUSES:
        return Outcome.ALREADY_FINISHED
    return None


def next_question(db: Executor, invitation_id: int) -> QuestionView | None:
    """The first question this invitation has no answer to, in the check-in's order."""
    checkin_id = db.execute(_CHECKIN_OF, {"invitation": invitation_id}).scalar()
    if checkin_id is None:
        return None
    row = db.execute(_NEXT_QUESTION, {"checkin": checkin_id, "invitation": invitation_id}).first()
    if row is None:
        return None
    options = tuple(tuple(pair) for pair in _json_list(row.options_json))
    return QuestionView(
        id=row.id,
        position=row.position,
        count=row[2],
        kind=row.kind,
        text_en=row.text_en,
        text_st=row.text_st,
        options=options,
        low=row.min_value,
        high=row.max_value,
    )


def _json_list(raw: str | None) -> list:
    return json.loads(raw or "[]")


def parse_answer(question: QuestionView, text: str) -> int | None:
    """The value to store for `text` (None: "prefer not to answer"), or `InvalidCheckinAnswer`.

    A choice or yes/no takes the number of an option; the number after the last option passes the question. A yes/no
    also takes the words (YES/E, NO/CHE) someone answering by SMS may write. A number question takes a whole number in
    its range, or 99 to pass.
    """
    word = " ".join(text.split()).strip(".!").upper()
    if question.kind == QuestionKind.NUMBER:
        if word == PREFER_NOT_TO_ANSWER:
            return None
        if word.isdigit() and question.low is not None and question.high is not None:
            value = int(word)
            if question.low <= value <= question.high:
                return value
        raise InvalidCheckinAnswer("number")
    if question.kind == QuestionKind.YES_NO:
        if word in YES_WORDS:
            return YES
        if word in NO_WORDS:
            return NO
    if word.isdigit() and len(word) <= 2:
        number = int(word)
        if 1 <= number <= question.choices:
            return number
        if number == question.choices + 1:
            return None
    raise InvalidCheckinAnswer("choice")


# Words for yes and no, in both languages, whatever the person's language.
YES_WORDS = frozenset({"YES", "E", "EE", "EA"})
NO_WORDS = frozenset({"NO", "CHE"})


def record_answer(
    db: Executor, invitation_id: int, question_id: int, value: int | None, channel: str, now: datetime
) -> Outcome:
    """Keep one answer (the first one given to a question stands) and say what comes next."""
    refused = invitation_outcome(db, invitation_id, now)
    if refused is not None:
        return refused
    db.execute(
        insert_on_conflict(dialect_name(db), _answer)
        .values(invitation_id=invitation_id, question_id=question_id, value=value, channel=channel, answered_at=now)
        .on_conflict_do_nothing(index_elements=["invitation_id", "question_id"])
    )
    db.execute(_PROGRESS, {"invitation": invitation_id})
    db.execute(_CHANNEL, {"invitation": invitation_id, "channel": channel})
    if next_question(db, invitation_id) is not None:
        return Outcome.NEXT
    db.execute(
        _FINISH, {"invitation": invitation_id, "status": InvitationStatus.ANSWERED, "channel": channel, "now": now}
    )
    return Outcome.FINISHED


def decline(db: Executor, invitation_id: int, channel: str, now: datetime) -> bool:
    """The person does not want to take part (answers already given are kept); False if already finished."""
    result = db.execute(
        _FINISH, {"invitation": invitation_id, "status": InvitationStatus.DECLINED, "channel": channel, "now": now}
    )
    return result.rowcount == 1


def use_channel(db: Executor, invitation_id: int, channel: str) -> None:
    """Note where the person answers now: an SMS reply is read as an answer only while the channel is SMS."""
    db.execute(_CHANNEL, {"invitation": invitation_id, "channel": channel})
