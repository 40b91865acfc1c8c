"""Phone numbers: one normal form (E.164) for storage, and a masked form for logs and lists."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

# Numbers without a country code are read as Lesotho numbers.
DEFAULT_REGION = "LS"
# Regions whose mobile numbers the programme serves: Lesotho, and South African SIMs many returnees still carry.
SERVED_REGIONS = frozenset({"LS", "ZA"})
_MOBILE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
# Normal forms remembered per process. A caller sends the same number on every hop of a session, and parsing it
# with `phonenumbers` costs more than the rest of the webhook's input checks; refused numbers are not remembered.
NORMALIZE_CACHE_SIZE = 8192


class PhoneNumberError(ValueError):
    """The text is not a phone number at all."""


class UnservedNumberError(PhoneNumberError):
    """A real number, but not a Lesotho or South African mobile."""


@lru_cache(maxsize=NORMALIZE_CACHE_SIZE)
def normalize_phone(raw: str) -> str:
    """E.164 for a Lesotho or South African mobile number; raises `PhoneNumberError` otherwise (memoised)."""
    try:
        number = phonenumbers.parse(raw.strip(), DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise PhoneNumberError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneNumberError("not a valid phone number")
    region = phonenumbers.region_code_for_number(number)
    if region not in SERVED_REGIONS or phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise UnservedNumberError("only Lesotho and South African mobile numbers are served")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(phone: str | None) -> str:
    """`+26658000001` -> `+266****0001`: enough to tell numbers apart in a log, not enough to call one."""
    if not phone:
        return "-"
    if len(phone) <= 8:
        return "*" * len(phone)
    return f"{phone[:4]}{'*' * (len(phone) - 8)}{phone[-4:]}"


def mask_national_id(national_id: str | None) -> str:
    """Show only the last three characters of a national ID."""
    if not national_id:
        return "-"
    return "*" * max(len(national_id) - 3, 0) + national_id[-3:]
