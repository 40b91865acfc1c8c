"""Answering a check-in by SMS, one question a message: what an incoming SMS means for a check-in, and the reply.

The invitation says "reply YES to answer by SMS, NO if you prefer not to". From YES on, the phone is answering by
SMS: each reply is read as the answer to the next question and the gateway texts the question after it (or the
thanks). A wrong answer gets the same question again with a short reason (a longer text that is no answer is a
message for staff and goes to the inbox); END (QETA) stops, keeping what was answered. Before YES, and for phones
with no open check-in, any other text is for the staff inbox, as before. A second YES after the check-in was
answered or declined is told it is done. STOP, START and HELP are read before
any of this (`notifications.sms.inbound`), so they keep working in the middle of a check-in.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from models.checkins import AnswerChannel, QuestionKind
from models.messages import MessageKind, OutboundMessage
from models.people import Contact, Language
from notifications.checkins.answering import (
    NO_WORDS,
    PREFER_NOT_TO_ANSWER,
    YES_WORDS,
    InvalidCheckinAnswer,
    OpenInvitation,
    Outcome,
    QuestionView,
    decline,
    has_finished_open_checkin,
    next_question,
    open_invitation,
    parse_answer,
    record_answer,
    use_channel,
)
from notifications.sms.outbox import owe_message, owe_text
from notifications.sms.texts import sms_catalogue

log = logging.getLogger(__name__)

# Stops answering by SMS, in either language ("qeta": finish).
END_WORDS = frozenset({"END", "QETA"})
# The keyword an SMS that a check-in handled is stored with: it never waits in the staff inbox.
CHECKIN_KEYWORD = "checkin"
# A reply longer than this that is no answer is a message for staff ("my grant has not come"), not a wrong key:
# it goes to the inbox, and the check-in waits for the answer.
SHORT_ANSWER_MAX_CHARS = 12


def _word(text: str) -> str:
    return " ".join(text.split()).strip(".!").upper()


def question_sms(question: QuestionView, language: str, reason: str | None = None) -> str:
    """One question as an SMS: optional reason, the question, its numbered answers, how to pass or stop."""
    catalogue = sms_catalogue()
    lines = []
    if reason:
        lines.append(
            catalogue.get(f"checkin.invalid_{reason}", language, low=question.low or 0, high=question.high or 0)
        )
    lines.append(
        catalogue.get(
            "checkin.question",
            language,
            number=question.position,
            count=question.count,
            question=question.text_for(language),
        )
    )
    if question.kind == QuestionKind.NUMBER:
        lines.append(
            catalogue.get(
                "checkin.number_hint", language, low=question.low, high=question.high, skip=PREFER_NOT_TO_ANSWER
            )
        )
    else:
        labels = (
            [catalogue.get("checkin.yes", language), catalogue.get("checkin.no", language)]
            if question.kind == QuestionKind.YES_NO
            else question.option_labels(language)
        )
        labels.append(catalogue.get("checkin.prefer_not", language))
        lines.extend(f"{number} {label}" for number, label in enumerate(labels, start=1))
    lines.append(catalogue.get("checkin.stop_hint", language))
    return "\n".join(lines)


def answer_by_sms(session: Session, contact: Contact, text: str, now: datetime) -> OutboundMessage | None:
    """The reply an incoming SMS gets as part of a check-in, or None when the SMS is not about a check-in.

    Writes the answer (or the decline) and the reply in the caller's transaction; the caller kicks the queue.
    """
    word = _word(text)
    language = contact.language or Language.ENGLISH
    invitation = open_invitation(session, contact.phone, now)
    if invitation is None:
        if word in YES_WORDS and has_finished_open_checkin(session, contact.phone, now):
            return owe_message(session, contact, MessageKind.CHECKIN, text_key="checkin.already_done")
        return None
    if invitation.channel != AnswerChannel.SMS:
        if word in YES_WORDS:
            use_channel(session, invitation.id, AnswerChannel.SMS)
            return _ask_next(session, contact, invitation, language)
        if word in NO_WORDS:
            decline(session, invitation.id, AnswerChannel.SMS, now)
            return owe_message(session, contact, MessageKind.CHECKIN, text_key="checkin.declined")
        return None
    if word in END_WORDS:
        decline(session, invitation.id, AnswerChannel.SMS, now)
        return owe_message(session, contact, MessageKind.CHECKIN, text_key="checkin.declined")
    question = next_question(session, invitation.id)
    if question is None:  # every question answered (another channel finished it as we read)
        return owe_message(session, contact, MessageKind.CHECKIN, text_key="checkin.already_done")
    try:
        value = parse_answer(question, text)
    except InvalidCheckinAnswer as invalid:
        if len(word) > SHORT_ANSWER_MAX_CHARS:
            return None
        return owe_text(session, contact, MessageKind.CHECKIN, question_sms(question, language, invalid.reason))
    outcome = record_answer(session, invitation.id, question.id, value, AnswerChannel.SMS, now)
    log.info("check-in %s: SMS answer to question %s, %s", invitation.checkin_id, question.position, outcome)
    if outcome == Outcome.NEXT:
        return _ask_next(session, contact, invitation, language)
    if outcome == Outcome.FINISHED:
        return owe_message(session, contact, MessageKind.CHECKIN, text_key="checkin.done")
    if outcome == Outcome.ALREADY_FINISHED:
        return owe_message(session, contact, MessageKind.CHECKIN, text_key="checkin.already_done")
    return owe_message(session, contact, MessageKind.CHECKIN, text_key="checkin.closed")


def _ask_next(session: Session, contact: Contact, invitation: OpenInvitation, language: str) -> OutboundMessage:
    question = next_question(session, invitation.id)
    if question is None:
        return owe_message(session, contact, MessageKind.CHECKIN, text_key="checkin.already_done")
    return owe_text(session, contact, MessageKind.CHECKIN, question_sms(question, language))
