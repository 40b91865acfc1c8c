"""GSM 03.38 and UCS-2: which alphabet a text needs, how long it is, and how many SMS parts it costs.

The same alphabet decides whether a USSD screen is safe to show: a character outside GSM 03.38 shows as a box on
a feature phone, or makes the network drop the screen.
"""

from __future__ import annotations

from enum import StrEnum

from models.gsm import GSM7_BASIC, GSM7_EXTENDED

GSM7_SINGLE_PART = 160
GSM7_MULTI_PART = 153  # a concatenation header takes 7 septets from each part
UCS2_SINGLE_PART = 70
UCS2_MULTI_PART = 67
# Characters above the Basic Multilingual Plane (emoji) take two UTF-16 code units: a surrogate pair.
BMP_LAST = 0xFFFF


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


def non_gsm_characters(text: str) -> list[str]:
    """Characters of `text` outside GSM 03.38, in order of first appearance."""
    seen: dict[str, None] = {}
    for char in text:
        if char not in GSM7_BASIC and char not in GSM7_EXTENDED:
            seen.setdefault(char)
    return list(seen)


def is_gsm7(text: str) -> bool:
    return not non_gsm_characters(text)


def encoding_for(text: str) -> Encoding:
    return Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2


def _gsm7_width(char: str) -> int:
    return 2 if char in GSM7_EXTENDED else 1


def _ucs2_width(char: str) -> int:
    return 2 if ord(char) > BMP_LAST else 1


def gsm7_length(text: str) -> int:
    """Length in septets: extension characters count twice. Only meaningful for GSM-7 texts."""
    return sum(_gsm7_width(char) for char in text)


def ucs2_length(text: str) -> int:
    """Length in UTF-16 code units: characters outside the basic plane (emoji) count twice."""
    return len(text.encode("utf-16-le")) // 2


def sms_length(text: str) -> int:
    return gsm7_length(text) if is_gsm7(text) else ucs2_length(text)


def sms_parts(text: str) -> int:
    """Number of SMS parts the provider bills for `text` (0 for an empty text).

    A multi-part text is packed character by character rather than divided by the part size: a phone cannot join
    an escape septet and its character, or the two halves of a UTF-16 surrogate pair (an emoji), when they land in
    different parts, so encoders never split them and such a character at a boundary moves whole to the next part.
    Dividing would undercount those texts by one part, and the cost estimate with them.
    """
    if not text:
        return 0
    if is_gsm7(text):
        width, single, multi = _gsm7_width, GSM7_SINGLE_PART, GSM7_MULTI_PART
    else:
        width, single, multi = _ucs2_width, UCS2_SINGLE_PART, UCS2_MULTI_PART
    if sum(width(char) for char in text) <= single:
        return 1
    parts, used = 1, 0
    for char in text:
        size = width(char)
        if used + size > multi:
            parts, used = parts + 1, 0
        used += size
    return parts
