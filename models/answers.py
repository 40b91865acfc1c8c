"""The registration answers and the rule each must pass, whoever collects them: the USSD form, an officer's walk-in
form in the console, the staff API, a correction.

One list (`FIELDS`, in the order of the menu contract) says which answers a registration holds, which are choices
and which are free text checked by a parser. The USSD form (`menus.registration`) adds its screens and wording to
these fields; staff interfaces give the same answers as text (`parse_staff_answers`). A parser raises
`InvalidAnswer` with a reason key, which the USSD form words for a small screen (`menus/texts/*.toml`) and staff
read as `staff_message` (`STAFF_REASONS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from models.clock import utcnow
from models.gsm import GSM7_BASIC
from models.people import DISTRICTS, MainNeed, ReturnedFrom, Sex
from models.registration import RegistrationAnswers

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
# The answer key of consent: set (True) once the person agreed; it is not part of the beneficiary.
CONSENT = "consent"
# The field of the optional national ID question; typing one on USSD is limited per number (menus.actions).
NATIONAL_ID = "national_id"

_YEAR = re.compile(r"[0-9]{4}")
_SMALL_NUMBER = re.compile(r"[0-9]{1,2}")
_NATIONAL_ID = re.compile(rf"[A-Za-z0-9]{{{NATIONAL_ID_MIN_CHARS},{NATIONAL_ID_MAX_CHARS}}}")

# What staff read when an answer is refused, by reason key (the USSD form words the same keys for a small screen).
STAFF_REASONS = {
    "error.invalid_choice": "choose one of: {choices}",
    "error.required": "this is required",
    "error.name": (
        f"{NAME_MIN_CHARS} to {NAME_MAX_CHARS} characters with at least {NAME_MIN_CHARS} letters;"
        " only letters, spaces and ' - . , ( )"
    ),
    "error.year": "a year of four digits, like 1985",
    "error.year_of_birth": "a year from {first} to {last}",
    "error.year_of_return": "a year from {first} to {last}",
    "error.return_before_birth": "the year of return is before the year of birth",
    "error.village": (
        f"{VILLAGE_MIN_CHARS} to {VILLAGE_MAX_CHARS} letters or digits, with a letter; no signs other than ' - . , ( )"
    ),
    "error.national_id": f"{NATIONAL_ID_MIN_CHARS} to {NATIONAL_ID_MAX_CHARS} letters or digits, no spaces or signs",
    "error.household": f"a whole number from {HOUSEHOLD_MIN} to {HOUSEHOLD_MAX}",
}


class InvalidAnswer(ValueError):
    """The answer cannot be accepted; `reason` is the key of the short reason (a `STAFF_REASONS` key, and the USSD
    catalogue's key of the text shown above the question)."""

    def __init__(self, reason: str, **params: Any):
        super().__init__(reason)
        self.reason = reason
        self.params = params

    @property
    def staff_message(self) -> str:
        return STAFF_REASONS.get(self.reason, self.reason).format(**self.params)


@dataclass(frozen=True)
class Field:
    """One answer of a registration. Either `choices` (the values stored) or `parse` (free text) decides it."""

    name: str
    choices: tuple[str, ...] = ()
    parse: Callable[[str, Mapping[str, Any]], Any] | None = None
    optional: bool = False  # may be left out (USSD: `99` skips it)
    invalidates: tuple[str, ...] = field(default=())  # answers to check again when this one changes


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


MAIN_NEEDS = (MainNeed.BUSINESS, MainNeed.FARMING, MainNeed.SKILLS, MainNeed.JOB, MainNeed.OTHER)

FIELDS: tuple[Field, ...] = (
    Field("full_name", parse=parse_name),
    Field("sex", choices=(Sex.FEMALE, Sex.MALE)),
    Field("year_of_birth", parse=parse_year_of_birth, invalidates=("year_of_return",)),
    Field("district", choices=DISTRICTS),
    Field("village", parse=parse_village),
    Field("returned_from", choices=(ReturnedFrom.SOUTH_AFRICA, ReturnedFrom.OTHER)),
    Field("year_of_return", parse=parse_year_of_return),
    Field(NATIONAL_ID, parse=parse_national_id, optional=True),
    Field("household_size", parse=parse_household_size),
    Field("main_need", choices=MAIN_NEEDS),
)
FIELDS_BY_NAME = {answer.name: answer for answer in FIELDS}


class AnswersError(ValueError):
    """Some staff answers are refused; `errors` holds the reason for each field, in the order of the form."""

    def __init__(self, errors: Mapping[str, str]):
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in errors.items()))
        self.errors = dict(errors)


def _choice_key(text: str) -> str:
    """`South Africa`, `south_africa` and `SOUTH-AFRICA` are one choice; so are `Mohale's Hoek` and `mohales hoek`."""
    return "".join(char for char in text.casefold() if char.isalnum())


def parse_staff_answer(answer: Field, raw: Any, answers: Mapping[str, Any]) -> Any:
    """The value the USSD form would store for `raw`, as staff type it: a choice by its value or name (`female`,
    `Berea`, `South Africa`), a number as digits; `None` for an optional answer left empty. Raises `InvalidAnswer`."""
    text = collapse_spaces("" if raw is None or isinstance(raw, bool) else str(raw))
    if not text:
        if answer.optional:
            return None
        raise InvalidAnswer("error.required")
    if answer.choices:
        for choice in answer.choices:
            if _choice_key(str(choice)) == _choice_key(text):
                return str(choice)
        raise InvalidAnswer("error.invalid_choice", choices=", ".join(str(choice) for choice in answer.choices))
    assert answer.parse is not None  # a field without choices has a parser: see FIELDS
    return answer.parse(text, answers)


def parse_staff_answers(raw: Mapping[str, Any]) -> RegistrationAnswers:
    """Every answer of a registration from text (a form or JSON), checked as the USSD form checks it.

    Raises `AnswersError` with a reason per refused field, all at once, so that a form can show each beside its
    field. A later answer is checked against the earlier ones as USSD does (the year of return against the birth).
    """
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for answer in FIELDS:
        try:
            answers[answer.name] = parse_staff_answer(answer, raw.get(answer.name), answers)
        except InvalidAnswer as exc:
            errors[answer.name] = exc.staff_message
    if errors:
        raise AnswersError(errors)
    return to_registration_answers(answers)


def to_registration_answers(answers: Mapping[str, Any]) -> RegistrationAnswers:
    """The answers as the registration writes them; raises `KeyError`/`ValueError` for a missing or ill-typed one."""
    national_id = answers[NATIONAL_ID]
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
