"""Text catalogues: one TOML file per language that a translator edits without touching code.

Both the USSD screens (`menus/texts/`) and the SMS texts (`notifications/sms/texts/`) are catalogues of this kind: a
flat table of keys, English in `en.toml` and Sesotho in `st.toml`, with `{placeholders}` filled at render time.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from models.people import Language

SMS_TEXTS_DIR = Path(__file__).resolve().parent / "texts"


class Catalogue:
    """All texts of one catalogue directory, by language then key."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.texts: dict[str, dict[str, str]] = {}
        for language in Language:
            with open(directory / f"{language}.toml", "rb") as handle:
                self.texts[language] = _flatten(tomllib.load(handle))

    def key_set(self, language: str = Language.ENGLISH) -> set[str]:
        return set(self.texts[language])

    def get(self, key: str, language: str, **params) -> str:
        """The text for `key` in `language` (English when the language is unknown), with placeholders filled."""
        table = self.texts.get(language) or self.texts[Language.ENGLISH]
        text = table[key]
        return text.format(**params) if params else text


def _flatten(table: dict, prefix: str = "") -> dict[str, str]:
    """`[main] title = ...` becomes the key `main.title`."""
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


_sms_catalogue: Catalogue | None = None


def sms_catalogue() -> Catalogue:
    """The SMS texts, loaded once per process."""
    global _sms_catalogue
    if _sms_catalogue is None:
        _sms_catalogue = Catalogue(SMS_TEXTS_DIR)
    return _sms_catalogue
