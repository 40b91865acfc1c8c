"""The USSD screen texts: one TOML catalogue per language under menus/texts/, loaded once per process."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from notifications.sms.texts import Catalogue

MENU_TEXTS_DIR = Path(__file__).resolve().parent / "texts"


@cache
def menu_catalogue() -> Catalogue:
    """The screen texts, read from disk on first use only: a USSD hop must not parse TOML."""
    return Catalogue(MENU_TEXTS_DIR)
