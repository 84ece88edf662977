"""Benchmark: a field team's sync burst of OpenRosa submissions, until all are in the registry.

    python -m bench.intake [--submissions N] [--concurrency C] [--workers W]
                           [--auth digest|basic] [--broker auto|amqp|embedded] [--keep-db]

The story is issue 14's: enumerators come back into coverage and their devices send what they
collected offline, thousands of submissions at once; every one must land, none twice. The
bench builds a PostgreSQL database of its own (``SRHUB_BENCH_DATABASE_URL`` with
``_intake_<run id>`` appended to its name; dropped afterwards unless ``--keep-db``), migrated
to head; loads the sample form through the intake service as ``srhub run`` does; creates a
field worker with ``srhub users add … --role field_worker --area …``; serves the hub API under
gunicorn on a free port (2 workers x 4 threads by default: two cores also run the ingest
worker, PostgreSQL, RabbitMQ and the load client); and runs ``srhub worker ingest``
processes on RabbitMQ (``SRHUB_BENCH_AMQP_URL``, or the local one, in a virtual host of its
own when ``rabbitmqctl`` works) or, when none answers, on the embedded broker in the database.

Before the clock starts it fills N distinct instances of the real XForm (households of one to
six members, each person with a national ID of their own) and wraps each in the multipart body
ODK Collect sends. A separate load process then sends them once each over C keep-alive sockets
and reads the answers by Content-Length (a heavier client would take the server's CPU on two
cores). Authentication is what ODK Collect does against ``http://HOST:PORT/openrosa``: Collect
registers Basic only for https URLs, so it answers the hub's first challenge with Digest (MD5)
and then signs every request with the cached nonce and a fresh nonce count; an expired nonce is
answered ``stale=true`` and renewed silently, as okhttp-digest does. ``--auth basic`` measures
Basic over loopback instead (one scrypt per gunicorn worker, then the verified-credential
memory).

Measured: submissions/s and p50/p99 latency of the POSTs answered 201; the time from the first
POST until the ingest workers have applied the last submission (``applied_per_s``, from the
rows' ``processed_at``); then checked: every instance stored once and applied, one household
per submission (``lost``, ``doubled``), and 100 of them sent again are answered 202 without a
new household. Baselines in the same run, through the same server and client: ``GET /health``
(the ceiling of HTTP + WSGI on this box) and, on RabbitMQ, raw pika publishing with a confirm
per message (what the per-submission publish costs at best).

The last line is ``intake submissions_per_s=... p99_ms=... health_per_s=...`` followed by the
other figures as key=value.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import itertools
import multiprocessing
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.api import FAMILY, GIVEN, _Connection, gunicorn, percentile

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/srhub_bench"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
FORM_ID = "household_registration"
USERNAME = "bench-enumerator"
REGIONS = [f"R{r:02d}" for r in range(1, 11)]
AREAS = [f"{region}-D{d:02d}-L{n:03d}" for region in REGIONS for d in (1, 2, 3) for n in (1, 2)]
NATIONAL_ID_BASE = 4_100_000_000
DEVICE_ID = "collect:bench0000000001"
SUBMISSION_PATH = f"/openrosa/submission?deviceID={DEVICE_ID.replace(':', '%3A')}"
BOUNDARY = "----srhubBench" + "7e3c0d9a2b"
RESEND = 100


# --------------------------------------------------------------------------- services


def database_url(run_id: str) -> str:
    """The bench database: the configured URL with ``_intake_<run id>`` appended to its name
    (two runs on one server never drop each other's database)."""
    from sqlalchemy.engine import make_url

    url = make_url(os.environ.get("SRHUB_BENCH_DATABASE_URL", DEFAULT_URL))
    name = f"{url.database}_intake_{run_id}"
    return url.set(database=name).render_as_string(hide_password=False)


def _psycopg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _admin(url: str) -> str:
    from sqlalchemy.engine import make_url

    return _psycopg(make_url(url).set(database="postgres").render_as_string(hide_password=False))


def drop_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def fresh_database(url: str) -> None:
    """An empty database of that name (an earlier run's, kept with --keep-db, is dropped)."""
    import psycopg
    from sqlalchemy.engine import make_url

    drop_database(url)
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{make_url(url).database}"')


def amqp_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672), 2):
            return True
    except OSError:
        return False


def choose_broker(wanted: str) -> tuple[str, str]:
    """("amqp", url) or ("embedded", "")."""
    url = os.environ.get("SRHUB_BENCH_AMQP_URL") or DEFAULT_AMQP
    if wanted == "embedded":
        return "embedded", ""
    if amqp_reachable(url):
        return "amqp", url
    if wanted == "amqp":
        raise SystemExit(f"intake bench: RabbitMQ at {url.split('@')[-1]} does not answer")
    return "embedded", ""


@contextlib.contextmanager
def processes(commands: list[list[str]], env: dict[str, str]) -> Iterator[list[subprocess.Popen]]:
    """Start each command in a session of its own; SIGTERM them at the end (then kill)."""
    started = [subprocess.Popen(c, env=env, start_new_session=True) for c in commands]
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def wait_for_consumers(amqp_url: str, queue: str, count: int, timeout: float = 60) -> None:
    """Until ``count`` consumers listen on ``queue`` (the ingest workers are up)."""
    import pika

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
            try:
                found = conn.channel().queue_declare(queue, passive=True).method.consumer_count
            finally:
                conn.close()
            if found >= count:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the ingest workers did not start consuming {queue}")
        time.sleep(0.3)


# --------------------------------------------------------------------------- submissions


def household_answers(rng: random.Random, number: int, next_person: Iterator[int]) -> dict:
    """One household as an enumerator records it: 1 to 6 members, the head first."""
    area = AREAS[number % len(AREAS)]
    size = rng.randint(1, 6)
    family = rng.choice(FAMILY)
    members = []
    for position in range(size):
        if position == 0:
            relationship, born = "head", date(1950, 1, 1) + timedelta(days=rng.randrange(18_000))
        elif position == 1 and size > 2:
            relationship, born = "spouse", date(1955, 1, 1) + timedelta(days=rng.randrange(16_000))
        else:
            relationship, born = "child", date(2004, 1, 1) + timedelta(days=rng.randrange(7_000))
        members.append(
            {
                "given_name": rng.choice(GIVEN),
                "family_name": family,
                "sex": rng.choice(("female", "male")),
                "birth_date": born.isoformat(),
                "relationship": relationship,
                "national_id": str(NATIONAL_ID_BASE + next(next_person)),
                "disability": rng.choice(("no", "no", "no", "yes")),
            }
        )
    lat, lon = -1.0 - rng.random(), 36.0 + rng.random()
    return {
        "household_id": "",
        "base_version": "",
        "admin_area_code": area,
        "address": f"{area} plot {number}",
        "location": f"{lat:.6f} {lon:.6f} 0 {rng.randint(3, 25)}",
        "consent_national_id_check": "yes",
        "members": members,
        "dwelling": {"roof_material": rng.choice(("metal", "tiles", "thatch")), "rooms": 2},
        "income": {"monthly_income": rng.randint(0, 80) * 50, "receives_transfers": "no"},
    }


def multipart(xml: bytes) -> bytes:
    """The body ODK Collect posts: the instance as ``xml_submission_file``."""
    return (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="xml_submission_file"; '
            'filename="submission.xml"\r\n'
            "Content-Type: text/xml\r\n\r\n"
        ).encode()
        + xml
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def build_submissions(xform: bytes, count: int, seed: int = 11) -> tuple[list[bytes], int]:
    """``count`` multipart bodies of distinct instances of ``xform``; and how many people."""
    from sandbox_mocks.field_team.xform import FormTemplate

    template = FormTemplate.from_xform(xform)
    rng = random.Random(seed)
    people = itertools.count()
    bodies = []
    for number in range(count):
        answers = household_answers(rng, number, people)
        instance_id = f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        bodies.append(multipart(template.fill(answers, instance_id)))
    return bodies, next(people)


# --------------------------------------------------------------------------- device auth


_CHALLENGE = re.compile(rb'Digest [^\r\n]*?algorithm=MD5[^\r\n]*?nonce="([^"]+)"', re.I)


def digest_nonce(head: bytes) -> str | None:
    """The nonce of the MD5 Digest challenge in a 401's headers (the one Collect answers)."""
    found = _CHALLENGE.search(head)
    return found.group(1).decode("ascii") if found else None


def _md5(text: str) -> str:
    """MD5 as HTTP Digest's MD5 algorithm defines it (the protocol's choice, not ours)."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class DeviceAuth:
    """What a device puts in ``Authorization`` after the first challenge.

    Digest: the nonce of the last challenge with a nonce count raised for every request (shared
    by the device's connections, as okhttp-digest's cached authenticator is) and a fresh
    cnonce; ``renew`` takes the nonce of a ``stale=true`` challenge. Basic: the same header
    every time (the hub's verified-credential memory spares the scrypt after the first).
    """

    def __init__(self, scheme: str, username: str, password: str, realm: str, nonce: str = ""):
        self.scheme = scheme
        self.username = username
        self.realm = realm
        self.nonce = nonce
        self._ha1 = _md5(f"{username}:{realm}:{password}")
        self._basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._nc = 0
        self._lock = threading.Lock()
        self.renewals = 0

    def header(self, method: str, uri: str) -> bytes:
        if self.scheme == "basic":
            return f"Authorization: Basic {self._basic}\r\n".encode()
        with self._lock:
            self._nc += 1
            nc, nonce = f"{self._nc:08x}", self.nonce
        cnonce = secrets.token_hex(8)
        ha2 = _md5(f"{method}:{uri}")
        response = _md5(f"{self._ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        return (
            f'Authorization: Digest username="{self.username}", realm="{self.realm}", '
            f'nonce="{nonce}", uri="{uri}", algorithm=MD5, response="{response}", '
            f'qop=auth, nc={nc}, cnonce="{cnonce}"\r\n'
        ).encode()

    def renew(self, head: bytes) -> bool:
        """Take the nonce of a 401's challenge; False for Basic or when there is none."""
        nonce = digest_nonce(head) if self.scheme == "digest" else None
        if nonce is None:
            return False
        with self._lock:
            if nonce != self.nonce:
                self.nonce, self._nc = nonce, 0
                self.renewals += 1
        return True


def request_bytes(method: str, path: str, port: int, auth: DeviceAuth | None, body: bytes) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-OpenRosa-Version: 1.0\r\n"
    if body:
        head += (
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body)}\r\n"
        )
    signed = auth.header(method, path) if auth is not None else b""
    return head.encode() + signed + b"\r\n" + body


# --------------------------------------------------------------------------- load


@dataclass
class Job:
    """What one load process does: send ``bodies`` once each (``kind`` "submit"), or GET
    /health until ``seconds`` have passed (``kind`` "health")."""

    kind: str
    port: int
    concurrency: int
    bodies: list[bytes] = field(default_factory=list)
    seconds: float = 0.0
    scheme: str = "digest"
    username: str = ""
    password: str = ""
    realm: str = ""
    nonce: str = ""


def _submit_thread(job: Job, auth: DeviceAuth, turns: Iterator[int], out: list) -> None:
    """Take the next unsent body until none is left; a 401 with a new nonce is retried."""
    conn = _Connection(job.port)
    while True:
        turn = next(turns)
        if turn >= len(job.bodies):
            break
        started = time.perf_counter()
        status, answer = 0, b""
        for _attempt in range(3):
            try:
                status, answer = conn.exchange(
                    request_bytes("POST", SUBMISSION_PATH, job.port, auth, job.bodies[turn])
                )
            except (OSError, ValueError, IndexError) as error:
                status, answer = 0, repr(error).encode()
                conn.close()
                continue
            if status == 401 and auth.renew(conn.last_head):
                continue
            break
        out.append((turn, status, time.perf_counter() - started, answer[-300:]))
    conn.close()


def _health_thread(job: Job, stop_at: float, out: list) -> None:
    conn = _Connection(job.port)
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            status, _ = conn.exchange(request)
        except (OSError, ValueError, IndexError):
            status = 0
            conn.close()
        out.append((0, status, time.perf_counter() - started, b""))
    conn.close()


def _load_process(job: Job, queue: Any) -> None:
    """One load process (apart from the server and the orchestrator) with C client threads."""
    out: list = []
    auth = DeviceAuth(job.scheme, job.username, job.password, job.realm, job.nonce)
    turns = itertools.count()
    stop_at = time.monotonic() + job.seconds
    threads = [
        threading.Thread(
            target=_submit_thread if job.kind == "submit" else _health_thread,
            args=(job, auth, turns, out) if job.kind == "submit" else (job, stop_at, out),
            daemon=True,
        )
        for _ in range(job.concurrency)
    ]
    wall = time.time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(
        {
            "started_wall": wall,
            "seconds": time.perf_counter() - started,
            "results": out,
            "renewals": auth.renewals,
        }
    )


def drive(job: Job, timeout: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_load_process, args=(job, queue))
    process.start()
    try:
        return queue.get(timeout=timeout)
    finally:
        process.join(30)
        if process.is_alive():
            process.terminate()


def summarise(run: dict[str, Any], wanted: int) -> dict[str, Any]:
    """Count, rate and latencies of the answers with status ``wanted``; the others listed."""
    results = run["results"]
    good = [latency for _, status, latency, _ in results if status == wanted]
    others: dict[int, int] = {}
    first_other = ""
    for _, status, _, answer in results:
        if status != wanted:
            others[status] = others.get(status, 0) + 1
            first_other = first_other or f"{status} {answer!r}"
    return {
        "ok": len(good),
        "per_s": len(good) / run["seconds"] if run["seconds"] else 0.0,
        "p50": percentile(good, 0.50),
        "p99": percentile(good, 0.99),
        "others": others,
        "first_other": first_other,
    }


def handshake(port: int, auth_scheme: str) -> str:
    """The device's first exchange with /submission, as Collect's HEAD before sending (sent
    as GET, which the hub answers alike: the bare client reads bodies by Content-Length, and a
    HEAD answer announces one it does not send): the 401 challenge; returns its Digest nonce
    ("" for Basic)."""
    conn = _Connection(port)
    try:
        status, _ = conn.exchange(request_bytes("GET", SUBMISSION_PATH, port, None, b""))
        if status != 401:
            raise RuntimeError(f"/openrosa/submission without credentials answered {status}")
        nonce = digest_nonce(conn.last_head) or ""
        if auth_scheme == "digest" and not nonce:
            raise RuntimeError("the 401 has no Digest MD5 challenge")
        return nonce
    finally:
        conn.close()


def warm_up(port: int, auth: DeviceAuth, rounds: int = 8) -> None:
    """Form list and download on a few connections (each gunicorn worker imports its views
    and reads the form once), as a device does before it sends anything."""
    for _ in range(rounds):
        conn = _Connection(port)
        try:
            for path in ("/openrosa/formList", f"/openrosa/forms/{FORM_ID}/form.xml"):
                status, _ = conn.exchange(request_bytes("GET", path, port, auth, b""))
                if status != 200:
                    raise RuntimeError(f"warm-up GET {path} answered {status}")
            status, _ = conn.exchange(request_bytes("GET", SUBMISSION_PATH, port, auth, b""))
            if status != 204:
                raise RuntimeError(f"authenticated /openrosa/submission answered {status}")
        finally:
            conn.close()


# --------------------------------------------------------------------------- registry checks


def registry_counts(url: str) -> dict[str, Any]:
    """Submissions by status, households, distinct households and instances, last processed."""
    import psycopg

    with psycopg.connect(_psycopg(url)) as conn:
        statuses: dict[str, int] = {
            status: count
            for status, count in conn.execute(
                "SELECT status, count(*) FROM intake_submissions GROUP BY status"
            )
        }
        row = conn.execute(
            "SELECT count(*), count(DISTINCT instance_id), count(DISTINCT household_id), "
            "extract(epoch FROM max(processed_at)) FROM intake_submissions"
        ).fetchone()
        households = conn.execute("SELECT count(*) FROM households").fetchone()
    assert row is not None and households is not None
    return {
        "statuses": statuses,
        "rows": row[0],
        "instances": row[1],
        "distinct_households": row[2],
        "last_processed": float(row[3]) if row[3] is not None else None,
        "households": households[0],
    }


def wait_applied(url: str, expected: int, timeout: float) -> dict[str, Any]:
    """Poll until no submission is left ``received`` and ``expected`` rows exist."""
    deadline = time.monotonic() + timeout
    while True:
        counts = registry_counts(url)
        waiting = counts["statuses"].get("received", 0)
        if counts["rows"] >= expected and waiting == 0:
            return counts
        if time.monotonic() > deadline:
            print(f"intake bench: gave up waiting; {waiting} still received", flush=True)
            return counts
        time.sleep(0.25)


# --------------------------------------------------------------------------- the run


def setup_hub(env: dict[str, str], url: str, password: str) -> bytes:
    """Migrate, load the sample form as ``srhub run`` does, add the field worker; the XForm."""
    from hub.auth.roles import Principal, Role
    from hub.dbschema import upgrade_to_head
    from hub.intake.setup import intake_service, load_sample_form
    from hub.runtime import HubRuntime
    from hub.settings import load_settings

    upgrade_to_head(url)
    settings = load_settings(env={k: v for k, v in env.items() if k.startswith("SRHUB_")})
    runtime = HubRuntime(settings)
    try:
        runtime.registry.ensure_identifier_systems()
        service = intake_service(runtime)
        if not load_sample_form(service):
            raise RuntimeError("the sample form was not loaded into the fresh database")
        staff = Principal("bench", frozenset({Role.admin}))
        document = service.form_document(FORM_ID, staff)
        assert document is not None
        xform = document.xform
    finally:
        runtime.close()
    command = [sys.executable, "-m", "hub.cli", "users", "add", USERNAME, "--role"]
    command += ["field_worker", "--password-stdin"]
    for region in REGIONS:
        command += ["--area", region]
    subprocess.run(command, env=env, input=password + "\n", text=True, check=True)
    return xform


def raw_publish_rate(amqp_url: str, count: int) -> float:
    """Raw pika, one persistent message at a time each waiting for its confirm: what one
    submission's publish costs at best (bench.events' baseline, with messages of our size)."""
    from bench.events import raw_rates

    confirmed, _ = raw_rates(amqp_url, f"bintake{secrets.token_hex(4)}", count, 1)
    return confirmed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8, help="device connections")
    parser.add_argument("--workers", type=int, default=1, help="srhub worker ingest processes")
    # Two cores run the API, the ingest worker, PostgreSQL, RabbitMQ and the load client:
    # 2 gunicorn workers x 4 threads (gthread keeps device connections alive).
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--auth", choices=("digest", "basic"), default="digest")
    parser.add_argument("--broker", choices=("auto", "amqp", "embedded"), default="auto")
    parser.add_argument("--health-seconds", type=float, default=10.0)
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.submissions < 1 or args.concurrency < 1 or args.workers < 1:
        parser.error("--submissions, --concurrency and --workers must be at least 1")

    broker, base_amqp = choose_broker(args.broker)
    run_id = secrets.token_hex(5)
    url = database_url(run_id)
    with contextlib.ExitStack() as stack:
        amqp_url = ""
        if broker == "amqp":
            from bench.events import private_vhost

            amqp_url = stack.enter_context(private_vhost(base_amqp, f"srhub_bench_intake_{run_id}"))
        where = "RabbitMQ" if broker == "amqp" else "embedded queue in PostgreSQL"
        isolated = " (own virtual host)" if amqp_url and amqp_url != base_amqp else ""
        print(
            f"intake bench: submissions={args.submissions} concurrency={args.concurrency} "
            f"auth={args.auth} broker={broker} ({where}{isolated}) ingest_workers={args.workers} "
            f"gunicorn={args.gunicorn_workers}x{args.threads} cores={os.cpu_count()}",
            flush=True,
        )
        fresh_database(url)
        if args.keep_db:
            print(f"  database {url.rsplit('/', 1)[-1]} (kept afterwards)", flush=True)
        else:
            stack.callback(drop_database, url)
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="srhub-bi-")))
        line, ok = _run(args, url, amqp_url, data_dir, stack)
    # Printed once the server and the workers have stopped, so that it is the last line.
    print(line, flush=True)
    return 0 if ok else 1


def _run(
    args: argparse.Namespace, url: str, amqp_url: str, data_dir: Path, stack: contextlib.ExitStack
) -> tuple[str, bool]:
    """Set up, send the burst, wait for the registry, check, measure the baselines; the
    summary line and whether nothing was lost, doubled or refused."""
    env = {
        **os.environ,
        "SRHUB_JWT_SECRET": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SRHUB_IDENTIFIER_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SRHUB_IDENTIFIER_HMAC_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SRHUB_DATABASE_URL": url,
        "SRHUB_AMQP_URL": amqp_url,
        "SRHUB_DATA_DIR": str(data_dir),
        "SRHUB_LOG_LEVEL": "WARNING",
        # One address and one device user flood the server on purpose (docs/deployment.md).
        "SRHUB_RATE_LIMITS__ENABLED": "false",
        "SRHUB_SANDBOX": "false",
    }
    password = secrets.token_urlsafe(18)
    started = time.perf_counter()
    xform = setup_hub(env, url, password)
    print(f"  hub set up (migrated, form, user) in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    bodies, people = build_submissions(xform, args.submissions)
    print(
        f"  built {len(bodies)} submissions ({people} people, "
        f"{sum(map(len, bodies)) / len(bodies) / 1024:.1f} KiB each) "
        f"in {time.perf_counter() - started:.1f} s, before the clock",
        flush=True,
    )
    raw_publish = raw_publish_rate(amqp_url, 2000) if amqp_url else None

    from hub.workers.topology import INGEST_QUEUE

    worker = [sys.executable, "-m", "hub.cli", "worker", "ingest"]
    stack.enter_context(processes([worker] * args.workers, env))
    port = stack.enter_context(gunicorn(env, args.gunicorn_workers, args.threads))
    if amqp_url:
        wait_for_consumers(amqp_url, INGEST_QUEUE.name, args.workers)
    else:
        time.sleep(2.0)  # the embedded broker has no consumer count to wait for

    from hub.settings import load_settings

    realm = load_settings(env={"SRHUB_DATA_DIR": str(data_dir)}).openrosa.realm
    warm_up(port, DeviceAuth(args.auth, USERNAME, password, realm, handshake(port, args.auth)))
    job = Job(
        "submit",
        port,
        args.concurrency,
        bodies,
        scheme=args.auth,
        username=USERNAME,
        password=password,
        realm=realm,
        nonce=handshake(port, args.auth),
    )
    burst = drive(job, timeout=max(600.0, args.submissions * 0.5))
    sent = summarise(burst, 201)
    print(
        f"  burst: {sent['ok']} answered 201 in {burst['seconds']:.1f} s "
        f"({sent['per_s']:.0f}/s, p50 {sent['p50'] * 1000:.1f} ms, p99 {sent['p99'] * 1000:.1f} "
        f"ms); other answers {sent['others'] or 'none'}; nonce renewals {burst['renewals']}",
        flush=True,
    )
    if sent["first_other"]:
        print(f"  first other answer: {sent['first_other'][:300]}", flush=True)

    counts = wait_applied(url, args.submissions, timeout=max(120.0, args.submissions / 5))
    last = counts["last_processed"] or time.time()
    applied_seconds = max(last - burst["started_wall"], 1e-6)
    applied = counts["statuses"].get("applied", 0)
    print(
        f"  registry: statuses {counts['statuses']}; households {counts['households']}; "
        f"all applied {applied_seconds:.1f} s after the first POST "
        f"({applied / applied_seconds:.0f}/s)",
        flush=True,
    )

    resend = Job(
        "submit",
        port,
        min(args.concurrency, 4),
        bodies[:RESEND],
        scheme=args.auth,
        username=USERNAME,
        password=password,
        realm=realm,
        nonce=handshake(port, args.auth),
    )
    again = summarise(drive(resend, timeout=300), 202)
    time.sleep(1.0)
    after = registry_counts(url)
    print(
        f"  re-sent {len(resend.bodies)}: {again['ok']} answered 202, others "
        f"{again['others'] or 'none'}; households {after['households']} (were "
        f"{counts['households']}), submissions {after['rows']}",
        flush=True,
    )

    health_run = drive(Job("health", port, args.concurrency, seconds=args.health_seconds), 300)
    health = summarise(health_run, 200)
    print(
        f"  baseline GET /health: {health['per_s']:.0f}/s (p50 {health['p50'] * 1000:.1f} ms, "
        f"p99 {health['p99'] * 1000:.1f} ms)",
        flush=True,
    )
    if raw_publish is not None:
        print(f"  baseline raw pika publish, confirm per message: {raw_publish:.0f}/s")

    lost = args.submissions - min(applied, counts["instances"])
    doubled = max(0, counts["households"] - counts["distinct_households"]) + max(
        0, counts["rows"] - counts["instances"]
    )
    resend_new = after["households"] - counts["households"] + after["rows"] - counts["rows"]
    errors = sum(sent["others"].values())
    fields = [
        f"submissions_per_s={sent['per_s']:.1f}",
        f"p99_ms={sent['p99'] * 1000:.1f}",
        f"health_per_s={health['per_s']:.0f}",
        f"p50_ms={sent['p50'] * 1000:.1f}",
        f"applied_per_s={applied / applied_seconds:.1f}",
        f"applied_seconds={applied_seconds:.1f}",
        f"submissions={args.submissions}",
        f"applied={applied}",
        f"households={counts['households']}",
        f"lost={lost}",
        f"doubled={doubled + max(0, resend_new)}",
        f"resent_202={again['ok']}",
        f"errors={errors}",
        f"auth={args.auth}",
        f"broker={'amqp' if amqp_url else 'embedded'}",
        f"concurrency={args.concurrency}",
        f"ingest_workers={args.workers}",
        f"gunicorn={args.gunicorn_workers}x{args.threads}",
    ]
    if raw_publish is not None:
        fields.append(f"raw_publish_per_s={raw_publish:.0f}")
    ok = lost == 0 and doubled == 0 and resend_new == 0 and errors == 0
    return "intake " + " ".join(fields), ok


if __name__ == "__main__":
    raise SystemExit(main())
