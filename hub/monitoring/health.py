"""The health model: one JSON document saying what works, what does not, and since when.

``health_snapshot(source)`` reads what the parts already keep (connector statuses, worker
statuses, broker queue depths, the message log, the subscriptions' delivery log, the metrics
recorder) rather than asking them to report: a part that hangs cannot then hide it, and
nothing here can slow the traffic down. ``source`` is a ``MonitoringContext``, a Flask app (the
context ``Monitoring.init_app`` put in its extensions, else one made from the app's runtime
and connector host) or a ``HubRuntime``. There is no process-wide context.

States are those of ``connectors.base.status``: ``up``, ``degraded`` (working, recent failures),
``down`` (circuit open / only failures), ``paused`` (stopped on purpose). The hub as a whole is
``down`` when its database or broker is unreachable, ``degraded`` when any part is not up.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from hub.monitoring.metrics import RECORDER, Recorder
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

UP, DEGRADED, DOWN, PAUSED = "up", "degraded", "down", "paused"
ALERT_WINDOW_SECONDS = 300


class BrokerProbe:
    """Broker connections for health checks. The embedded broker's connection (an SQL engine)
    is kept and shared under a lock; a RabbitMQ connection is opened for each check and closed
    after it, because pika connections must not be shared between threads (request threads
    come and go) and an idle one would miss its heartbeats."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._broker: Any = None
        self._lock = threading.Lock()

    def depths(self, queues: list[str]) -> dict[str, int | None]:
        from hub.broker import connect
        from hub.broker.errors import QueueNotFound

        with self._lock:
            if self._broker is None:
                self._broker = connect(self._settings, wait_for=0)
            found: dict[str, int | None] = {}
            try:
                for name in queues:
                    try:
                        found[name] = int(self._broker.queue_depth(name))
                    except QueueNotFound:
                        found[name] = None  # not declared yet: nothing published there
            except Exception:
                self._close_locked()
                raise
            if not self._settings.uses_embedded_broker:
                self._close_locked()
            return found

    def backend(self) -> str:
        return "embedded" if self._settings.uses_embedded_broker else "amqp"

    def _close_locked(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            with contextlib.suppress(Exception):
                broker.close()

    def close(self) -> None:
        with self._lock:
            self._close_locked()


@dataclass
class MonitoringContext:
    """What ``health_snapshot`` reads: passed in, or kept in a Flask app's extensions."""

    settings: Any
    runtime: Any
    host: Any = None
    workers: Any = None  # a WorkerGroup (``.statuses()``) or a dict name -> object with .status
    recorder: Recorder = RECORDER
    probe: BrokerProbe | None = None
    heartbeats: dict[str, datetime] = field(default_factory=dict)
    writer: Any = None  # the MessageLogWriter of this process, when it records the log

    def broker_probe(self) -> BrokerProbe:
        if self.probe is None:
            self.probe = BrokerProbe(self.settings)
        return self.probe


EXTENSION_KEY = "srhub_monitoring_context"


def context_for(source: Any) -> MonitoringContext:
    """The context of ``source``: itself, the one in a Flask app's extensions (completed from
    the app's runtime, connector host and worker group), or a new one for a ``HubRuntime``."""
    if isinstance(source, MonitoringContext):
        return source
    extensions = getattr(source, "extensions", None)
    if extensions is None:  # a HubRuntime
        return MonitoringContext(source.settings, source)
    found: MonitoringContext | None = extensions.get(EXTENSION_KEY)
    if found is None:
        runtime = extensions.get("srhub_runtime")
        found = extensions.setdefault(EXTENSION_KEY, MonitoringContext(runtime.settings, runtime))
    if found.host is None:
        found.host = extensions.get("srhub_connector_host")
    if found.workers is None:
        found.workers = extensions.get("srhub_workers")  # the dashboard's key for the group
    return found


# ---------------------------------------------------------------------------- checks


def check_database(runtime: Any) -> dict[str, Any]:
    started = time.monotonic()
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # the reason, never the URL or credentials
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def watched_queues(subscriptions: list[str]) -> list[str]:
    from hub.broker.base import QUEUE_DEAD, delivery_queue_name
    from hub.workers.topology import WORKER_QUEUES

    names = [q.name for q in WORKER_QUEUES] + [QUEUE_DEAD]
    return names + [delivery_queue_name(code) for code in subscriptions]


def check_broker(context: MonitoringContext, subscriptions: list[str]) -> dict[str, Any]:
    from hub.broker.base import QUEUE_DEAD

    probe = context.broker_probe()
    started = time.monotonic()
    try:
        depths = probe.depths(watched_queues(subscriptions))
    except Exception as exc:
        return {"ok": False, "backend": probe.backend(), "error": type(exc).__name__}
    return {
        "ok": True,
        "backend": probe.backend(),
        "latency_ms": round((time.monotonic() - started) * 1000, 1),
        "queues": depths,
        "dead_letters": depths.get(QUEUE_DEAD) or 0,
    }


# ---------------------------------------------------------------------------- parts


def _runner_alive(host: Any, name: str) -> bool | None:
    runners = (getattr(host, "runners", None) or {}).get(name)
    if not runners:
        return None
    threads = [getattr(r, "_thread", None) for r in runners]
    return all(t is not None and t.is_alive() for t in threads)


def _latest(*values: str | None) -> str | None:
    present = [v for v in values if v]
    return max(present) if present else None


def connector_health(
    context: MonitoringContext, pending: dict[str, dict[str, Any]], failed: dict[str, int]
) -> dict[str, dict[str, Any]]:
    host = context.host
    statuses: dict[str, Any] = dict(host.statuses()) if host is not None else {}
    recorder = context.recorder
    for name in recorder.names("ingest") + recorder.names("inbound"):
        statuses.setdefault(name, {"name": name, "state": None})  # seen, but not hosted here
    now = utcnow()
    found: dict[str, dict[str, Any]] = {}
    for name, status in sorted(statuses.items()):
        calls = recorder.summary(f"partner:{name}")
        calls["alert_window"] = recorder.window(f"partner:{name}", ALERT_WINDOW_SECONDS)
        records = recorder.summary(f"ingest:{name}")
        records["alert_window"] = recorder.window(f"ingest:{name}", ALERT_WINDOW_SECONDS)
        published = recorder.summary(f"inbound:{name}")
        waiting = pending.get(name) or {}
        oldest = waiting.get("oldest_at")
        alive = _runner_alive(host, name) if host is not None else None
        if alive:
            context.heartbeats[name] = now
        beat = context.heartbeats.get(name)
        heartbeat = _latest(
            beat.isoformat() if beat else None,
            status.get("last_success_at"),
            status.get("last_error_at"),
            published.get("last_event_at"),
        )
        state = status.get("state")
        if state is None:  # runs in another process: judge by its records
            state = DEGRADED if records["alert_window"]["error_rate"] > 0.5 else UP
        found[name] = {
            "name": name,
            "state": state,
            "circuit": status.get("circuit"),
            "paused": bool(status.get("paused")),
            "consecutive_failures": status.get("consecutive_failures", 0),
            "last_success_at": _latest(status.get("last_success_at"), records["last_ok_at"]),
            "last_error_at": _latest(status.get("last_error_at"), records["last_error_at"]),
            "last_error": status.get("last_error") or records["last_error"],
            "heartbeat_at": heartbeat,
            "runner_alive": alive,
            "calls": calls,
            "records": records,
            "published": published,
            "backlog": int(waiting.get("backlog", 0)),
            "lag_seconds": round((now - oldest).total_seconds(), 1) if oldest else 0.0,
            "dead_letters_24h": failed.get(name, 0),
            "counts": status.get("counts") or {},
            # per subscription (WebSub topic, DCI event type): state and why it is not active
            "subscriptions": status.get("subscriptions") or {},
            "problems": status.get("problems") or [],
        }
    return found


def _failed_by_connector(session: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from hub.monitoring.message_log import INBOUND, MessageLogEntry

    since = utcnow() - timedelta(days=1)
    rows = session.execute(
        select(MessageLogEntry.connector, func.count())
        .where(MessageLogEntry.status == "failed", MessageLogEntry.direction == INBOUND)
        .where(MessageLogEntry.started_at >= since)
        .group_by(MessageLogEntry.connector)
    ).all()
    return {name: int(count) for name, count in rows}


def _worker_statuses(workers: Any) -> dict[str, dict[str, Any]]:
    if workers is None:
        return {}
    if hasattr(workers, "statuses"):
        found: dict[str, dict[str, Any]] = workers.statuses()
        return found
    return {name: w.status.snapshot() for name, w in dict(workers).items()}


def _worker_state(snapshot: dict[str, Any]) -> str:
    state = snapshot.get("state")
    if state == "running":
        return UP
    if state in ("retrying", "starting"):
        return DEGRADED
    return DOWN


def health_snapshot(source: Any, *, with_database: bool = True) -> dict[str, Any]:
    """Everything the dashboard and ``/health/ready`` show, as one JSON-ready dict."""
    from hub.monitoring import subscriptions_health
    from hub.monitoring.message_log import pending_by_connector

    context = context_for(source)
    runtime = context.runtime
    database = check_database(runtime) if with_database else {"ok": True}
    pending: dict[str, dict[str, Any]] = {}
    failed: dict[str, int] = {}
    subscriptions: dict[str, dict[str, Any]] = {}
    firing = 0
    if database["ok"]:
        try:
            with runtime.sessions() as session:
                pending = pending_by_connector(session)
                failed = _failed_by_connector(session)
                firing = _firing_alerts(session)
        except Exception as exc:  # e.g. tables not migrated yet: say so, keep the rest
            database = {**database, "warning": f"monitoring tables: {type(exc).__name__}"}
        try:  # its own session: a missing table must not abort the queries above
            with runtime.sessions() as session:
                subscriptions = subscriptions_health.subscription_health(session, context.recorder)
        except Exception as exc:
            database = {**database, "warning": f"subscription tables: {type(exc).__name__}"}
    broker = check_broker(context, sorted(subscriptions))
    queues = broker.get("queues") or {}
    for code, entry in subscriptions.items():
        from hub.broker.base import delivery_queue_name

        entry["backlog"] = queues.get(delivery_queue_name(code)) or 0
    connectors = connector_health(context, pending, failed)
    workers = {
        name: {**snap, "health": _worker_state(snap)}
        for name, snap in _worker_statuses(context.workers).items()
    }
    writer = context.writer
    parts = (
        [c["state"] for c in connectors.values()]
        + [s["state"] for s in subscriptions.values()]
        + [w["health"] for w in workers.values()]
    )
    if not database["ok"] or not broker["ok"]:
        overall = DOWN
    elif any(p in (DOWN, DEGRADED) for p in parts) or firing:
        overall = DEGRADED
    else:
        overall = UP
    return {
        "status": overall,
        "generated_at": utcnow().isoformat(),
        "database": database,
        "broker": broker,
        "connectors": connectors,
        "subscriptions": subscriptions,
        "workers": workers,
        "alerts": {"firing": firing},
        "message_log": {
            "recording": writer is not None,
            "written": writer.written if writer else 0,
            "dropped": writer.dropped if writer else 0,
            "last_error": writer.last_error if writer else None,
        },
    }


def _firing_alerts(session: Any) -> int:
    from sqlalchemy import func, select

    from hub.monitoring.alerts import FIRING, Alert

    return int(
        session.execute(
            select(func.count()).select_from(Alert).where(Alert.state == FIRING)
        ).scalar()
        or 0
    )


def readiness(source: Any) -> tuple[bool, dict[str, Any]]:
    """(ready, detail) for ``/health/ready``: ready when the database and the broker answer.

    Connectors are reported but do not make the hub unready: a partner outage must not take
    the hub's API (and every other partner) out of service; it shows as ``degraded``.
    """
    snapshot = health_snapshot(source)
    checks = {
        "database": snapshot["database"],
        "broker": {k: v for k, v in snapshot["broker"].items()},
        "connectors": {
            name: {
                "state": c["state"],
                "circuit": c["circuit"],
                "last_success_at": c["last_success_at"],
                "last_error": c["last_error"],
                "problems": c["problems"],
            }
            for name, c in snapshot["connectors"].items()
        },
    }
    ready = bool(snapshot["database"]["ok"] and snapshot["broker"]["ok"])
    return ready, {"status": snapshot["status"] if ready else DOWN, "checks": checks}
