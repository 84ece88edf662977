"""Counting rows per identifier key version and moving them to the active one.

The re-key works in short batches, each its own transaction, walking every table by primary
key: a batch reads a few hundred rows, opens each value with whatever version sealed it, seals
it again (and re-hashes an identifier) under the active version, and writes it back only if
the row still holds what was read (a row changed meanwhile is left for the next pass). Reads
go on during it: a ciphertext names its version, and searches hash under every version held.
Stopping at any point loses nothing; running again takes up what is left.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from hub.keyrotation.sealed import SealedColumn, sealed_columns
from hub.workers.retention import RetentionJob
from registry_core.crypto import IdentifierCipher, IdentifierDecryptionError
from registry_core.models import Identifier

log = logging.getLogger(__name__)

IDENTIFIER_HASHES = "identifiers.value_hash"
IDENTIFIER_CIPHERTEXTS = "identifiers.value_ciphertext"
DEFAULT_BATCH = 500


def _version_byte(column: Any, prefix: bytes) -> Any:
    return func.substr(column, len(prefix) + 1, 1)


def _sealed_where(spec: SealedColumn) -> ColumnElement[bool]:
    column = spec.table.c[spec.column]
    where: ColumnElement[bool] = column.is_not(None)
    if spec.prefix:
        where = where & (func.substr(column, 1, len(spec.prefix)) == spec.prefix)
    return where


def version_counts(session: Session, realm: str) -> dict[str, dict[int, int]]:
    """Rows per key version, by column (``identifiers.value_hash`` counts the look-up key)."""
    counts: dict[str, dict[int, int]] = {
        IDENTIFIER_HASHES: {
            int(v): int(n)
            for v, n in session.execute(
                select(Identifier.value_hash_version, func.count()).group_by(
                    Identifier.value_hash_version
                )
            )
        }
    }
    byte = _version_byte(Identifier.value_ciphertext, b"")
    counts[IDENTIFIER_CIPHERTEXTS] = _byte_counts(
        session.execute(select(byte, func.count()).group_by(byte))
    )
    for spec in sealed_columns(realm):
        byte = _version_byte(spec.table.c[spec.column], spec.prefix)
        rows = session.execute(select(byte, func.count()).where(_sealed_where(spec)).group_by(byte))
        counts[spec.name] = _byte_counts(rows)
    return counts


def _byte_counts(rows: Any) -> dict[int, int]:
    found: Counter[int] = Counter()
    for first, n in rows:
        found[bytes(first)[0] if first else 0] += int(n)
    return dict(found)


def rows_using(counts: dict[str, dict[int, int]], version: int) -> int:
    """How many rows still depend on ``version`` (over every column)."""
    return sum(per.get(version, 0) for per in counts.values())


@dataclass
class RekeyProgress:
    """What a re-key pass did: rows moved and rows left (changed meanwhile or unreadable)."""

    moved: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def total_moved(self) -> int:
        return sum(self.moved.values())


def _identifier_batch(
    session: Session, cipher: IdentifierCipher, after: Any, batch: int, progress: RekeyProgress
) -> tuple[Any, int]:
    active = cipher.active_version
    behind = (Identifier.value_hash_version != active) | (
        _version_byte(Identifier.value_ciphertext, b"") != bytes([active])
    )
    query = select(
        Identifier.id, Identifier.system, Identifier.value_hash, Identifier.value_ciphertext
    ).where(behind)
    if after is not None:
        query = query.where(Identifier.id > after)
    rows = session.execute(query.order_by(Identifier.id).limit(batch)).all()
    changes: list[dict[str, Any]] = []
    for row in rows:
        try:
            value = cipher.decrypt(row.system, bytes(row.value_ciphertext))
        except IdentifierDecryptionError:
            progress.skipped[IDENTIFIER_CIPHERTEXTS] += 1
            continue
        version, digest = cipher.active_lookup(row.system, value)
        changes.append(
            {
                "row_id": row.id,
                "old_hash": row.value_hash,
                "old_blob": row.value_ciphertext,
                "system": row.system,
                "new_hash": digest,
                "new_version": version,
                "new_blob": cipher.encrypt(row.system, value),
            }
        )
    # A value written twice, once under each version, would collide on (system, value_hash):
    # such a row is left for an operator (counted as skipped), never overwritten.
    taken = {
        (system, digest): row_id
        for row_id, system, digest in session.execute(
            select(Identifier.id, Identifier.system, Identifier.value_hash).where(
                Identifier.value_hash.in_([c["new_hash"] for c in changes])
            )
        )
    }
    fresh = [
        c for c in changes if taken.get((c["system"], c["new_hash"]), c["row_id"]) == c["row_id"]
    ]
    progress.skipped[IDENTIFIER_HASHES] += len(changes) - len(fresh)
    if fresh:
        table = cast(Table, Identifier.__table__)
        statement = (
            update(table)
            .where(
                table.c.id == bindparam("row_id"),
                table.c.value_hash == bindparam("old_hash"),
                table.c.value_ciphertext == bindparam("old_blob"),
            )
            .values(
                value_hash=bindparam("new_hash"),
                value_hash_version=bindparam("new_version"),
                value_ciphertext=bindparam("new_blob"),
            )
        )
        # One executemany; a row changed since it was read matches nothing and is skipped.
        done = session.connection().execute(statement, fresh).rowcount
        progress.moved[IDENTIFIER_CIPHERTEXTS] += done
        progress.skipped[IDENTIFIER_CIPHERTEXTS] += len(fresh) - done
    return (rows[-1].id if len(rows) == batch else None), len(rows)


def _sealed_batch(
    session: Session,
    cipher: IdentifierCipher,
    spec: SealedColumn,
    after: Any,
    batch: int,
    progress: RekeyProgress,
) -> tuple[Any, int]:
    table, column, key = spec.table, spec.table.c[spec.column], spec.table.c[spec.key]
    behind = _version_byte(column, spec.prefix) != bytes([cipher.active_version])
    query = select(key, column).where(_sealed_where(spec), behind)
    if after is not None:
        query = query.where(key > after)
    rows = session.execute(query.order_by(key).limit(batch)).all()
    changes: list[dict[str, Any]] = []
    for row in rows:
        old = bytes(row[1])
        context = spec.context({spec.key: row[0], spec.column: old})
        try:
            fresh = spec.prefix + cipher.reseal(context, old[len(spec.prefix) :])
        except IdentifierDecryptionError:
            progress.skipped[spec.name] += 1
            continue
        changes.append({"row_key": row[0], "old_blob": old, "new_blob": fresh})
    if changes:
        statement = (
            update(table)
            .where(key == bindparam("row_key"), column == bindparam("old_blob"))
            .values({spec.column: bindparam("new_blob")})
        )
        done = session.connection().execute(statement, changes).rowcount
        progress.moved[spec.name] += done
        progress.skipped[spec.name] += len(changes) - done
    return (rows[-1][0] if len(rows) == batch else None), len(rows)


# A step takes the last key seen (None: start) and returns the next one (None: done) and how
# many rows it read.
Step = Callable[[Session, Any], tuple[Any, int]]


def _steps(
    cipher: IdentifierCipher, realm: str, batch: int, progress: RekeyProgress
) -> Iterator[tuple[str, Step]]:
    def identifiers(session: Session, after: Any) -> tuple[Any, int]:
        return _identifier_batch(session, cipher, after, batch, progress)

    yield IDENTIFIER_CIPHERTEXTS, identifiers
    for spec in sealed_columns(realm):

        def sealed(session: Session, after: Any, spec: SealedColumn = spec) -> tuple[Any, int]:
            return _sealed_batch(session, cipher, spec, after, batch, progress)

        yield spec.name, sealed


def rekey(
    sessions: sessionmaker[Session],
    cipher: IdentifierCipher,
    realm: str,
    *,
    batch: int = DEFAULT_BATCH,
    max_batches: int | None = None,
    on_batch: Callable[[str, RekeyProgress], None] | None = None,
) -> RekeyProgress:
    """Move every row to the active key version, one transaction per batch of ``batch`` rows
    (at most ``max_batches`` batches that found rows; None: until done).
    ``on_batch(column, progress)`` is called after each committed batch that found rows (the
    CLI prints progress with it)."""
    progress = RekeyProgress()
    done_batches = 0
    for name, step in _steps(cipher, realm, batch, progress):
        after: Any = None
        while True:
            if max_batches is not None and done_batches >= max_batches:
                return progress
            with sessions.begin() as session:
                after, seen = step(session, after)
            if seen:
                done_batches += 1
                if on_batch is not None:
                    on_batch(name, progress)
            if after is None:
                break
    return progress


def rekey_job(
    cipher: Callable[[], IdentifierCipher],
    realm: str,
    batch: int = DEFAULT_BATCH,
    batches: int = 4,
) -> RetentionJob:
    """A share of the re-key for the hub's retention runner: each round moves up to
    ``batches`` batches of rows still under an older key version (nothing once all are on
    the active one), each batch in its own transaction. Its result is the rows moved.
    ``cipher`` is asked on first use (building it reads the key file)."""
    held: list[IdentifierCipher] = []

    def run(session: Session) -> int:
        if not held:
            held.append(cipher())
        held[0].refresh(force=True)  # one stat of the key file per round
        if len(held[0].versions) == 1:
            return 0  # no rotation under way: nothing can be behind
        factory = sessionmaker(bind=session.get_bind())
        return rekey(factory, held[0], realm, batch=batch, max_batches=batches).total_moved

    return RetentionJob("identifier_rekey", run)
