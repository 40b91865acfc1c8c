"""Re-encrypting national IDs under the newest key (`flask --app wsgi data rotate-key`), while the gateway runs.

During a rotation `DATA_ENCRYPTION_KEY` lists the new key first and the old one after it: every process reads both
and writes with the new one, so the gateway keeps working while this walks the table. It rewrites rows in small
batches, each in its own short transaction, and a row is only replaced if it still holds the token that was read
(a registration or correction in between wins). When it reports nothing left under an old key, the old key can be
removed from the setting. The keyed hashes do not change (their key is not rotated).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Text, bindparam, select, type_coerce, update

from models.crypto import DataKeys
from models.db import Database
from models.people import Beneficiary

# Rows rewritten per transaction: short enough that no registration waits on a lock for long.
ROTATION_BATCH = 200

_beneficiaries = Beneficiary.__table__
# The stored token as text, past the column type that would decrypt it.
_stored_token = type_coerce(_beneficiaries.c.national_id_cipher, Text)


@dataclass(frozen=True)
class RotationResult:
    rewritten: int  # rows now under the newest key that were not before
    current: int  # rows that already were


def rotate_national_ids(database: Database, keys: DataKeys, batch: int = ROTATION_BATCH) -> RotationResult:
    """Re-encrypt every stored national ID under `keys.newest`; rows already under it are left alone."""
    read = (
        select(_beneficiaries.c.id, _stored_token)
        .where(_stored_token.is_not(None), _beneficiaries.c.id > bindparam("after"))
        .order_by(_beneficiaries.c.id)
        .limit(batch)
    )
    write = (
        update(_beneficiaries)
        .where(_beneficiaries.c.id == bindparam("row_id"), _stored_token == type_coerce(bindparam("old"), Text))
        .values({_beneficiaries.c.national_id_cipher: type_coerce(bindparam("new"), Text)})
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
