"""The USSD side of a follow-up check-in: `7 Answer a short check-in` on the main menu, one question a screen.

`7` shows only while the caller has an open invitation (looked up once, when the session starts, and kept in the
session state), so the numbers 1 to 6 never move. The first screen names the person the questions are about (a
household phone can hold several people; it answers for the oldest open invitation first, and the next dial offers
the next one) and offers to decline. Each question re-asks on a wrong key with a short reason, and always offers
to pass it: the last option of a choice, `99` for a number. Answers are written as they are given, so a dropped
session resumes at the next unanswered question, by USSD or by SMS (`notifications.checkins.answering`).
"""

from __future__ import annotations

import logging

from menus.hop import Hop, Screen
from menus.keypad import SKIP
from menus.registration import parse_choice
from menus.session import Frame
from models.checkins import AnswerChannel, QuestionKind
from models.clock import utcnow
from models.phone import mask_phone
from notifications.checkins.answering import (
    InvalidCheckinAnswer,
    Outcome,
    QuestionView,
    decline,
    invitation_by_id,
    invitation_outcome,
    next_question,
    open_invitation,
    parse_answer,
    record_answer,
)

log = logging.getLogger(__name__)

# The END screens of a check-in (each fits one screen: the tests check them with the others).
END_TEXTS = frozenset({"checkin.done", "checkin.declined", "checkin.already_done", "checkin.closed"})
# A first name longer than this is cut on the first screen.
NAME_MAX_CHARS = 20
_OUTCOME_TEXTS = {
    Outcome.FINISHED: "checkin.done",
    Outcome.ALREADY_FINISHED: "checkin.already_done",
    Outcome.CLOSED: "checkin.closed",
}


def find_open_checkin(hop: Hop) -> None:
    """At the start of a session: the caller's open invitation, if any, which puts `7` on the main menu.

    Asked of the database only while some check-in may be open (`CHECKINS_OPEN_UNTIL_KEY`, read with the session):
    the rest of the time a returning caller's dial still costs no database read at all.
    """
    now = utcnow()
    if hop.checkins_open_until <= now.timestamp():
        hop.state.checkin = None
        return
    with hop.database.connection() as db:
        invitation = open_invitation(db, hop.phone, now)
    hop.state.checkin = invitation.id if invitation else None


def start_checkin(hop: Hop) -> None:
    """`7`: the check-in's first screen, or why it cannot be answered any more (answered by SMS since, or closed)."""
    invitation_id = hop.state.checkin
    now = utcnow()
    with hop.database.connection() as db:
        invitation = invitation_by_id(db, invitation_id, now) if invitation_id else None
        outcome = invitation_outcome(db, invitation_id, now) if invitation is None and invitation_id else None
    if invitation is None:
        hop.state.checkin = None
        hop.end(_OUTCOME_TEXTS.get(outcome, "checkin.closed"))
        return
    hop.push(
        "checkin_intro",
        invitation=invitation.id,
        first_name=invitation.first_name[:NAME_MAX_CHARS],
        title=invitation.title_for(hop.language),
        count=invitation.questions,
    )


def _finish(hop: Hop, key: str) -> None:
    hop.state.checkin = None  # `7` goes from the main menu for the rest of the session
    hop.end(key)


def _ask_next(hop: Hop, invitation_id: int) -> None:
    with hop.database.connection() as db:
        refused = invitation_outcome(db, invitation_id, utcnow())
        question = next_question(db, invitation_id) if refused is None else None
    if refused is not None:
        _finish(hop, _OUTCOME_TEXTS[refused])
        return
    if question is None:
        _finish(hop, "checkin.already_done")
        return
    _show(hop, invitation_id, question)


def _show(hop: Hop, invitation_id: int, question: QuestionView) -> None:
    hop.replace(
        "checkin_question",
        invitation=invitation_id,
        question=question.id,
        number=question.position,
        count=question.count,
        kind=question.kind,
        text=question.text_for(hop.language),
        labels=question.option_labels(hop.language),
        low=question.low,
        high=question.high,
    )


def _numbered(hop: Hop, labels: list[str]) -> list[str]:
    return [f"{number} {label}" for number, label in enumerate(labels, start=1)]


class CheckinIntroScreen(Screen):
    """Whose check-in, what it is about and how long; start or decline."""

    def content(self, hop, frame):
        args = frame.args
        intro = hop.t(
            "checkin.intro",
            first_name=args.get("first_name", "-"),
            title=args.get("title", "-"),
            count=args.get("count", 1),
        )
        return [intro, *_numbered(hop, [hop.t("checkin.start"), hop.t("checkin.decline")])]

    def answer(self, hop, frame, text):
        choice = parse_choice(text, 2)
        invitation_id = frame.args.get("invitation")
        if choice is None or invitation_id is None:
            hop.reask("error.invalid_choice")
            return
        if choice == 1:
            _ask_next(hop, invitation_id)
            return
        with hop.database.connection() as db:
            declined = decline(db, invitation_id, AnswerChannel.USSD, utcnow())
        log.info("check-in declined by %s by USSD: %s", mask_phone(hop.phone), declined)
        _finish(hop, "checkin.declined" if declined else "checkin.already_done")


class CheckinQuestionScreen(Screen):
    """One question; `frame.args` carries it in the caller's language, so showing it again reads no database."""

    def _view(self, frame: Frame) -> QuestionView:
        args = frame.args
        labels = list(args.get("labels") or [])
        return QuestionView(
            id=args.get("question", 0),
            position=args.get("number", 1),
            count=args.get("count", 1),
            kind=args.get("kind", QuestionKind.YES_NO),
            text_en=args.get("text", ""),
            text_st=args.get("text", ""),
            options=tuple((label, label) for label in labels),
            low=args.get("low"),
            high=args.get("high"),
        )

    def content(self, hop, frame):
        question = self._view(frame)
        lines = [hop.t("checkin.question", number=question.position, count=question.count, question=question.text_en)]
        if question.kind == QuestionKind.NUMBER:
            lines.append(hop.t("checkin.number_hint", low=question.low, high=question.high))
            lines.append(f"{SKIP} {hop.t('checkin.prefer_not')}")
            return lines
        labels = (
            [hop.t("checkin.yes"), hop.t("checkin.no")]
            if question.kind == QuestionKind.YES_NO
            else question.option_labels(hop.language)
        )
        return [*lines, *_numbered(hop, [*labels, hop.t("checkin.prefer_not")])]

    def answer(self, hop, frame, text):
        question = self._view(frame)
        try:
            value = parse_answer(question, text)
        except InvalidCheckinAnswer as invalid:
            if invalid.reason == "number":
                hop.reask("error.checkin_number", low=question.low, high=question.high)
            else:
                hop.reask("error.invalid_choice")
            return
        self._store(hop, frame, question, value)

    def skip(self, hop, frame):
        """`99`: prefer not to answer, on any question."""
        self._store(hop, frame, self._view(frame), None)

    @staticmethod
    def _store(hop: Hop, frame: Frame, question: QuestionView, value: int | None) -> None:
        invitation_id = frame.args.get("invitation")
        now = utcnow()
        with hop.database.connection() as db:
            outcome = record_answer(db, invitation_id, question.id, value, AnswerChannel.USSD, now)
            following = next_question(db, invitation_id) if outcome == Outcome.NEXT else None
        if following is not None:
            _show(hop, invitation_id, following)
            return
        log.info("check-in finished by %s by USSD: %s", mask_phone(hop.phone), outcome)
        _finish(hop, _OUTCOME_TEXTS.get(outcome, "checkin.done"))


SCREENS: dict[str, Screen] = {
    "checkin_intro": CheckinIntroScreen(),
    "checkin_question": CheckinQuestionScreen(),
}
