"""Benchmark: the ingest and event paths with 1, 2 and 4 worker processes.

``srhub worker ingest`` and ``srhub worker dispatch`` scale out by running more processes that
compete for the same RabbitMQ queue (docs/deployment.md). This measures what that buys, against
one RabbitMQ and one PostgreSQL, with the real worker command in real processes:

- **ingest**: N tax returns (the tax connector's own rows, ``tax.income_row``) published to
  ``sr.inbound``; K ``srhub worker ingest`` processes map them, match the taxpayer by national
  ID and record the income facts with provenance in the registry (one transaction per batch,
  the processed-message record beside it). The clock runs from the first publish until the
  workers have committed the last message.
- **events**: the registry events those returns produced (``household.updated`` and the like,
  one per applied return) relayed from the outbox to ``sr.events`` by one relay (this process),
  and K ``srhub worker dispatch`` processes matching each against two program subscriptions and
  forwarding each subscriber's copy (consent applied) to its delivery queue. The clock runs from
  the relay's first publish until the dispatchers have committed the last event.

Each figure is printed beside the single-process one (``x1.00``, ``x1.6``, …). The single
process is the baseline the issue asks for: the same command, the same messages, one process.
Before the rounds, the raw pika publish rate of the same RabbitMQ is printed as the ceiling
of the broker itself.

    python -m bench.scale [--households 1500] [--messages 3000] [--workers 1,2,4]

The database is a temporary database on ``SRHUB_DATABASE_URL`` (else
``SRHUB_TEST_DATABASE_URL``), which must be PostgreSQL: SQLite serialises writers, so more
processes would measure its write lock. RabbitMQ is ``SRHUB_AMQP_URL`` (else
``SRHUB_TEST_AMQP_URL``, else guest on localhost), in a virtual host of its own when
``rabbitmqctl`` works. Both are deleted afterwards. The last line is
``scale workers_1=X workers_2=Y workers_4=Z`` in events per second (the event path), preceded
by the ingest figures on a line of their own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.events import DEFAULT_AMQP, private_database, private_vhost, raw_rates

PROGRAMS = ("scale-a", "scale-b")
# The counts ``srhub worker`` prints when it stops.
STOP_COUNTS = re.compile(r"\b(processed|failed|dead_lettered|requeued)=(\d+)")


@dataclass(frozen=True)
class Round:
    workers: int
    ingest_per_s: float
    events_per_s: float
    events: int
    ingest_retried: int  # failed attempts the ingest workers retried (lost races, lock waits)
    dispatch_retried: int


@dataclass(frozen=True)
class Earner:
    """A taxpayer of the seeded registry and one of their returns, as the tax file has it."""

    row: dict[str, str]


def _database_url(parser: argparse.ArgumentParser) -> str:
    url = os.environ.get("SRHUB_DATABASE_URL") or os.environ.get("SRHUB_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        parser.exit(
            2,
            "scale bench: needs PostgreSQL in SRHUB_DATABASE_URL (or SRHUB_TEST_DATABASE_URL); "
            "SQLite lets one writer in at a time, so it cannot show scaling\n",
        )
    return url


def _worker_env(db_url: str, amqp_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRHUB_")}
    env.update(
        {
            "SRHUB_DATABASE_URL": db_url,
            "SRHUB_AMQP_URL": amqp_url,
            "SRHUB_DATA_DIR": str(data_dir),
            "SRHUB_LOG_LEVEL": "WARNING",
        }
    )
    return env


@contextlib.contextmanager
def hub_environment(env: dict[str, str]) -> Iterator[Any]:
    """A ``HubRuntime`` on the bench's database, broker and key file (what the workers read)."""
    from hub.runtime import HubRuntime
    from hub.settings import load_settings

    saved = {k: os.environ.get(k) for k in env if k.startswith("SRHUB_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("SRHUB_")})
    try:
        runtime = HubRuntime(load_settings())
        try:
            yield runtime
        finally:
            runtime.close()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def seed(runtime: Any, households: int, people_seed: int = 5) -> list[Earner]:
    """Register ``households`` households of the synthetic population; return every income
    return whose earner is registered with a national ID (the tax connector's rows)."""
    from hub.sandbox_seed import seed_registry
    from sandbox_mocks.population import iter_households
    from sandbox_mocks.tax.records import income_row

    chosen = []
    for household in iter_households(people_seed, households * 5):
        if household.members:
            chosen.append(household)
        if len(chosen) >= households:
            break
    runtime.registry.ensure_identifier_systems()
    if seed_registry(runtime.registry, chosen) < len(chosen) // 2:
        raise RuntimeError("the registry refused most of the seeded households")
    earners = []
    for household in chosen:
        by_tax_id = {p.tax_id: p for p in household.members if p.tax_id}
        for income in household.incomes:
            person = by_tax_id.get(income.tax_id)
            if person is not None and person.national_id and person.death_date is None:
                earners.append(Earner(income_row(income, person, "XTS")))
    if not earners:
        raise RuntimeError("the seeded population has no registered taxpayer")
    return earners


def subscribe(runtime: Any, broker: Any) -> None:
    """Two programs subscribed to every household and person event by AMQP: each event the
    dispatcher handles is matched against both and copied to each delivery queue."""
    from hub.subscriptions import service

    with runtime.sessions() as session, session.begin():
        for program in PROGRAMS:
            service.create(
                session,
                runtime.cipher,
                {
                    "code": program,
                    "channel": "amqp",
                    "event_types": ["household.*", "person.*"],
                    "purpose": "social_protection",
                },
                program_code=program,
                created_by="bench.scale",
            )
    for program in PROGRAMS:
        service.declare_queue(broker, program)


def tax_messages(earners: Sequence[Earner], n: int, round_no: int) -> list[Any]:
    """``n`` tax returns for the round: every earner's return again with a new record number
    and an amount of the round, so each is applied (a new fact), never a duplicate."""
    from connectors.base.envelope import raw_event
    from connectors.base.records import RawRecord
    from hub.broker import Message
    from standards.cloudevents import to_json_bytes

    now = datetime.now(UTC)
    messages = []
    for i in range(n):
        earner = earners[i % len(earners)]
        cycle = i // len(earners)
        row = dict(earner.row)
        row["RECORD_NO"] = f"r{round_no}-{i}"
        row["GROSS_INCOME"] = f"{1000 + 97 * round_no + 13 * cycle + i % 89}.00"
        record = RawRecord("income_row", row, source_id=f"scale-r{round_no}:{i}")
        event = raw_event("tax", record, time=now)
        messages.append(Message(to_json_bytes(event), "tax.income_row", event["id"]))
    return messages


def processed(runtime: Any, consumer: str) -> int:
    from sqlalchemy import func, select

    from hub.workers.idempotency import ProcessedMessage

    with runtime.sessions() as session:
        count = session.scalar(
            select(func.count())
            .select_from(ProcessedMessage)
            .where(ProcessedMessage.consumer == consumer)
        )
    return int(count or 0)


def consumers_on(amqp_url: str, queue: str) -> int:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(conn.channel().queue_declare(queue, passive=True).method.consumer_count)
    finally:
        conn.close()


@contextlib.contextmanager
def workers(kind: str, count: int, env: dict[str, str], amqp_url: str) -> Iterator[dict[str, int]]:
    """``count`` ``srhub worker KIND`` processes, yielded once all are consuming; SIGTERM after.
    The dict yielded is filled, once they stopped, with their summed counts (``failed``: the
    handler attempts that failed and were retried, e.g. a lost race on a household row)."""
    from hub.workers.topology import DISPATCH_QUEUE, INGEST_QUEUE

    queue = (INGEST_QUEUE if kind == "ingest" else DISPATCH_QUEUE).name
    counts: dict[str, int] = {}
    with contextlib.ExitStack() as files:
        logs = [files.enter_context(tempfile.TemporaryFile()) for _ in range(count)]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "worker", kind],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        try:
            deadline = time.monotonic() + 120
            while consumers_on(amqp_url, queue) < count:
                for process, log in zip(processes, logs, strict=True):
                    if process.poll() is not None:
                        log.seek(0)
                        output = log.read()[-2000:].decode()
                        raise RuntimeError(f"worker {kind} exited: {output}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{count} {kind} workers did not start within 120 s")
                time.sleep(0.1)
            yield counts
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            for log in logs:
                log.seek(0)
                for key, value in STOP_COUNTS.findall(log.read().decode(errors="replace")):
                    counts[key] = counts.get(key, 0) + int(value)


def wait_for_count(runtime: Any, consumer: str, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while processed(runtime, consumer) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{consumer}: {processed(runtime, consumer)} of {target} messages in {timeout} s"
            )
        time.sleep(0.05)


def one_round(
    runtime: Any,
    broker: Any,
    env: dict[str, str],
    amqp_url: str,
    earners: Sequence[Earner],
    n: int,
    count: int,
    round_no: int,
) -> Round:
    """Ingest ``n`` returns with ``count`` ingest workers, then dispatch the events they made
    with ``count`` dispatch workers."""
    from hub.broker.base import EXCHANGE_INBOUND
    from hub.pipeline.relay import OutboxRelay

    messages = tax_messages(earners, n, round_no)
    before = processed(runtime, "ingest")
    with workers("ingest", count, env, amqp_url) as ingest_counts:
        started = time.perf_counter()
        for start in range(0, n, 500):
            broker.publish(EXCHANGE_INBOUND, messages[start : start + 500])
        wait_for_count(runtime, "ingest", before + n, timeout=max(120.0, n / 10))
        ingest_elapsed = time.perf_counter() - started

    before = processed(runtime, "dispatch")
    with workers("dispatch", count, env, amqp_url) as dispatch_counts:
        relay = OutboxRelay(runtime.sessions, broker, batch_size=500)
        started = time.perf_counter()
        relayed = relay.drain()
        wait_for_count(runtime, "dispatch", before + relayed, timeout=max(120.0, relayed / 10))
        events_elapsed = time.perf_counter() - started
    for program in PROGRAMS:
        broker.purge(f"sr.deliver.{program}")
    return Round(
        count,
        n / ingest_elapsed,
        relayed / events_elapsed,
        relayed,
        ingest_counts.get("failed", 0),
        dispatch_counts.get("failed", 0),
    )


def parse_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or any(c < 1 or c > 16 for c in counts):
        raise argparse.ArgumentTypeError("worker counts are 1..16, comma-separated")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1500, help="registry size")
    parser.add_argument("--messages", type=int, default=3000, help="tax returns per round")
    parser.add_argument("--workers", type=parse_counts, default=[1, 2, 4])
    args = parser.parse_args(argv)
    if args.households < 10 or args.messages < 100:
        parser.error("--households must be at least 10 and --messages at least 100")

    from hub.broker import connect
    from hub.dbschema import upgrade_to_head
    from hub.pipeline.relay import OutboxRelay
    from hub.workers.topology import DISPATCH_QUEUE, INGEST_QUEUE

    base_db = _database_url(parser)
    base_amqp = (
        os.environ.get("SRHUB_AMQP_URL") or os.environ.get("SRHUB_TEST_AMQP_URL") or DEFAULT_AMQP
    )
    run_id = f"s{uuid.uuid4().hex[:10]}"
    rounds: list[Round] = []
    with contextlib.ExitStack() as stack:
        amqp_url = stack.enter_context(private_vhost(base_amqp, f"srhub_scale_{run_id}"))
        db_url = stack.enter_context(private_database(base_db, f"srhub_scale_{run_id}"))
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="srhub-scale-")))
        upgrade_to_head(db_url)
        env = _worker_env(db_url, amqp_url, data_dir)
        runtime = stack.enter_context(hub_environment(env))
        broker = connect(amqp_url, wait_for=30)
        stack.callback(broker.close)
        broker.declare_topology([INGEST_QUEUE, DISPATCH_QUEUE])
        confirmed, unconfirmed = raw_rates(amqp_url, run_id, 2000, 10_000)
        print(
            f"scale bench: households={args.households} messages={args.messages} "
            f"workers={','.join(map(str, args.workers))} cores={os.cpu_count()}"
        )
        print(
            f"  raw pika on this RabbitMQ: {confirmed:,.0f} msg/s confirmed one by one, "
            f"{unconfirmed:,.0f} msg/s unconfirmed (the broker's ceiling)"
        )
        started = time.perf_counter()
        earners = seed(runtime, args.households)
        subscribe(runtime, broker)
        seeded_events = OutboxRelay(runtime.sessions, broker, batch_size=500).drain()
        broker.purge(DISPATCH_QUEUE.name)
        print(
            f"  seeded {args.households} households ({len(earners)} taxpayers, "
            f"{seeded_events} seed events set aside) in {time.perf_counter() - started:.1f} s"
        )
        for round_no, count in enumerate(args.workers, start=1):
            result = one_round(
                runtime, broker, env, amqp_url, earners, args.messages, count, round_no
            )
            rounds.append(result)
            base = rounds[0]
            print(
                f"  {count} worker process(es): ingest {result.ingest_per_s:7.0f} returns/s "
                f"(x{result.ingest_per_s / (base.ingest_per_s or 1):.2f}), events "
                f"{result.events_per_s:7.0f} events/s "
                f"(x{result.events_per_s / (base.events_per_s or 1):.2f}, {result.events} events); "
                f"retried {result.ingest_retried} returns, {result.dispatch_retried} events"
            )
    print("scale_ingest " + " ".join(f"workers_{r.workers}={r.ingest_per_s:.0f}" for r in rounds))
    print("scale " + " ".join(f"workers_{r.workers}={r.events_per_s:.0f}" for r in rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
