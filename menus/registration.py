"""The registration questions, in the order of the menu contract, each with the check its answer must pass.

The list is the single description of the form: the engine asks `QUESTIONS` in order, resumes a draft at the first
unanswered one, and builds `models.registration.RegistrationAnswers` from the answers by field name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from models.clock import utcnow
from models.people import DISTRICTS, MainNeed, ReturnedFrom, Sex
from models.registration import RegistrationAnswers
from notifications.sms.encoding import GSM7_BASIC

# Lengths and ranges the programme accepts; the database columns are wider.
NAME_MIN_CHARS, NAME_MAX_CHARS = 2, 60
VILLAGE_MIN_CHARS, VILLAGE_MAX_CHARS = 2, 60
NATIONAL_ID_MIN_CHARS, NATIONAL_ID_MAX_CHARS = 5, 20
HOUSEHOLD_MIN, HOUSEHOLD_MAX = 1, 30
# A returnee is at least this old and at most this old (years before the current year).
MIN_AGE_YEARS, MAX_AGE_YEARS = 15, 100
# The programme serves those who came back since this year.
FIRST_RETURN_YEAR = 1990
# Punctuation a name or village may hold besides letters (and, for a village, digits): Mohale's, Tau-Mokoena,
# Ntate M. Letsie, Ha Abia (Maseru). Nothing else: these answers end up in staff spreadsheets, where `=`, `+` or `@`
# could start a formula (docs/security.md).
NAME_PUNCTUATION = frozenset(" '-.,()")
# The answer key of the consent screen: set (True) once the person agreed; it is not part of the beneficiary.
CONSENT = "consent"
# The field of the optional national ID question; typing one is limited per number (menus.actions).
NATIONAL_ID = "national_id"
# The draft key set (True) when the registration is for another member of a household phone's household: the
# questions speak of "their" name, and a dropped draft stays on offer after the phone's first registration.
HOUSEHOLD = "household"

_YEAR = re.compile(r"[0-9]{4}")
_SMALL_NUMBER = re.compile(r"[0-9]{1,2}")
_NATIONAL_ID = re.compile(rf"[A-Za-z0-9]{{{NATIONAL_ID_MIN_CHARS},{NATIONAL_ID_MAX_CHARS}}}")


class InvalidAnswer(ValueError):
    """The answer cannot be accepted; `reason` is the catalogue key of the short reason shown above the question."""

    def __init__(self, reason: str, **params: Any):
        super().__init__(reason)
        self.reason = reason
        self.params = params


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


def current_year() -> int:
    return utcnow().year


def collapse_spaces(text: str) -> str:
    return " ".join(text.split())


def parse_name(text: str, _answers: Mapping[str, Any]) -> str:
    name = collapse_spaces(text)
    letters = sum(char.isalpha() for char in name)
    allowed = all((char.isalpha() and char in GSM7_BASIC) or char in NAME_PUNCTUATION for char in name)
    if not (NAME_MIN_CHARS <= len(name) <= NAME_MAX_CHARS) or not allowed or letters < NAME_MIN_CHARS:
        raise InvalidAnswer("error.name")
    return name


def _parse_year(text: str, first: int, last: int, reason: str) -> int:
    if not _YEAR.fullmatch(text):
        raise InvalidAnswer("error.year")
    year = int(text)
    if not first <= year <= last:
        raise InvalidAnswer(reason, first=first, last=last)
    return year


def parse_year_of_birth(text: str, _answers: Mapping[str, Any]) -> int:
    year = current_year()
    return _parse_year(text, year - MAX_AGE_YEARS, year - MIN_AGE_YEARS, "error.year_of_birth")


def parse_year_of_return(text: str, answers: Mapping[str, Any]) -> int:
    year = _parse_year(text, FIRST_RETURN_YEAR, current_year(), "error.year_of_return")
    born = answers.get("year_of_birth")
    if isinstance(born, int) and year < born:
        raise InvalidAnswer("error.return_before_birth")
    return year


def parse_village(text: str, _answers: Mapping[str, Any]) -> str:
    village = collapse_spaces(text)
    allowed = all((char.isalnum() and char in GSM7_BASIC) or char in NAME_PUNCTUATION for char in village)
    if not (VILLAGE_MIN_CHARS <= len(village) <= VILLAGE_MAX_CHARS) or not allowed:
        raise InvalidAnswer("error.village")
    if not any(char.isalpha() for char in village):
        raise InvalidAnswer("error.village")
    return village


def parse_national_id(text: str, _answers: Mapping[str, Any]) -> str:
    if not _NATIONAL_ID.fullmatch(text):
        raise InvalidAnswer("error.national_id")
    return text.upper()


def parse_household_size(text: str, _answers: Mapping[str, Any]) -> int:
    if not _SMALL_NUMBER.fullmatch(text) or not HOUSEHOLD_MIN <= int(text) <= HOUSEHOLD_MAX:
        raise InvalidAnswer("error.household")
    return int(text)


def parse_choice(text: str, count: int) -> int | None:
    """The option number 1..count that `text` is exactly (no leading zeros, ASCII digits), else None."""
    if re.fullmatch(r"[1-9][0-9]?", text) and int(text) <= count:
        return int(text)
    return None


QUESTIONS: tuple[Question, ...] = (
    Question("full_name", "registration.full_name", parse=parse_name),
    Question(
        "sex",
        "registration.sex",
        choices=(Choice(Sex.FEMALE, "registration.sex_female"), Choice(Sex.MALE, "registration.sex_male")),
    ),
    Question("year_of_birth", "registration.year_of_birth", parse=parse_year_of_birth, invalidates=("year_of_return",)),
    Question("district", "registration.district", choices=tuple(Choice(d, d, literal=True) for d in DISTRICTS)),
    Question("village", "registration.village", parse=parse_village),
    Question(
        "returned_from",
        "registration.returned_from",
        choices=(
            Choice(ReturnedFrom.SOUTH_AFRICA, "registration.returned_from_south_africa"),
            Choice(ReturnedFrom.OTHER, "registration.returned_from_other"),
        ),
    ),
    Question("year_of_return", "registration.year_of_return", parse=parse_year_of_return),
    Question(NATIONAL_ID, "registration.national_id", parse=parse_national_id, optional=True),
    Question("household_size", "registration.household_size", parse=parse_household_size),
    Question(
        "main_need",
        "registration.main_need",
        choices=tuple(
            Choice(need, f"registration.main_need_{need}")
            for need in (MainNeed.BUSINESS, MainNeed.FARMING, MainNeed.SKILLS, MainNeed.JOB, MainNeed.OTHER)
        ),
    ),
)
QUESTIONS_BY_FIELD = {question.field: question for question in QUESTIONS}


def answer_question(question: Question, text: str, answers: Mapping[str, Any]) -> Any:
    """The value to store for `text`, or `InvalidAnswer`."""
    if question.choices:
        number = parse_choice(text, len(question.choices))
        if number is None:
            raise InvalidAnswer("error.invalid_choice")
        return str(question.choices[number - 1].value)
    assert question.parse is not None  # a question without choices has a parser: see QUESTIONS
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


def to_registration_answers(answers: Mapping[str, Any]) -> RegistrationAnswers:
    national_id = answers["national_id"]
    return RegistrationAnswers(
        full_name=str(answers["full_name"]),
        sex=str(answers["sex"]),
        year_of_birth=int(answers["year_of_birth"]),
        district=str(answers["district"]),
        village=str(answers["village"]),
        returned_from=str(answers["returned_from"]),
        year_of_return=int(answers["year_of_return"]),
        national_id=str(national_id) if national_id else None,
        household_size=int(answers["household_size"]),
        main_need=str(answers["main_need"]),
    )
