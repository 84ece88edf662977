"""Benchmark: what recording a read costs (``hub.readaudit``), beside a plain audit insert.

    python -m bench.read_audit [--rows N] [--threads T] [--pg URL]

For each backend (a fresh SQLite file; PostgreSQL when ``--pg`` or ``SRHUB_TEST_DATABASE_URL``
names a server, in a database created and dropped here) it measures, in the same run:

- baseline: one short transaction inserting one row into the dashboard's audit trail
  (``ui_audit``), the cheapest "write a row per request" the hub already does;
- chained: ``ReadAuditLog.append`` (lock, read the head, insert with the hash);
- both again from T threads at once (the chain serialises appends: how much does it cost?);
- verification speed (rows per second) over everything written.

The last line is ``read_audit sqlite_append_per_s=... sqlite_baseline_per_s=... ...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from hub.auth.roles import Principal, Role
from hub.readaudit.log import ReadAuditLog
from hub.readaudit.records import ReadEntry, ReadRecords

READER = Principal(subject="bench-officer", roles=frozenset({Role.registry_staff}))


def _entry() -> ReadEntry:
    households = tuple(str(uuid.uuid4()) for _ in range(1))
    persons = tuple(str(uuid.uuid4()) for _ in range(4))
    return ReadEntry.by(
        READER,
        "api",
        "GET /api/v1/households/<uuid:household_id>",
        ReadRecords(households, persons, 1),
    )


def _baseline(sessions: sessionmaker[Session]) -> Callable[[], None]:
    from hub.ui.tables import UiAudit

    def write() -> None:
        with sessions() as session, session.begin():
            session.add(UiAudit(actor="bench", action="read", target=str(uuid.uuid4())))

    return write


def _run(write: Callable[[], None], rows: int, threads: int) -> tuple[float, float, float]:
    """Rows per second, p50 and p99 latency (ms) of ``rows`` writes split over ``threads``."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        mine = []
        for _ in range(count):
            start = time.perf_counter()
            write()
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(rows // threads,)) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p99 * 1000


def measure(url: str, rows: int, threads: int) -> dict[str, float]:
    from hub.dbschema import upgrade_to_head
    from registry_core.db import make_engine, make_session_factory

    upgrade_to_head(url)
    engine = make_engine(url, pool_size=threads + 2) if "postgresql" in url else make_engine(url)
    sessions = make_session_factory(engine)
    log = ReadAuditLog(sessions)
    baseline = _baseline(sessions)
    out: dict[str, float] = {}

    def append() -> None:
        log.append(_entry())

    for name, write in (("baseline", baseline), ("append", append)):
        write()  # warm the pool
        for t in (1, threads):
            per_s, p50, p99 = _run(write, rows, t)
            suffix = "" if t == 1 else f"_{t}t"
            out[f"{name}{suffix}_per_s"] = per_s
            out[f"{name}{suffix}_p50_ms"] = p50
            out[f"{name}{suffix}_p99_ms"] = p99
    started = time.perf_counter()
    verdict = log.verify()
    assert verdict.intact, verdict
    out["verify_rows_per_s"] = verdict.checked / (time.perf_counter() - started)
    engine.dispose()
    return out


def _postgres(url: str) -> tuple[str, Callable[[], None]]:
    admin_url = make_url(url).set(drivername="postgresql+psycopg")
    name = f"srhub_bench_readaudit_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pg", default=os.environ.get("SRHUB_TEST_DATABASE_URL", ""))
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        sqlite = measure(f"sqlite:///{Path(folder) / 'bench.db'}", args.rows, args.threads)
    figures.update({f"sqlite_{k}": v for k, v in sqlite.items()})
    if args.pg:
        url, drop = _postgres(args.pg)
        try:
            pg = measure(url, args.rows, args.threads)
        finally:
            drop()
        figures.update({f"pg_{k}": v for k, v in pg.items()})
    for backend in ("sqlite", "pg"):
        if f"{backend}_append_per_s" not in figures:
            continue
        print(f"{backend}: {args.rows} rows, 1 and {args.threads} threads")
        for label, key in (("plain insert (baseline)", "baseline"), ("chained append", "append")):
            one = figures[f"{backend}_{key}_per_s"]
            many = figures[f"{backend}_{key}_{args.threads}t_per_s"]
            p50 = figures[f"{backend}_{key}_p50_ms"]
            p99 = figures[f"{backend}_{key}_{args.threads}t_p99_ms"]
            print(
                f"  {label:25s} {one:8.0f}/s  p50 {p50:6.2f} ms   "
                f"{args.threads} threads {many:8.0f}/s  p99 {p99:6.2f} ms"
            )
        print(f"  verify {figures[f'{backend}_verify_rows_per_s']:10.0f} rows/s")
    keys = [
        k
        for k in figures
        if k.endswith("_per_s") or k.endswith("t_p99_ms") or k.endswith("append_p50_ms")
    ]
    print("read_audit " + " ".join(f"{k}={figures[k]:.1f}" for k in keys))


if __name__ == "__main__":
    main()
