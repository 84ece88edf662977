"""Benchmark: DCI sync search by identifier (UIN) against a large registry on PostgreSQL.

    python -m bench.api [--people N] [--duration S] [--workers W] [--concurrency C]

Builds (or reuses, keyed by N) a PostgreSQL database of N synthetic people in households of
about four, written straight into the registry's tables with COPY (identifiers encrypted and
HMAC'd with the app's own ``IdentifierCipher``), serves the hub API under gunicorn on a free
port, and drives ``POST /dci/registry/sync/search`` from a separate load process.

Why baselines: "N searches/s" means little alone. The same run measures ``GET /health``
through the same server and client (the ceiling of HTTP + WSGI + auth on this machine) and the
raw indexed look-up by hash over psycopg (the ceiling of the database), so the figure reads as
a share of what the stack could do at best.

The load process sends prepared requests (each with its own message id, built before the clock
starts) over keep-alive sockets and reads answers by Content-Length: on 2 cores a heavier
client takes CPU from the server and measures itself. Each prepared request is sent once, so
no answer is a replay refusal.

The last line is ``api searches_per_s=... p50_ms=... p99_ms=... baseline_health_per_s=...
people=...`` (plus extra fields).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import itertools
import json
import multiprocessing
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/srhub_bench"
SENDER = "bench.example.org"
AREAS = [f"R{r:02d}-D{d:02d}" for r in range(1, 11) for d in range(1, 11)]
GIVEN = ["Amina", "Baraka", "Chiku", "Daudi", "Eshe", "Faraji", "Halima", "Jabari", "Kamaria"]
FAMILY = ["Otieno", "Mwangi", "Njoroge", "Wanjiru", "Achieng", "Kiptoo", "Mutua", "Odhiambo"]
NATIONAL_ID_BASE = 3_000_000_000


def national_id(index: int) -> str:
    return str(NATIONAL_ID_BASE + index)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --------------------------------------------------------------------------- database


def database_url(people: int) -> str:
    """The bench database for N people: the configured URL with ``_p<N>`` appended to its name."""
    from sqlalchemy.engine import make_url

    url = make_url(os.environ.get("SRHUB_BENCH_DATABASE_URL", DEFAULT_URL))
    return url.set(database=f"{url.database}_p{people}").render_as_string(hide_password=False)


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def ensure_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = parsed.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(_psycopg_url(admin), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{parsed.database}"')


def read_meta(url: str) -> dict[str, Any] | None:
    """The keys and size of an earlier complete build, or None."""
    import psycopg

    with psycopg.connect(_psycopg_url(url)) as conn:
        row = conn.execute("SELECT to_regclass('bench_api_meta')").fetchone()
        if row is None or row[0] is None:
            return None
        meta = conn.execute("SELECT people, keys FROM bench_api_meta").fetchone()
    if meta is None:
        return None
    return {"people": meta[0], "keys": json.loads(meta[1])}


def build(url: str, people: int, seed: int = 7) -> dict[str, str]:
    """Fill the registry tables with ``people`` people; returns the keys the app must use."""
    import psycopg

    from hub.dbschema import upgrade_to_head
    from registry_core.crypto import IdentifierCipher

    keys = {
        "SRHUB_JWT_SECRET": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SRHUB_IDENTIFIER_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SRHUB_IDENTIFIER_HMAC_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    cipher = IdentifierCipher(
        base64.b64decode(keys["SRHUB_IDENTIFIER_ENCRYPTION_KEY"]),
        base64.b64decode(keys["SRHUB_IDENTIFIER_HMAC_KEY"]),
    )
    with psycopg.connect(_psycopg_url(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    upgrade_to_head(url)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with psycopg.connect(_psycopg_url(url)) as conn:
        conn.execute(
            "INSERT INTO identifier_systems (code, description, unique_per_person, created_at) "
            "VALUES ('national_id', 'National ID', true, now()) ON CONFLICT DO NOTHING"
        )
        # FKs are checked row by row during COPY; the rows are consistent by construction,
        # so the build defers that work to the end of the transaction.
        conn.execute("SET session_replication_role = replica")
        with conn.cursor().copy(
            "COPY persons (id, given_name, family_name, sex, birth_date, is_deceased, "
            "verification_status, version, created_at, updated_at) FROM STDIN"
        ) as persons:
            households: list[tuple[uuid.UUID, list[uuid.UUID]]] = []
            index = 0
            while index < people:
                size = min(people - index, rng.choice((2, 3, 4, 5, 6)))
                members = []
                for _offset in range(size):
                    pid = uuid.UUID(int=rng.getrandbits(128), version=4)
                    members.append(pid)
                    persons.write_row(
                        (
                            pid,
                            rng.choice(GIVEN),
                            rng.choice(FAMILY),
                            rng.choice(("female", "male")),
                            date(1940, 1, 1) + timedelta(days=rng.randrange(30_000)),
                            False,
                            "unverified",
                            1,
                            now,
                            now,
                        )
                    )
                    index += 1
                households.append((uuid.UUID(int=rng.getrandbits(128), version=4), members))
        with conn.cursor().copy(
            "COPY households (id, registry_number, admin_area_code, address, status, "
            "head_person_id, version, created_at, updated_at) FROM STDIN"
        ) as copy:
            for number, (hid, members) in enumerate(households):
                area = AREAS[number % len(AREAS)]
                copy.write_row(
                    (
                        hid,
                        f"SR-{number:09d}",
                        area,
                        f"{area} plot {number}",
                        "active",
                        members[0],
                        1,
                        now,
                        now,
                    )
                )
        with conn.cursor().copy(
            "COPY memberships (id, household_id, person_id, relationship_to_head, start_date) "
            "FROM STDIN"
        ) as copy:
            for hid, members in households:
                for position, pid in enumerate(members):
                    copy.write_row(
                        (
                            uuid.UUID(int=rng.getrandbits(128), version=4),
                            hid,
                            pid,
                            "head" if position == 0 else "child",
                            date(2020, 1, 1),
                        )
                    )
        with conn.cursor().copy(
            "COPY identifiers (id, person_id, system, value_hash, value_ciphertext, verified, "
            "source_system, created_at) FROM STDIN"
        ) as copy:
            number = 0
            for _hid, members in households:
                for pid in members:
                    value = national_id(number)
                    copy.write_row(
                        (
                            uuid.UUID(int=rng.getrandbits(128), version=4),
                            pid,
                            "national_id",
                            cipher.lookup_hash("national_id", value),
                            cipher.encrypt("national_id", value),
                            False,
                            "bench",
                            now,
                        )
                    )
                    number += 1
        conn.execute("SET session_replication_role = DEFAULT")
        conn.execute("CREATE TABLE bench_api_meta (people bigint, keys text)")
        conn.execute("INSERT INTO bench_api_meta VALUES (%s, %s)", (people, json.dumps(keys)))
        conn.commit()
    with psycopg.connect(_psycopg_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    elapsed = time.perf_counter() - started
    print(
        f"built people={people} households={len(households)} seconds={elapsed:.1f} "
        f"people_per_s={people / elapsed:.0f}",
        flush=True,
    )
    return keys


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workers: int, threads: int) -> Iterator[int]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
        "hub.api:create_app()",
    ]
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start; see its output above")
            time.sleep(0.2)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


# --------------------------------------------------------------------------- load


def search_body(value: str) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message_id = uuid.uuid4().hex
    return json.dumps(
        {
            "header": {
                "version": "1.0.0",
                "message_id": message_id,
                "message_ts": now,
                "action": "search",
                "sender_id": SENDER,
                "total_count": 1,
            },
            "message": {
                "transaction_id": message_id[:20],
                "search_request": [
                    {
                        "reference_id": "r1",
                        "timestamp": now,
                        "search_criteria": {
                            "query_type": "idtype-value",
                            "query": {"type": "UIN", "value": value},
                        },
                    }
                ],
            },
        }
    ).encode()


class _Connection:
    """A bare HTTP/1.1 keep-alive client: send prepared bytes, read one response.

    http.client costs more CPU per request than a lean server path (headers parsed into
    email.message objects, several small writes); on a 2-core machine the load generator then
    takes the server's CPU and the figure measures the client. This sends one prepared buffer
    and reads by Content-Length, nothing else.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.last_head = b""  # the status line and headers of the last response

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buffer = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of one request; the connection is reopened after a close."""
        sock = self.sock or self._connect()
        sock.sendall(request)
        data = self.buffer
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("connection closed by the server")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        self.last_head = head
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, closing = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("connection closed by the server")
            rest += chunk
        body, self.buffer = rest[:length], rest[length:]
        if closing:
            self.close()
        return status, body


def _requests(kind: str, token: str, people: int, count: int, seed: int) -> list[bytes]:
    """Prepared requests (built before the clock starts, so building them costs no load time)."""
    if kind == "health":
        return [b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"]
    rng = random.Random(seed)
    prepared = []
    for _ in range(count):
        body = search_body(national_id(rng.randrange(people)))
        head = (
            "POST /dci/registry/sync/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        prepared.append(head + body)
    return prepared


def _client_thread(
    port: int,
    kind: str,
    prepared: list[bytes],
    fresh: Callable[[], bytes],
    turns: Iterator[int],
    stop_at: float,
    out: list,
) -> None:
    """Send requests until ``stop_at``; each one is taken once from the shared ``prepared``
    list (``turns`` hands out its indexes; ``next`` on an itertools.count is atomic), so no
    message id is sent twice however unevenly the server serves the connections."""
    conn = _Connection(port)
    latencies, errors, found = [], 0, 0
    first_error = ""
    while time.monotonic() < stop_at:
        turn = next(turns)
        request = prepared[turn] if turn < len(prepared) else fresh()
        started = time.perf_counter()
        try:
            status, data = conn.exchange(request)
            ok = status == 200
        except (OSError, ValueError, IndexError) as error:
            ok, data, status = False, repr(error).encode(), 0
            conn.close()
        latencies.append(time.perf_counter() - started)
        if not ok:
            errors += 1
            first_error = first_error or f"{status} {data[-200:]!r}"
        elif kind == "search" and b'"group_identifier"' in data:
            found += 1
    conn.close()
    if first_error:
        print(f"first error of a client: {first_error}", file=sys.stderr, flush=True)
    out.append((latencies, errors, found))


def _load_process(
    port: int, kind: str, token: str, people: int, duration: float, concurrency: int, queue: Any
) -> None:
    """One load process (apart from the server and the orchestrator) with C client threads.

    Requests are prepared before the clock starts, enough for 2,500 requests/s; past that,
    threads build fresh ones as they go (costing client CPU, so the figure would then be an
    underestimate).
    """
    prepared = _requests(kind, token, people, int(duration * 2500), seed=1)
    extra = random.Random(2)

    def fresh() -> bytes:
        return _requests(kind, token, people, 1, seed=extra.randrange(1 << 30))[0]

    turns = itertools.count()
    stop_at = time.monotonic() + duration
    out: list = []
    threads = [
        threading.Thread(
            target=_client_thread,
            args=(port, kind, prepared, fresh, turns, stop_at, out),
            daemon=True,
        )
        for _ in range(concurrency)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies = [x for lat, _, _ in out for x in lat]
    queue.put(
        {
            "count": len(latencies),
            "seconds": elapsed,
            "errors": sum(e for _, e, _ in out),
            "found": sum(f for _, _, f in out),
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
        }
    )


def drive(port: int, kind: str, token: str, people: int, duration: float, concurrency: int):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(
        target=_load_process, args=(port, kind, token, people, duration, concurrency, queue)
    )
    process.start()
    result = queue.get(timeout=duration + 120)
    process.join()
    return result


def raw_lookups(url: str, hmac_key: bytes, people: int, duration: float) -> float:
    """Look-ups per second of the indexed query by hash, straight over psycopg."""
    import psycopg

    from registry_core.crypto import IdentifierCipher

    cipher = IdentifierCipher(b"\0" * 32, hmac_key)
    rng = random.Random(3)
    count = 0
    with psycopg.connect(_psycopg_url(url)) as conn:
        stop_at = time.monotonic() + duration
        started = time.perf_counter()
        while time.monotonic() < stop_at:
            digest = cipher.lookup_hash("national_id", national_id(rng.randrange(people)))
            conn.execute(
                "SELECT m.household_id FROM identifiers i JOIN memberships m "
                "ON m.person_id = i.person_id AND m.end_date IS NULL "
                "WHERE i.system = 'national_id' AND i.value_hash = %s",
                (digest,),
            ).fetchall()
            count += 1
        return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=20.0)
    # Measured on the 2-core box: gthread workers (keep-alive) beat 2*cores+1 sync workers
    # by about 3x (sync workers close every connection and stall on small writes).
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1)
    parser.add_argument("--threads", type=int, default=4, help="1: sync workers, >1: gthread")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)

    url = database_url(args.people)
    ensure_database(url)
    meta = None if args.rebuild else read_meta(url)
    if meta is None or meta["people"] != args.people:
        keys = build(url, args.people)
    else:
        keys = meta["keys"]
        print(f"reusing {url.rsplit('/', 1)[-1]} people={args.people}", flush=True)

    with tempfile.TemporaryDirectory(prefix="srhub-bench-api-") as tmp:
        return _measure(args, url, keys, Path(tmp))


def _measure(args: argparse.Namespace, url: str, keys: dict[str, str], data_dir: Path) -> int:
    """Serve the built registry under gunicorn and drive searches, health and raw look-ups."""
    from hub.auth.tokens import issue_token
    from hub.settings import load_settings

    env = {
        **os.environ,
        **keys,
        "SRHUB_DATABASE_URL": url,
        "SRHUB_DATA_DIR": str(data_dir),
        "SRHUB_LOG_LEVEL": "WARNING",
        "SRHUB_SANDBOX": "false",
        # The bench floods from one address with one credential to measure the server:
        # production rate limits (docs/deployment.md) would answer most of it with 429.
        "SRHUB_RATE_LIMITS__ENABLED": "false",
    }
    settings = load_settings(env={k: v for k, v in env.items() if k.startswith("SRHUB_")})
    # An admin reads every household (a program would see only what its consents cover, and
    # this population has none); the bench's sender is onboarded unsigned, as before this
    # became an operator's explicit act, so the figures stay comparable.
    token = issue_token(settings, subject="bench", roles=["admin"])
    # The DCI signing key is created on first use; create it now so workers do not race.
    from hub.dci.config import load_signing_key
    from hub.dci.senders import allow_unsigned
    from hub.runtime import HubRuntime

    load_signing_key(settings, settings.dci)
    runtime = HubRuntime(settings)
    try:
        allow_unsigned(runtime.sessions, SENDER, by="bench.api", reason="benchmark load client")
    finally:
        runtime.close()

    with gunicorn(env, args.workers, args.threads) as port:
        drive(port, "search", token, args.people, 3.0, args.concurrency)  # warm-up
        search = drive(port, "search", token, args.people, args.duration, args.concurrency)
        health = drive(port, "health", token, args.people, args.duration / 2, args.concurrency)
    raw = raw_lookups(url, base64.b64decode(keys["SRHUB_IDENTIFIER_HMAC_KEY"]), args.people, 5.0)
    per_s = search["count"] / search["seconds"]
    print(
        f"api searches_per_s={per_s:.0f} p50_ms={search['p50'] * 1000:.1f} "
        f"p99_ms={search['p99'] * 1000:.1f} "
        f"baseline_health_per_s={health['count'] / health['seconds']:.0f} "
        f"people={args.people} errors={search['errors']} found={search['found']} "
        f"raw_sql_lookups_per_s={raw:.0f} workers={args.workers} threads={args.threads} "
        f"concurrency={args.concurrency}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
