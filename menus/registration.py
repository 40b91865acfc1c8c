"""The registration questions of the USSD form, in the order of the menu contract: the screens and their wording.

The answers themselves and the rule each must pass live in `models.answers` (`FIELDS`), shared with the officers'
walk-in form and the staff API; a question adds only its prompt and the labels of its numbered options. The engine
asks `QUESTIONS` in order, resumes a draft at the first unanswered one, and hands the answers to the registration
(`notifications.casework.registration.register_beneficiary_for`) by field name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from models.answers import (
    CONSENT,
    FIELDS,
    NATIONAL_ID,
    Field,
    InvalidAnswer,
    current_year,
    to_registration_answers,
)

# The one question whose options are names, shown as they are in both languages.
DISTRICT = "district"
# The draft key set (True) when the registration is for another member of a household phone's household: the
# questions speak of "their" name, and a dropped draft stays on offer after the phone's first registration.
HOUSEHOLD = "household"

__all__ = [
    "CONSENT",
    "NATIONAL_ID",
    "QUESTIONS",
    "QUESTIONS_BY_FIELD",
    "Choice",
    "InvalidAnswer",
    "Question",
    "answer_question",
    "current_year",
    "first_unanswered",
    "is_complete",
    "parse_choice",
    "to_registration_answers",
]


@dataclass(frozen=True)
class Choice:
    """A numbered option: the value stored, and its label (a catalogue key, or the literal text when `literal`)."""

    value: str
    label: str
    literal: bool = False


@dataclass(frozen=True)
class Question:
    """One screen of the form. Either `choices` (numbered options) or `parse` (free text) decides the answer."""

    field: str
    prompt: str  # catalogue key
    choices: tuple[Choice, ...] = ()
    parse: Callable[[str, Mapping[str, Any]], Any] | None = None
    optional: bool = False  # `99` skips it
    invalidates: tuple[str, ...] = field(default=())  # answers to ask again when this one changes


def _choice(answer: Field, value: str) -> Choice:
    """A district is shown by its name, in both languages; other options by their catalogue label."""
    if answer.name == DISTRICT:
        return Choice(value, value, literal=True)
    return Choice(value, f"registration.{answer.name}_{value}")


def _question(answer: Field) -> Question:
    return Question(
        answer.name,
        f"registration.{answer.name}",
        choices=tuple(_choice(answer, str(value)) for value in answer.choices),
        parse=answer.parse,
        optional=answer.optional,
        invalidates=answer.invalidates,
    )


QUESTIONS: tuple[Question, ...] = tuple(_question(answer) for answer in FIELDS)
QUESTIONS_BY_FIELD = {question.field: question for question in QUESTIONS}


def parse_choice(text: str, count: int) -> int | None:
    """The option number 1..count that `text` is exactly (no leading zeros, ASCII digits), else None."""
    if re.fullmatch(r"[1-9][0-9]?", text) and int(text) <= count:
        return int(text)
    return None


def answer_question(question: Question, text: str, answers: Mapping[str, Any]) -> Any:
    """The value to store for `text`, or `InvalidAnswer`."""
    if question.choices:
        number = parse_choice(text, len(question.choices))
        if number is None:
            raise InvalidAnswer("error.invalid_choice")
        return str(question.choices[number - 1].value)
    assert question.parse is not None  # a question without choices has a parser: see models.answers.FIELDS
    return question.parse(text, answers)


def first_unanswered(answers: Mapping[str, Any]) -> str | None:
    """The field of the first question not answered yet, `CONSENT` when only consent is missing, else None."""
    for question in QUESTIONS:
        if question.field not in answers:
            return question.field
    return None if answers.get(CONSENT) else CONSENT


def for_household(answers: Mapping[str, Any]) -> bool:
    """Whether the draft is a registration of another member of the caller's household."""
    return answers.get(HOUSEHOLD) is True


def is_complete(answers: Mapping[str, Any]) -> bool:
    return first_unanswered(answers) is None and _well_typed(answers)


def _well_typed(answers: Mapping[str, Any]) -> bool:
    """A draft from an older deploy, or one edited by hand, must not reach the database half-typed."""
    try:
        to_registration_answers(answers)
    except (TypeError, ValueError, KeyError):
        return False
    return True
