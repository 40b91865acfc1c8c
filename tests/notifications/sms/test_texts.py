"""The SMS catalogue: both languages alike, GSM-7 only, and a known number of parts for every text."""

from __future__ import annotations

import string

import pytest

from models.people import Language
from notifications.sms.encoding import is_gsm7, non_gsm_characters, sms_parts
from notifications.sms.texts import sms_catalogue

# The longest values the placeholders take in practice: a long first name, a reference, a large amount.
WORST_CASE = {
    "first_name": "Mamokhethi-Nthabiseng",
    "reference": "99999999",
    "amount": "M99,999.00",
    "channel": "chelete ea letsoho",
    "reason": "the household already receives support from another programme",
    # A check-in: the longest title and question staff may write (models.checkins).
    "title": "T" * 60,
    "count": 8,
    "closes": "2026-12-31",
    "number": 8,
    "question": "Q" * 100,
    "low": 1,
    "high": 97,
    "skip": "99",
}
# Parts each text costs at worst, in English and Sesotho: a change that adds a part changes the programme's bill.
EXPECTED_PARTS = {
    "registration_confirmation": (2, 2),
    "covid_tips": (2, 2),
    "grant.approved": (1, 1),
    "grant.not_eligible": (2, 2),
    "grant.payment_scheduled": (1, 1),
    "grant.paid": (1, 1),
    "grant.payment_failed": (1, 1),
    "keyword.stop": (1, 1),
    "keyword.start": (1, 1),
    "keyword.help": (1, 2),
    "keyword.delete_requested": (1, 1),
    "keyword.delete_already_open": (1, 1),
    "keyword.delete_not_registered": (1, 1),
    "erasure_notice": (1, 1),
    "number_moved.old": (1, 1),
    "number_moved.new": (1, 1),
    **{f"covid_series.m{n:02d}": (1, 1) for n in range(1, 9)},
    # A check-in's invitation and reminder go to the whole audience: two parts each at the longest title.
    "checkin.invitation": (2, 2),
    "checkin.reminder": (2, 2),
    **{
        f"checkin.{key}": (1, 1)
        for key in (
            "question",
            "number_hint",
            "yes",
            "no",
            "prefer_not",
            "stop_hint",
            "invalid_choice",
            "invalid_number",
            "done",
            "declined",
            "already_done",
            "closed",
        )
    },
}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys_and_placeholders():
    catalogue = sms_catalogue()
    assert catalogue.key_set(Language.ENGLISH) == catalogue.key_set(Language.SESOTHO)
    for key in catalogue.key_set():
        assert placeholders(catalogue.texts["en"][key]) == placeholders(catalogue.texts["st"][key]), key


@pytest.mark.parametrize("language", list(Language))
def test_every_text_is_gsm7(language):
    for key, text in sms_catalogue().texts[language].items():
        assert is_gsm7(text), f"{language} {key}: {non_gsm_characters(text)}"


@pytest.mark.parametrize("language", list(Language))
def test_every_text_costs_a_known_number_of_parts(language):
    catalogue = sms_catalogue()
    index = list(Language).index(language)
    for key, expected in EXPECTED_PARTS.items():
        rendered = catalogue.get(key, language, **WORST_CASE)
        assert sms_parts(rendered) == expected[index], f"{language} {key}: {len(rendered)} characters"
        assert is_gsm7(rendered)
    assert set(EXPECTED_PARTS) | {k for k in catalogue.key_set() if k.startswith("channel.")} == catalogue.key_set()
