"""Benchmark: how fast change events get from the outbox to a consumer, next to raw pika.

Why these baselines: "N events/s" means little alone. In the same run, against the same
RabbitMQ, it measures what a careful publisher gets with plain pika:

- ``raw_confirmed``: one persistent message at a time, each waiting for its publisher confirm
  (the obvious reliable way, and the one the relay must beat by batching confirms);
- ``raw_unconfirmed``: persistent messages without confirms (fast, but nothing is known to be
  stored: the ceiling, not a fair rival).

Then ours, with messages of the same size:

- ``relay``: ``OutboxRelay`` publishing N committed outbox rows as CloudEvents to ``sr.events``
  with batched confirms and marking them published;
- ``e2e``: outbox insert -> relay worker -> broker -> consumer worker (envelope validation,
  idempotency record, handler, commit, ack), the clock running from the first insert until the
  consumer has acknowledged the last event. The relay and the consumer run as separate
  processes, as ``srhub worker relay`` / ``srhub worker dispatch`` do in production.

    python -m bench.events [--backend amqp|embedded] [--n N]

RabbitMQ comes from ``SRHUB_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/%2F``); the
run uses a virtual host of its own when ``rabbitmqctl`` works (else private queue names and
routing keys in the given one) and deletes what it made. The database is a temporary SQLite
file, or, with ``SRHUB_DATABASE_URL`` naming PostgreSQL, a temporary database on that server,
dropped afterwards: the bench never touches an existing outbox.

Every measurement is repeated ``--repeat`` times (default 3) and the best round is reported, for
the baselines and for ours alike: on a shared machine the best round is the one least disturbed.
The last line is ``events backend=... raw_confirmed_per_s=... raw_unconfirmed_per_s=...
relay_per_s=... e2e_per_s=... relay_vs_raw_confirmed=...``.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
PAYLOAD_BYTES = 600  # event data size; with the envelope a message is about 1 KiB


# -- isolation: a vhost and a database of our own ---------------------------------------------


def _rabbitmqctl(*args: str) -> bool:
    if not shutil.which("rabbitmqctl"):
        return False
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode == 0


@contextmanager
def private_vhost(base_url: str, name: str) -> Iterator[str]:
    """An AMQP URL on a new virtual host (deleted afterwards), or ``base_url`` if that fails."""
    import pika

    params = pika.URLParameters(base_url)
    user = params.credentials.username
    if not _rabbitmqctl("add_vhost", name):
        yield base_url
        return
    try:
        if not _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*"):
            yield base_url
            return
        password = quote(params.credentials.password, safe="")
        where = f"{params.host}:{params.port}/{quote(name, safe='')}"
        yield f"amqp://{quote(user, safe='')}:{password}@{where}"
    finally:
        _rabbitmqctl("delete_vhost", name)


@contextmanager
def private_database(given: str, name: str) -> Iterator[str]:
    """A fresh database URL: a temp SQLite file, or a temp database on the given PostgreSQL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if given and not given.startswith("sqlite"):
        admin_url = make_url(given).set(drivername="postgresql+psycopg")
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            admin.dispose()
        return
    folder = tempfile.mkdtemp(prefix="srhub-bench-")
    try:
        yield f"sqlite:///{Path(folder, 'bench.db').as_posix()}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def prepare_schema(url: str) -> None:
    from hub.dbschema import upgrade_to_head

    upgrade_to_head(url)


# -- baselines: raw pika -----------------------------------------------------------------------


def _raw_queue(channel: Any, name: str) -> None:
    channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})


def raw_rates(
    amqp_url: str, prefix: str, n_confirmed: int, n_unconfirmed: int
) -> tuple[float, float]:
    """Messages per second for raw pika with a confirm per message, and without confirms."""
    import pika

    body = b"x" * (PAYLOAD_BYTES + 400)
    props = pika.BasicProperties(delivery_mode=2, content_type="application/octet-stream")
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        confirmed_q, unconfirmed_q = f"{prefix}.raw.confirmed", f"{prefix}.raw.unconfirmed"
        for name in (confirmed_q, unconfirmed_q):
            _raw_queue(channel, name)
        try:
            plain = conn.channel()
            started = time.perf_counter()
            for _ in range(n_unconfirmed):
                plain.basic_publish("", unconfirmed_q, body, props)
            plain.queue_declare(unconfirmed_q, passive=True)  # one round trip: all were sent
            unconfirmed = n_unconfirmed / (time.perf_counter() - started)

            channel.confirm_delivery()
            started = time.perf_counter()
            for _ in range(n_confirmed):
                channel.basic_publish("", confirmed_q, body, props, mandatory=True)
            confirmed = n_confirmed / (time.perf_counter() - started)
        finally:
            admin = conn.channel()
            for name in (confirmed_q, unconfirmed_q):
                admin.queue_delete(name)
    finally:
        conn.close()
    return confirmed, unconfirmed


# -- ours --------------------------------------------------------------------------------------


def insert_events(db_url: str, prefix: str, n: int, chunk: int = 100) -> None:
    """Insert ``n`` outbox rows, ``chunk`` per transaction (like registry changes committing).

    A multi-row INSERT per transaction: the cheapest way to produce committed outbox rows, so
    that the figure measures the pipeline after the outbox rather than the ORM in front of it.
    """
    from sqlalchemy import insert

    from registry_core.db import make_engine
    from registry_core.models import OutboxEvent

    routing_key = f"{prefix}.created"
    event_type = f"org.socialregistry.{routing_key}"
    filler = "p" * PAYLOAD_BYTES
    engine = make_engine(db_url)
    try:
        for start in range(0, n, chunk):
            now = datetime.now(UTC)
            rows = [
                {
                    "event_id": str(uuid.uuid4()),
                    "type": event_type,
                    "routing_key": routing_key,
                    "source": "/srhub/bench",
                    "subject": f"person/{i % 1000}",
                    "time": now,
                    "data": {"n": i, "filler": filler},
                }
                for i in range(start, min(n, start + chunk))
            ]
            with engine.begin() as conn:
                conn.execute(insert(OutboxEvent), rows)
    finally:
        engine.dispose()


def connect_broker(backend: str, amqp_url: str, db_url: str, **options: Any) -> Any:
    from hub.broker import connect

    return connect(amqp_url if backend == "amqp" else db_url, wait_for=30, **options)


def bench_queue(prefix: str) -> Any:
    from hub.broker.base import EXCHANGE_EVENTS, QueueSpec

    return QueueSpec(f"{prefix}.events", [(EXCHANGE_EVENTS, f"{prefix}.#")])


def relay_rate(backend: str, amqp_url: str, db_url: str, prefix: str, n: int) -> float:
    """Events per second for ``OutboxRelay`` draining ``n`` committed rows."""
    from hub.pipeline.relay import OutboxRelay
    from registry_core.db import make_engine, make_session_factory

    insert_events(db_url, prefix, n)
    engine = make_engine(db_url)
    broker = connect_broker(backend, amqp_url, db_url)
    try:
        broker.declare_topology([bench_queue(prefix)])
        relay = OutboxRelay(make_session_factory(engine), broker, batch_size=500)
        started = time.perf_counter()
        published = relay.drain()
        elapsed = time.perf_counter() - started
        if published != n:
            raise RuntimeError(f"relay published {published} of {n} events")
        broker.purge(bench_queue(prefix).name)
    finally:
        broker.close()
        engine.dispose()
    return n / elapsed


def _relay_process(backend: str, amqp_url: str, db_url: str, ready: Any, stop: Any) -> None:
    from hub.pipeline.relay_worker import RelayWorker
    from registry_core.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    worker = RelayWorker(
        lambda: connect_broker(backend, amqp_url, db_url),
        make_session_factory(engine),
        batch_size=500,
        poll_interval=0.01,
        topology=(),
    )

    def watch() -> None:
        while not stop.wait(0.01):
            if worker.status.state == "running":
                ready.set()
        worker.stop()

    import threading

    threading.Thread(target=watch, daemon=True).start()
    worker.run()
    engine.dispose()


def _consumer_process(
    backend: str, amqp_url: str, db_url: str, prefix: str, n: int, ready: Any, done: Any, stop: Any
) -> None:
    import threading

    from hub.workers.handlers import HandlerRegistry
    from hub.workers.runtime import ConsumerRuntime
    from registry_core.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    handlers = HandlerRegistry("bench")
    seen = [0]

    def handle(event: dict[str, Any], _ctx: Any) -> None:
        seen[0] += 1

    handlers.register(f"{prefix}.#", handle)
    queue = bench_queue(prefix)
    runtime = ConsumerRuntime(
        f"{prefix}-consumer",
        queue,
        lambda: connect_broker(backend, amqp_url, db_url),
        make_session_factory(engine),
        handlers,
        prefetch=500,
        batch_size=250,
        receive_timeout=0.05,
        topology=[queue],
    )

    def watch() -> None:
        while not stop.is_set():
            if runtime.status.state == "running":
                ready.set()
            if runtime.status.processed >= n:
                done.set()
            stop.wait(0.005)
        runtime.stop()

    threading.Thread(target=watch, daemon=True).start()
    runtime.run()
    engine.dispose()


def e2e_rate(backend: str, amqp_url: str, db_url: str, prefix: str, n: int) -> float:
    """Events per second from the first outbox insert until the consumer acked the last."""
    ctx = multiprocessing.get_context("spawn")
    ready_broker = connect_broker(backend, amqp_url, db_url)
    try:
        ready_broker.declare_topology([bench_queue(prefix)])
    finally:
        ready_broker.close()
    stop, done = ctx.Event(), ctx.Event()
    relay_ready, consumer_ready = ctx.Event(), ctx.Event()
    relay = ctx.Process(target=_relay_process, args=(backend, amqp_url, db_url, relay_ready, stop))
    consumer = ctx.Process(
        target=_consumer_process,
        args=(backend, amqp_url, db_url, prefix, n, consumer_ready, done, stop),
    )
    relay.start()
    consumer.start()
    try:
        # The clock starts once both workers are connected and idle, as in production.
        if not (relay_ready.wait(60) and consumer_ready.wait(60)):
            raise RuntimeError("the relay or consumer process did not start")
        started = time.perf_counter()
        insert_events(db_url, prefix, n)
        if not done.wait(timeout=max(60.0, n / 100)):
            raise RuntimeError("the consumer did not receive every event in time")
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        for process in (relay, consumer):
            process.join(30)
            if process.is_alive():
                process.terminate()
                process.join(5)
    return n / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("amqp", "embedded"), default="amqp")
    parser.add_argument("--n", type=int, default=10_000, help="events per measurement")
    parser.add_argument(
        "--raw-confirmed-n",
        type=int,
        default=2_000,
        help="messages for the slow confirm-per-message baseline (capped at --n)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of all four measurements; each figure is its best round (like timeit), "
        "which keeps a shared machine's noise out of the comparison",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be at least 1")

    base_amqp = os.environ.get("SRHUB_AMQP_URL") or DEFAULT_AMQP
    run_id = f"b{uuid.uuid4().hex[:10]}"
    rounds: dict[str, list[float]] = {"confirmed": [], "unconfirmed": [], "relay": [], "e2e": []}
    with contextlib.ExitStack() as stack:
        amqp_url = stack.enter_context(private_vhost(base_amqp, f"srhub_bench_{run_id}"))
        db_url = stack.enter_context(
            private_database(os.environ.get("SRHUB_DATABASE_URL", ""), f"srhub_bench_{run_id}")
        )
        prepare_schema(db_url)
        print(
            f"events bench: backend={args.backend} n={args.n} repeat={args.repeat} "
            f"database={db_url.split(':')[0]} cores={os.cpu_count()}"
        )
        queues: list[str] = []
        for round_no in range(1, args.repeat + 1):
            try:
                confirmed, unconfirmed = raw_rates(
                    amqp_url, f"{run_id}{round_no}", min(args.raw_confirmed_n, args.n), args.n
                )
            except Exception as exc:  # pika raises several unrelated types for "cannot connect"
                parser.exit(
                    2,
                    f"events bench: the raw pika baselines need RabbitMQ "
                    f"({type(exc).__name__}); set SRHUB_AMQP_URL\n",
                )
            relay_prefix, e2e_prefix = f"{run_id}r{round_no}", f"{run_id}e{round_no}"
            relay = relay_rate(args.backend, amqp_url, db_url, relay_prefix, args.n)
            e2e = e2e_rate(args.backend, amqp_url, db_url, e2e_prefix, args.n)
            queues += [f"{relay_prefix}.events", f"{e2e_prefix}.events"]
            for key, value in zip(rounds, (confirmed, unconfirmed, relay, e2e), strict=True):
                rounds[key].append(value)
            print(
                f"  round {round_no}: raw confirmed {confirmed:6.0f}/s, raw unconfirmed "
                f"{unconfirmed:6.0f}/s, relay {relay:6.0f}/s, end to end {e2e:6.0f}/s"
            )
        if args.backend == "amqp":
            cleanup_queues(amqp_url, queues)
    best = {key: max(values) for key, values in rounds.items()}
    print("best of the rounds:")
    print(f"  raw pika, confirm per persistent message : {best['confirmed']:10.0f} msg/s")
    print(f"  raw pika, no confirms (ceiling)          : {best['unconfirmed']:10.0f} msg/s")
    print(f"  relay (outbox -> sr.events, confirmed)   : {best['relay']:10.0f} events/s")
    print(f"  end to end (insert -> relay -> ack)      : {best['e2e']:10.0f} events/s")
    print(
        f"events backend={args.backend} raw_confirmed_per_s={best['confirmed']:.0f} "
        f"raw_unconfirmed_per_s={best['unconfirmed']:.0f} relay_per_s={best['relay']:.0f} "
        f"e2e_per_s={best['e2e']:.0f} "
        f"relay_vs_raw_confirmed={best['relay'] / best['confirmed']:.2f}"
    )
    return 0


def cleanup_queues(amqp_url: str, names: list[str]) -> None:
    """Delete the bench's queues (needed when running in a shared virtual host)."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        for name in names:
            channel.queue_delete(name)
    finally:
        conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
