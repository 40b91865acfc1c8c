"""Re-encrypting national IDs under the newest key (`flask --app wsgi data rotate-key`), while the gateway runs.

During a rotation `DATA_ENCRYPTION_KEY` lists the new key first and the old one after it: every process reads both
and writes with the new one, so the gateway keeps working while this walks the table. It rewrites rows in small
batches, each in its own short transaction, and a row is only replaced if it still holds the token that was read
(a registration or correction in between wins). When it reports nothing left under an old key, the old key can be
removed from the setting. The keyed hashes do not change (their key is not rotated).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, Text, bindparam, select, type_coerce, update

from models.crypto import DataKeys
from models.db import Database
from models.held import HeldRegistration
from models.people import Beneficiary

# Rows rewritten per transaction: short enough that no registration waits on a lock for long.
ROTATION_BATCH = 200
# Every table that keeps a national ID encrypted, in its `national_id_cipher` column.
ENCRYPTED_ID_TABLES: tuple[Table, ...] = (Beneficiary.__table__, HeldRegistration.__table__)


@dataclass(frozen=True)
class RotationResult:
    rewritten: int  # rows now under the newest key that were not before
    current: int  # rows that already were


def rotate_national_ids(database: Database, keys: DataKeys, batch: int = ROTATION_BATCH) -> RotationResult:
    """Re-encrypt every stored national ID, in every table that keeps one, under `keys.newest`; rows already under
    it are left alone."""
    rewritten = current = 0
    for table in ENCRYPTED_ID_TABLES:
        result = _rotate_table(database, keys, table, batch)
        rewritten += result.rewritten
        current += result.current
    return RotationResult(rewritten, current)


def _rotate_table(database: Database, keys: DataKeys, table: Table, batch: int) -> RotationResult:
    # The stored token as text, past the column type that would decrypt it.
    stored_token = type_coerce(table.c.national_id_cipher, Text)
    read = (
        select(table.c.id, stored_token)
        .where(stored_token.is_not(None), table.c.id > bindparam("after"))
        .order_by(table.c.id)
        .limit(batch)
    )
    write = (
        update(table)
        .where(table.c.id == bindparam("row_id"), stored_token == type_coerce(bindparam("old"), Text))
        .values({table.c.national_id_cipher: type_coerce(bindparam("new"), Text)})
    )
    rewritten = current = 0
    after = 0
    while True:
        with database.connection() as connection:
            rows = connection.execute(read, {"after": after}).all()
            if not rows:
                return RotationResult(rewritten, current)
            changes = [
                {"row_id": row_id, "old": token, "new": keys.reencrypt(token)}
                for row_id, token in rows
                if not keys.is_newest(token)
            ]
            if changes:
                connection.execute(write, changes)
        rewritten += len(changes)
        current += len(rows) - len(changes)
        after = rows[-1][0]
