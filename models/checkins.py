"""Follow-up check-ins: a few questions the programme asks its people months later, and what each person answered.

A check-in is defined by staff (title and 1 to 8 questions, each in English and Sesotho), sent to an audience chosen
like a campaign's, and open between two dates. Sending writes one invitation per person (`CheckinInvitation`): the
invitation is what the USSD menu looks for to show `7`, what an SMS reply is routed to, and what the reminder skips
once the person has answered or declined. Answers are kept per invitation and question; both are unique, so a
person answers each question once and a check-in once, by USSD or SMS, whichever comes first.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, UtcDateTime

# A check-in asks at least one and at most this many questions: it is "short", on a keypad.
MAX_QUESTIONS = 8
MAX_TITLE_CHARS = 60
# A question and an option are shown on a 160-character USSD screen with their options and navigation.
MAX_QUESTION_CHARS = 100
MAX_OPTION_CHARS = 30
MIN_OPTIONS, MAX_OPTIONS = 2, 6
# A number question is typed on a keypad where 0, 98 and 99 are Back, More and Skip (menus.keypad): its range
# lives between them. "None" is asked as a choice.
NUMBER_LOWEST, NUMBER_HIGHEST = 1, 97
# The days after sending when the one reminder goes to those who have neither answered nor declined.
MAX_REMINDER_DAYS = 60


class CheckinStatus(StrEnum):
    DRAFT = "draft"  # being written; nobody invited
    OPEN = "open"  # sent: invitations written, answers taken between opens_at and closes_at
    CLOSED = "closed"  # closed by staff or past closes_at; answers kept, none taken


class QuestionKind(StrEnum):
    CHOICE = "choice"  # one of the options; stored as the option's number
    NUMBER = "number"  # a whole number in [min_value, max_value]
    YES_NO = "yes_no"  # stored as 1 (yes) or 2 (no), the numbers on the screen


# The stored values of a yes/no answer, as numbered on the screen.
YES, NO = 1, 2


class InvitationStatus(StrEnum):
    INVITED = "invited"  # not started
    ANSWERING = "answering"  # some questions answered
    ANSWERED = "answered"  # every question answered (or passed with "prefer not to answer")
    DECLINED = "declined"  # the person chose not to take part


# Invitations that still show `7`, take SMS answers and get the reminder.
PENDING_INVITATION_STATUSES = (InvitationStatus.INVITED, InvitationStatus.ANSWERING)
FINISHED_INVITATION_STATUSES = (InvitationStatus.ANSWERED, InvitationStatus.DECLINED)


class AnswerChannel(StrEnum):
    USSD = "ussd"
    SMS = "sms"


class Checkin(TimestampMixin, Base):
    __tablename__ = "checkins"

    id: Mapped[int] = mapped_column(primary_key=True)
    title_en: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS))
    title_st: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS))
    status: Mapped[str] = mapped_column(String(8), default=CheckinStatus.DRAFT, index=True)
    audience_json: Mapped[str] = mapped_column(Text, default="{}")  # models.campaigns.Audience
    opens_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closes_at: Mapped[datetime] = mapped_column(UtcDateTime)
    remind_after_days: Mapped[int] = mapped_column(Integer)  # 0: no reminder
    created_by: Mapped[str] = mapped_column(String(120))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The bulk campaigns that carry the invitation and the reminder SMS (fan-out, quiet hours, STOP, progress).
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    reminder_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))

    questions: Mapped[list[CheckinQuestion]] = relationship(
        back_populates="checkin", order_by="CheckinQuestion.position", cascade="all, delete-orphan"
    )

    def title_for(self, language: str | None) -> str:
        return self.title_st if language == "st" else self.title_en

    def __repr__(self) -> str:
        return f"<Checkin id={self.id} status={self.status}>"


class CheckinQuestion(Base):
    __tablename__ = "checkin_questions"
    __table_args__ = (UniqueConstraint("checkin_id", "position", name="uq_checkin_questions_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("checkins.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, …: the order asked
    kind: Mapped[str] = mapped_column(String(8))
    text_en: Mapped[str] = mapped_column(String(MAX_QUESTION_CHARS))
    text_st: Mapped[str] = mapped_column(String(MAX_QUESTION_CHARS))
    options_json: Mapped[str] = mapped_column(Text, default="[]")  # choice: [[english, sesotho], …]
    min_value: Mapped[int | None] = mapped_column(Integer)
    max_value: Mapped[int | None] = mapped_column(Integer)

    checkin: Mapped[Checkin] = relationship(back_populates="questions")

    @property
    def options(self) -> list[tuple[str, str]]:
        return [(english, sesotho) for english, sesotho in json.loads(self.options_json or "[]")]

    def text_for(self, language: str | None) -> str:
        return self.text_st if language == "st" else self.text_en


class CheckinInvitation(Base):
    """One person asked to answer one check-in; at most one per person and check-in."""

    __tablename__ = "checkin_invitations"
    __table_args__ = (UniqueConstraint("checkin_id", "beneficiary_id", name="uq_checkin_invitations_person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("checkins.id"), index=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default=InvitationStatus.INVITED)
    channel: Mapped[str | None] = mapped_column(String(4))  # where the person last answered
    invited_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CheckinAnswer(Base):
    """One answer; `value` None is "prefer not to answer". Unique per invitation and question."""

    __tablename__ = "checkin_answers"
    __table_args__ = (UniqueConstraint("invitation_id", "question_id", name="uq_checkin_answers_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("checkin_invitations.id"))
    question_id: Mapped[int] = mapped_column(ForeignKey("checkin_questions.id"), index=True)
    value: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(4))
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime)
