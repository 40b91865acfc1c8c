"""Personal data encrypted at rest: national IDs as authenticated ciphertext, with a keyed hash beside them.

A national ID is stored twice, neither readable: a Fernet token (AES-128-CBC with HMAC-SHA256, from
`cryptography`), which only the keys in `DATA_ENCRYPTION_KEY` open, and an HMAC-SHA256 under `DATA_HASH_KEY`,
which answers "is this exact ID here?" for the search box and backs the unique constraint. Fernet is randomised
(the same ID gives a new token every time), so it cannot be searched or made unique; the hash can, and without the
hash key nobody can test guesses against it (a nine-digit ID would fall to a plain hash in seconds).

`DATA_ENCRYPTION_KEY` is a comma-separated list, newest first: the newest encrypts, all of them decrypt, which is
what lets `flask --app wsgi data rotate-key` re-encrypt row by row while the gateway keeps running. The hash key
never changes with a rotation (see docs/data-protection.md): a new hash key would make every stored hash miss.

The keys of this process are installed once from the settings (`install_data_keys`, by the app factory's services,
as logging is configured); a process that installed none (a worker, a migration) reads the same settings from the
environment on first use, so that every process agrees without each caller passing keys around. In development and
tests, an unset key means a fixed development key derived below: it protects nothing and production refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

from config.settings import DEVELOPMENT_ENCRYPTION_KEY, DEVELOPMENT_HASH_KEY, Settings, load_settings


class DataKeyError(ValueError):
    """A key setting that cannot be used, or a ciphertext that none of the configured keys opens."""


def parse_key_list(raw: str) -> tuple[str, ...]:
    """The keys of a `DATA_ENCRYPTION_KEY` value, newest first; raises `DataKeyError` for one Fernet refuses."""
    keys = tuple(part.strip() for part in raw.split(",") if part.strip())
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise DataKeyError(
                "each key must be 32 random bytes in URL-safe base64, as Fernet.generate_key() prints"
            ) from None
    return keys


@dataclass(frozen=True)
class DataKeys:
    """The encryption keys (newest first) and the hash key of one process."""

    encryption_keys: tuple[str, ...]
    hash_key: str

    @property
    def newest(self) -> str:
        return self.encryption_keys[0]

    @property
    def _fernet(self) -> MultiFernet:
        return _multi_fernet(self.encryption_keys)

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise DataKeyError("no configured DATA_ENCRYPTION_KEY opens this value") from None

    def reencrypt(self, token: str) -> str:
        """The same value under the newest key (`MultiFernet.rotate`); unchanged in meaning, new in form."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise DataKeyError("no configured DATA_ENCRYPTION_KEY opens this value") from None

    def is_newest(self, token: str) -> bool:
        """Whether the newest key alone opens `token` (a row a rotation has already done)."""
        try:
            _multi_fernet((self.newest,)).decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def digest(self, plain: str) -> str:
        """The keyed hash of `plain` (hex HMAC-SHA256), for exact search and uniqueness."""
        return hmac.new(_key_bytes(self.hash_key), plain.encode(), hashlib.sha256).hexdigest()


@cache
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


@cache
def _key_bytes(key: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(key.encode())
    except (ValueError, TypeError):
        raise DataKeyError("DATA_HASH_KEY must be URL-safe base64, as Fernet.generate_key() prints") from None
    if len(raw) < hashlib.sha256().digest_size:
        raise DataKeyError("DATA_HASH_KEY must hold at least 32 random bytes")
    return raw


@cache
def data_keys(encryption_setting: str, hash_setting: str) -> DataKeys:
    """The keys a pair of settings names; empty settings mean the development keys (production refuses them)."""
    keys = parse_key_list(encryption_setting) or (DEVELOPMENT_ENCRYPTION_KEY,)
    hash_key = hash_setting.strip() or DEVELOPMENT_HASH_KEY
    _key_bytes(hash_key)
    return DataKeys(keys, hash_key)


def keys_of(settings: Settings) -> DataKeys:
    return data_keys(settings.data_encryption_key, settings.data_hash_key)


_installed: list[DataKeys] = []


def install_data_keys(keys: DataKeys) -> None:
    """Make `keys` this process's keys (the app's services do it at start-up)."""
    _installed[:] = [keys]


def current_keys() -> DataKeys:
    """This process's keys: the installed ones, else those the environment's settings name."""
    if not _installed:
        _installed.append(keys_of(load_settings()))
    return _installed[0]


def national_id_digest(national_id: str | None) -> str | None:
    """The keyed hash stored beside a national ID (None for none)."""
    return current_keys().digest(national_id) if national_id else None


class EncryptedText(TypeDecorator):
    """A text column stored as a Fernet token under this process's newest key, read back as plain text.

    Writing through the ORM or a Core statement on the table encrypts; reading decrypts. The column can be compared
    only through its hash column, never by value.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else current_keys().encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else current_keys().decrypt(value)
