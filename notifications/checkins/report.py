"""What people answered, counted by question, answer, district, sex and age band (the donor's bands, at
registration, from `models.reports`), for the console page, its CSV and the API."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.checkins import NO, YES, Checkin, CheckinAnswer, CheckinInvitation, CheckinQuestion, QuestionKind
from models.people import Beneficiary
from models.reports import AGE_BAND_LABELS, age_band_at_registration
from models.spreadsheet import csv_writer

PREFER_NOT_LABEL = "prefer not to answer"
CSV_COLUMNS = ("Question", "Question text", "Answer", "District", "Sex", "Age band", "People")


@dataclass(frozen=True)
class AnswerCount:
    position: int
    question: str
    answer: str
    district: str
    sex: str
    age_band: str
    people: int

    def as_dict(self) -> dict:
        return {
            "question": self.position,
            "question_text": self.question,
            "answer": self.answer,
            "district": self.district,
            "sex": self.sex,
            "age_band": self.age_band,
            "people": self.people,
        }


def answer_label(question: CheckinQuestion, value: int | None) -> str:
    """An answer as staff read it (English): the option, yes or no, the number, or "prefer not to answer"."""
    if value is None:
        return PREFER_NOT_LABEL
    if question.kind == QuestionKind.YES_NO:
        return {YES: "yes", NO: "no"}.get(value, str(value))
    if question.kind == QuestionKind.CHOICE:
        options = question.options
        return options[value - 1][0] if 1 <= value <= len(options) else str(value)
    return str(value)


def answer_counts(session: Session, checkin: Checkin, districts: Sequence[str] = ()) -> list[AnswerCount]:
    """People per question, answer, district, sex and age band; `districts` limits the people counted."""
    band = age_band_at_registration().label("age_band")
    query = (
        select(
            CheckinAnswer.question_id,
            CheckinAnswer.value,
            Beneficiary.district,
            Beneficiary.sex,
            band,
            func.count(),
        )
        .join(CheckinInvitation, CheckinInvitation.id == CheckinAnswer.invitation_id)
        .join(Beneficiary, Beneficiary.id == CheckinInvitation.beneficiary_id)
        .where(CheckinInvitation.checkin_id == checkin.id)
        .group_by(CheckinAnswer.question_id, CheckinAnswer.value, Beneficiary.district, Beneficiary.sex, band)
    )
    if districts:
        query = query.where(Beneficiary.district.in_(districts))
    questions = {question.id: question for question in checkin.questions}
    counts = [
        AnswerCount(
            position=questions[question_id].position,
            question=questions[question_id].text_en,
            answer=answer_label(questions[question_id], value),
            district=district,
            sex=sex,
            age_band=age_band,
            people=people,
        )
        for question_id, value, district, sex, age_band, people in session.execute(query).all()
    ]
    bands = {label: index for index, label in enumerate(AGE_BAND_LABELS)}
    return sorted(counts, key=lambda c: (c.position, c.answer, c.district, c.sex, bands.get(c.age_band, len(bands))))


def answers_csv(counts: Sequence[AnswerCount]) -> str:
    """The counts as CSV that no answer text can turn into a spreadsheet formula."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(CSV_COLUMNS)
    for count in counts:
        writer.writerow(
            (count.position, count.question, count.answer, count.district, count.sex, count.age_band, count.people)
        )
    return out.getvalue()
