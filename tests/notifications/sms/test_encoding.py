"""SMS part counting and the GSM 03.38 alphabet: the numbers a cost estimate and a USSD screen depend on."""

from __future__ import annotations

import pytest

from notifications.sms.encoding import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    Encoding,
    encoding_for,
    gsm7_length,
    is_gsm7,
    non_gsm_characters,
    sms_length,
    sms_parts,
    ucs2_length,
)

# GSM 03.38 default alphabet, written out row by row from the standard's table (0x00-0x7F), as an independent
# check of the module's set. 0x1B is the escape to the extension table, not a character.
GSM_0338_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
UCS2_CHAR = "ā"  # Latin small a with macron: outside GSM 03.38, inside the basic plane
EMOJI = "😀"


def test_gsm_alphabet_matches_the_standard_table():
    assert len(GSM_0338_TABLE) == 128
    assert set(GSM_0338_TABLE) - {"\x1b"} == GSM7_BASIC
    assert set("^{}\\[~]|€\f") == GSM7_EXTENDED


@pytest.mark.parametrize(
    ("length", "parts"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_parts(length, parts):
    text = "a" * length
    assert encoding_for(text) is Encoding.GSM7
    assert sms_parts(text) == parts


@pytest.mark.parametrize(
    ("length", "parts"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_parts(length, parts):
    text = UCS2_CHAR * length
    assert encoding_for(text) is Encoding.UCS2
    assert sms_parts(text) == parts


def test_empty_text_costs_nothing():
    assert sms_parts("") == 0
    assert sms_length("") == 0
    assert is_gsm7("")


@pytest.mark.parametrize("char", sorted(GSM7_EXTENDED - {"\f"}))
def test_extension_characters_count_twice(char):
    assert is_gsm7(char * 80)
    assert gsm7_length(char * 80) == 160
    assert sms_parts(char * 80) == 1
    assert sms_parts(char * 81) == 2


def test_euro_sign_keeps_a_text_in_gsm7():
    assert sms_parts("€" * 80) == 1
    assert sms_parts("€" * 81) == 2
    assert sms_length("Pay M100 or €10") == 16


@pytest.mark.parametrize("char", ["Ç", "é", "É", "ñ", "Ü", "à", "ß", "Δ", "@", "£", "\n"])
def test_characters_inside_gsm_03_38(char):
    assert is_gsm7(f"Dumela {char}")
    assert non_gsm_characters(f"Dumela {char}") == []


@pytest.mark.parametrize(
    "char",
    [
        "ç",  # only the capital Ç is in the basic table
        "ā",
        "’",  # the curly apostrophe word processors put in "Mohale’s Hoek"
        "“",
        "\u00a0",  # no-break space
        "ê",
        EMOJI,
    ],
)
def test_characters_outside_gsm_03_38_force_ucs2(char):
    text = f"Mohale's Hoek {char}"
    assert not is_gsm7(text)
    assert encoding_for(text) is Encoding.UCS2
    assert non_gsm_characters(text) == [char]
    assert sms_length(text) == ucs2_length(text)


def test_non_gsm_characters_are_listed_once_in_order():
    assert non_gsm_characters("ā’ā ok ’ç") == ["ā", "’", "ç"]


def test_emoji_counts_two_utf16_units():
    assert ucs2_length(EMOJI) == 2
    assert sms_length("a" + EMOJI) == 3
    assert sms_parts(EMOJI * 35) == 1
    assert sms_parts(EMOJI * 36) == 2


def test_one_curly_apostrophe_halves_the_room():
    text = "a" * 159 + "’"
    assert sms_length(text) == 160
    assert sms_parts(text) == 3  # 160 UCS-2 units: 67 + 67 + 26


def test_escape_pair_is_never_split_across_parts():
    # 152 septets, then a 2-septet "€" that cannot straddle the 153-septet boundary, so it starts part two.
    text = "a" * 152 + "€" + "a" * 152
    assert gsm7_length(text) == 306
    assert sms_parts(text) == 3
    assert sms_parts("a" * 151 + "€" + "a" * 153) == 2  # the pair fills part one exactly


def test_surrogate_pair_is_never_split_across_parts():
    text = "a" * 66 + EMOJI + "ā" * 66
    assert ucs2_length(text) == 134
    assert sms_parts(text) == 3
    assert sms_parts("a" * 65 + EMOJI + "ā" * 67) == 2
