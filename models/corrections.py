"""What staff may correct about a beneficiary, and how the audit entries of corrections keep personal values.

A correction's audit entry holds the old and new value of each field, so that a wrong correction can be undone.
A national ID is masked when the entry is written (the audit log is not encrypted, the ID is); names, villages and
phone numbers are kept, shown masked in the audit view (`masked_details`), and replaced by `[erased]` when the
person is erased (`erased_details`, from `notifications.casework.privacy`).
"""

from __future__ import annotations

from typing import Any

from models.phone import mask_national_id, mask_phone

# The fields officers correct, in the order of the registration form.
CORRECTABLE_FIELDS = (
    "full_name",
    "sex",
    "year_of_birth",
    "district",
    "village",
    "national_id",
    "household_size",
    "main_need",
)
CORRECTION_ACTION = "beneficiary.correct"
NUMBER_MOVE_ACTION = "beneficiary.number_move"
# Audit actions whose details hold a person's values, by the key they sit under.
PERSONAL_ACTIONS = frozenset({CORRECTION_ACTION, NUMBER_MOVE_ACTION})
# Fields that point at a person; the others (sex, district, ...) are the figures reports count.
PERSONAL_FIELDS = frozenset({"full_name", "village", "national_id"})
PHONE_DETAILS = ("old_phone", "new_phone")
# How a name or village reads in the audit view: its first letter and its length.
MASK = "*"
ERASED = "[erased]"


def audit_value(field: str, value: Any) -> Any:
    """A field's value as a correction's audit entry stores it: the national ID masked, the rest as it is."""
    if field == "national_id":
        return mask_national_id(value) if value else None
    return value


def _mask_text(value: Any) -> Any:
    if not isinstance(value, str) or not value or value == ERASED:
        return value
    return value[0] + MASK * (len(value) - 1)


def _rewrite(action: str, details: dict[str, Any], text, phone) -> dict[str, Any]:
    if action not in PERSONAL_ACTIONS:
        return details
    shown = dict(details)
    changes = details.get("changes")
    if isinstance(changes, dict):
        shown["changes"] = {
            field: {side: text(value) for side, value in pair.items()} if field in PERSONAL_FIELDS else pair
            for field, pair in changes.items()
        }
    for key in PHONE_DETAILS:
        if key in shown:
            shown[key] = phone(shown[key])
    return shown


def masked_details(action: str, details: dict[str, Any]) -> dict[str, Any]:
    """An entry's details as the audit view shows them: names and villages to their first letter, numbers masked."""
    return _rewrite(action, details, _mask_text, mask_phone)


def erased_details(action: str, details: dict[str, Any]) -> dict[str, Any]:
    """An entry's details once the person is erased: every personal value `[erased]`, the figures kept."""
    return _rewrite(action, details, lambda value: ERASED if value else value, lambda value: ERASED)
