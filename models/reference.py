"""Registration references: digits only, with a Damm check digit.

A returnee reads their reference out over a phone or types it on a keypad. The Damm algorithm catches every
single wrong digit and every swap of two neighbouring digits, the two mistakes people make most.
"""

from __future__ import annotations

import secrets

# Digits before the check digit: 10 million references, far more than the programme will register.
REFERENCE_BODY_DIGITS = 7

_DAMM_TABLE = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm_check_digit(digits: str) -> str:
    interim = 0
    for digit in digits:
        interim = _DAMM_TABLE[interim][int(digit)]
    return str(interim)


def is_valid_reference(text: str) -> bool:
    """True when `text` is a well-formed reference whose check digit matches."""
    text = text.strip()
    return len(text) == REFERENCE_BODY_DIGITS + 1 and text.isdigit() and damm_check_digit(text) == "0"


def new_reference() -> str:
    """A random reference; the first digit is never 0 so that it survives spreadsheets."""
    body = str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(REFERENCE_BODY_DIGITS - 1))
    return body + damm_check_digit(body)
