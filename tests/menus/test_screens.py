"""Every screen of the tree, in both languages and at both network widths: short enough, GSM 03.38 only.

Screens are rendered directly (`UssdEngine.preview`) with the longest arguments they can get, and with every
reason that can be shown above them, so that no path through the menu is needed to reach them.
"""

from __future__ import annotations

import string
from itertools import product

import pytest

from config import load_settings
from menus import UssdEngine
from menus.actions import DISPLAY_NAME_MAX_CHARS
from menus.checkin import NAME_MAX_CHARS as CHECKIN_NAME_MAX_CHARS
from menus.hop import CONTINUE_PREFIX, END_PREFIX, Hop, UssdRequest
from menus.registration import QUESTIONS
from menus.session import Draft, Frame, SessionState
from menus.texts import MENU_TEXTS_DIR, menu_catalogue
from menus.tree import CALLBACK_TOPICS, COVID_TOPICS, END_TEXTS, SCREENS
from models.checkins import (
    MAX_OPTION_CHARS,
    MAX_OPTIONS,
    MAX_QUESTION_CHARS,
    MAX_TITLE_CHARS,
    NUMBER_HIGHEST,
    NUMBER_LOWEST,
    QuestionKind,
)
from models.grants import GrantStatus, PaymentChannel
from models.people import DISTRICTS, Language
from notifications.sms.encoding import gsm7_length, is_gsm7, non_gsm_characters

LANGUAGES = [Language.ENGLISH, Language.SESOTHO]
WIDTHS = [182, 160]
LONGEST_DISTRICT = max(DISTRICTS, key=len)

# The longest answers validation lets through (registration) and the longest the database can hold (details).
LONGEST_ANSWERS = {
    "full_name": "Mamohapi Lineo-Mathabo " + "A" * 37,
    "sex": "female",
    "year_of_birth": 1985,
    "district": LONGEST_DISTRICT,
    "village": "Ha Mokhethoa Lekhotla la Sechaba la Mahlatsa " + "B" * 15,
    "returned_from": "south_africa",
    "year_of_return": 2020,
    "national_id": "A" * 20,
    "household_size": 30,
    "main_need": "business",
    "consent": True,
}
ONE_WORD_NAME = {**LONGEST_ANSWERS, "full_name": "A" * 60, "village": "B" * 60}
# The widest limit of people on one phone a deployment might set (MAX_BENEFICIARIES_PER_PHONE).
WIDEST_LIMIT = 99


def _person(number: int, first_name: str = "W" * DISPLAY_NAME_MAX_CHARS) -> dict:
    """One person of a household phone as the menu keeps them in the session, with the longest values."""
    return {
        "reference": f"1234567{number}",
        "first_name": first_name,
        "full_name": f"{first_name} " + "N" * 99,
        "district": LONGEST_DISTRICT,
        "status": GrantStatus.PAYMENT_SCHEDULED,
        "amount": "M1,000,000.00",
        "channel": PaymentChannel.ECOCASH,
    }


# A household phone: the default four people, a larger deployment's eight, and two who share a first name.
HOUSEHOLDS = [
    [_person(number) for number in range(4)],
    [_person(number, first_name=f"{'W' * (DISPLAY_NAME_MAX_CHARS - 1)}{number}") for number in range(8)],
    [_person(0, "Thabo"), _person(1, "Thabo"), _person(2, "Lineo")],
]

# Every screen with the arguments it can be shown with.
SAMPLES: dict[str, list[dict]] = {
    "language_first": [{}],
    "main": [{}],
    "language": [{}],
    "resume": [{}],
    "question": [
        {"field": question.field, **household} for question in QUESTIONS for household in ({}, {"household": True})
    ],
    "consent": [{}, {"household": True}],
    "confirm": [{}],
    "details": [
        {"reference": "12345678", "full_name": "N" * 120, "district": LONGEST_DISTRICT, "status": status}
        for status in [*GrantStatus, None]
    ],
    "status": [
        {"reference": "12345678", "status": status, "amount": amount, "channel": channel}
        for status, amount, channel in product([*GrantStatus, None], ["M1,000,000.00", None], [*PaymentChannel, None])
    ],
    "not_registered": [{}],
    "register_whom": [{"people": people} for people in HOUSEHOLDS[:1]],
    "whose": [{"people": people, "purpose": purpose} for people in HOUSEHOLDS for purpose in ("status", "details")],
    "household_full": [{"limit": WIDEST_LIMIT}],
    "covid": [{}],
    "covid_topic": [{"topic": topic} for topic in COVID_TOPICS],
    "notice": [{"text": key} for key in ("covid.tips_sent", "covid.tips_already", "alerts.now_on", "alerts.now_off")],
    "alerts": [{"on": True}, {"on": False}],
    "contact": [{}],
    "callback_topic": [{}],
    "feedback": [{}],
    "erasure": [{}],
    # A check-in: the longest title, name and question texts staff may write, every kind of question.
    "checkin_intro": [
        {"invitation": 1, "first_name": "W" * CHECKIN_NAME_MAX_CHARS, "title": "T" * MAX_TITLE_CHARS, "count": 8}
    ],
    "checkin_question": [
        {
            "invitation": 1,
            "question": 1,
            "number": 8,
            "count": 8,
            "kind": kind,
            "text": "Q" * MAX_QUESTION_CHARS,
            "labels": ["O" * MAX_OPTION_CHARS] * (MAX_OPTIONS if kind == QuestionKind.CHOICE else 0),
            "low": NUMBER_LOWEST if kind == QuestionKind.NUMBER else None,
            "high": NUMBER_HIGHEST if kind == QuestionKind.NUMBER else None,
        }
        for kind in QuestionKind
    ],
}
# Every reason a screen can show above itself, with the widest parameters.
REASONS = [(None, {})] + [
    (
        key,
        {"first": 1926, "last": 2026}
        if key.startswith("error.year_")
        else {"low": NUMBER_LOWEST, "high": NUMBER_HIGHEST}
        if key == "error.checkin_number"
        else {},
    )
    for key in sorted(menu_catalogue().texts["en"])
    if key.startswith("error.")
]


def preview_engine(width: int) -> UssdEngine:
    """Rendering needs neither Redis nor the database."""
    return UssdEngine(settings=load_settings({}, app_env="test", ussd_max_chars=width), database=None, redis=None)


def test_every_screen_has_samples():
    assert set(SAMPLES) == set(SCREENS)


def test_every_choice_of_the_contract_is_on_its_screen():
    assert len(COVID_TOPICS) >= 5 and CALLBACK_TOPICS == ("grant", "registration", "other")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_screen_fits_the_width_and_the_gsm_alphabet(language, width):
    engine = preview_engine(width)
    rendered = 0
    for name, samples in SAMPLES.items():
        screen = SCREENS[name]
        for args, (reason, params), answers in product(samples, REASONS, [LONGEST_ANSWERS, ONE_WORD_NAME, {}]):
            frame = Frame(name, dict(args), error=reason, error_params=params)
            pages = engine.preview(frame, language, answers)
            for page in pages:
                body = CONTINUE_PREFIX + page
                assert gsm7_length(body) <= width, (name, args, reason, body)
                assert is_gsm7(body), (name, non_gsm_characters(body))
                if not screen.root:
                    assert page.endswith(engine.text("nav.back", language)), (name, page)
            for page in pages[:-1]:
                assert engine.text("nav.more", language) in page
            assert _squeeze(pages, engine, language) == _squeeze_lines(engine, frame, language, answers), name
            rendered += len(pages)
    assert rendered > 500


def _squeeze(pages: list[str], engine: UssdEngine, language: str) -> str:
    """The text of the pages without their footers and without white space: what paging must not lose."""
    footers = {engine.text("nav.more", language), engine.text("nav.back", language)}
    return "".join("".join(line.split()) for page in pages for line in page.split("\n") if line not in footers)


def _squeeze_lines(engine: UssdEngine, frame: Frame, language: str, answers: dict) -> str:
    hop = Hop(engine.menu, UssdRequest("preview", ""), SessionState(language=language, stack=[frame]), Draft(answers))
    lines = SCREENS[frame.screen].content(hop, frame)
    if frame.error:
        lines = [hop.t(frame.error, **frame.error_params), *lines]
    return "".join("".join(line.split()) for line in lines)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_end_text_fits_one_screen(language, width):
    engine = preview_engine(width)
    widest = {"first_name": "W" * DISPLAY_NAME_MAX_CHARS, "reference": "12345678", "limit": WIDEST_LIMIT}
    assert {"checkin.done", "checkin.declined", "checkin.already_done", "checkin.closed"} <= END_TEXTS
    for key in END_TEXTS:
        body = END_PREFIX + engine.text(key, language, **widest)
        assert gsm7_length(body) <= width, (key, body)
        assert is_gsm7(body)


def test_menu_catalogues_have_the_same_keys_and_placeholders():
    catalogue = menu_catalogue()
    english, sesotho = catalogue.texts["en"], catalogue.texts["st"]
    assert set(english) == set(sesotho)
    for key in english:
        assert _placeholders(english[key]) == _placeholders(sesotho[key]), key


def test_sms_catalogues_have_the_same_keys_and_placeholders():
    from notifications.sms.texts import sms_catalogue

    english, sesotho = sms_catalogue().texts["en"], sms_catalogue().texts["st"]
    assert set(english) == set(sesotho)
    for key in english:
        assert _placeholders(english[key]) == _placeholders(sesotho[key]), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_menu_catalogue_uses_only_gsm_characters(language):
    for key, text in menu_catalogue().texts[language].items():
        assert is_gsm7(text), (key, non_gsm_characters(text))
        assert not set(text) & set("\u2018\u2019\u201c\u201d\u2013\u2014"), key


def test_sesotho_is_a_real_translation_awaiting_review():
    catalogue = menu_catalogue()
    same = [key for key in catalogue.texts["en"] if catalogue.get(key, "en") == catalogue.get(key, "st")]
    # Only texts that are bilingual or names on purpose are the same in both languages.
    assert set(same) <= {
        "unavailable",
        "unserved",
        "language.first",
        "language.en",
        "language.st",
        "payment_channel.mpesa",
        "payment_channel.ecocash",
        "checkin.question",  # only placeholders: "{number}/{count}: {question}"
    }
    header = (MENU_TEXTS_DIR / "st.toml").read_text(encoding="utf-8").split("\n[", 1)[0]
    assert "native speaker" in header.lower()
    for term in (
        "Ingolise",
        "Boemo",
        "Puo",
        "Morao",
        "Lenane le leholo",
        "Tse ling",
        "Setereke",
        "Netefatsa",
        "Kea lumela",
        "Ha ke lumele",
        "Mosali",
        "Monna",
        "Kea leboha",
    ):
        assert any(term in text for text in catalogue.texts["st"].values()), term


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_texts_are_loaded_once_per_process(settings):
    assert menu_catalogue() is menu_catalogue()
    assert UssdEngine(settings=settings, database=None, redis=None).catalogue is menu_catalogue()
