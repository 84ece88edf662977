"""Benchmark: re-keying stored identifiers after ``srhub keys rotate``, next to a read-only
pass over the same rows.

Why this baseline: the re-key must read every identifier, decrypt it, re-encrypt and re-hash
it and write it back, one short transaction per batch. The read-only pass (same batches,
same decrypt, no writes) is what a re-key cannot go below; the gap is the cost of the writes
and the per-row optimistic update. The look-up figures show what a search pays while two key
versions are held (two hashes searched instead of one).

    python -m bench.key_rotation [--households 2000] [--batch 500] [--database-url URL]

Without ``--database-url`` a new SQLite file in a temporary folder is used. The last line is
``key_rotation rows=... rekey_rows_per_s=... baseline_read_rows_per_s=... lookup_1v_us=...
lookup_2v_us=...``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from hub.dbschema import upgrade_to_head
from hub.keyrotation.keyfile import rotate
from hub.keyrotation.rekey import rekey
from hub.runtime import HubRuntime
from hub.settings import load_settings
from registry_core.models import Identifier
from registry_core.services.base import Source

STAFF = Source("registry_staff")


def _fill(hub: HubRuntime, households: int) -> None:
    for n in range(households):
        hub.registry.register_household(
            {
                "admin_area_code": "UG",
                "address": "1 Bench Lane",
                "members": [
                    {
                        "given_name": "Ana",
                        "family_name": f"B{n}",
                        "sex": "female",
                        "birth_date": "1990-01-01",
                        "relationship": "head",
                        "identifiers": [{"system": "national_id", "value": f"9{n:08d}"}],
                    }
                ],
            },
            STAFF,
        )


def _read_pass(hub: HubRuntime, batch: int) -> int:
    """Every identifier read and decrypted in keyset batches: the re-key's floor."""
    seen, after = 0, None
    while True:
        with hub.sessions() as session:
            query = select(Identifier.id, Identifier.system, Identifier.value_ciphertext)
            if after is not None:
                query = query.where(Identifier.id > after)
            rows = session.execute(query.order_by(Identifier.id).limit(batch)).all()
        for row in rows:
            hub.cipher.decrypt(row.system, bytes(row.value_ciphertext))
        seen += len(rows)
        if len(rows) < batch:
            return seen
        after = rows[-1].id


def _lookup_us(hub: HubRuntime, households: int, n: int = 300) -> float:
    start = time.perf_counter()
    for i in range(n):
        found = hub.registry.find_person_by_identifier("national_id", f"9{i % households:08d}")
        assert found is not None
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade_to_head(url)
        settings = load_settings(
            env={}, database_url=url, data_dir=Path(folder) / "var", sandbox=False
        )
        hub = HubRuntime(settings)
        try:
            hub.registry.ensure_identifier_systems()
            _fill(hub, args.households)
            lookup_one = _lookup_us(hub, args.households)
            rotate(settings)
            hub.cipher.refresh(force=True)
            lookup_two = _lookup_us(hub, args.households)

            start = time.perf_counter()
            read = _read_pass(hub, args.batch)
            baseline = read / (time.perf_counter() - start)

            start = time.perf_counter()
            progress = rekey(hub.sessions, hub.cipher, settings.openrosa.realm, batch=args.batch)
            moved = progress.moved["identifiers.value_ciphertext"]
            rate = moved / (time.perf_counter() - start)
        finally:
            hub.close()
    print(f"identifiers: {read}; batch {args.batch}; database {url.split(':')[0]}")
    print(f"read-only pass (baseline): {baseline:,.0f} rows/s")
    print(f"re-key:                    {rate:,.0f} rows/s ({moved} moved)")
    print(f"look-up, one key version:  {lookup_one:,.0f} us")
    print(f"look-up, two key versions: {lookup_two:,.0f} us")
    print(
        f"key_rotation rows={moved} rekey_rows_per_s={rate:.0f} "
        f"baseline_read_rows_per_s={baseline:.0f} lookup_1v_us={lookup_one:.0f} "
        f"lookup_2v_us={lookup_two:.0f}"
    )


if __name__ == "__main__":
    main()
