"""Helpers for stories on the live hub that change seeded households: wait until the partner
feeds' first pass is over, pick families no birth or death touches, retry a write that lost a
race with a feed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from connectors.base.runners import PullRunner
from hub.broker import Broker, connect
from hub.workers.topology import CROSSCHECK_QUEUE, INGEST_QUEUE
from registry_core.errors import ConflictError
from registry_core.models import OutboxEvent
from sandbox_mocks.population import iter_vital_events
from tests.scenarios.conftest import LiveHub

T = TypeVar("T")


def quiet_families(hub: LiveHub) -> list[tuple[Any, dict[str, Any]]]:
    """Seeded families no birth or death touches while the test runs (a birth would change
    the household's version under the visit), with their registry records, by address."""
    touched = {e.household_key for e in iter_vital_events(42, hub.sandbox.config.people)}
    records, _total = hub.registry.list_households(limit=1000)
    by_address = {(r["admin_area_code"], r.get("address")): r for r in records}
    found = []
    for family in hub.sandbox.households:
        record = by_address.get((family.locality_code, family.address))
        if record and family.household_key not in touched and record["status"] == "active":
            found.append((family, record))
    return found


def again_on_conflict(write: Callable[[], T]) -> T:
    """A write retried when a partner feed changed the household at the same moment (the
    registry's answer to a lost race is "read it again")."""
    for _ in range(5):
        try:
            return write()
        except ConflictError:
            time.sleep(0.5)
    return write()


def _first_passes_pending(hub: LiveHub) -> list[str]:
    """The pull connectors (GIS layers, program enrolments) whose first poll has not yet
    succeeded: their records are still to come, whatever the registry looks like now."""
    return [
        name
        for name, runners in hub.host.runners.items()
        if any(isinstance(r, PullRunner) for r in runners)
        and hub.host.connectors[name].status.last_success_at is None
    ]


def _work_waiting(hub: LiveHub, broker: Broker) -> int:
    """Messages the workers have still to take (ingest, cross-checks) plus events the relay
    has still to publish."""
    queued = sum(broker.queue_depth(q.name) for q in (INGEST_QUEUE, CROSSCHECK_QUEUE))
    with hub.runtime.sessions() as session:
        unpublished = session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )
    return queued + int(unpublished or 0)


def wait_settled(hub: LiveHub, quiet_for: float = 3.0) -> None:
    """Wait until the partner feeds' first pass is over: every pull connector has polled
    once, nothing waits in the workers' queues or the outbox, and no new registry event came
    for ``quiet_for`` seconds. (A quiet spell alone was not enough: on a loaded machine the
    program enrolments came more than 3 s after the GIS layers and touched a "quiet" family
    under a field visit.)"""
    last, calm_since = -1, time.monotonic()
    deadline = time.monotonic() + 90
    with connect(hub.settings, wait_for=0) as broker:
        while time.monotonic() < deadline:
            with hub.runtime.sessions() as session:
                newest = session.scalar(select(func.max(OutboxEvent.sequence))) or 0
            if newest != last or _first_passes_pending(hub) or _work_waiting(hub, broker):
                last, calm_since = newest, time.monotonic()
            elif time.monotonic() - calm_since >= quiet_for:
                return
            time.sleep(0.2)
        waiting = _work_waiting(hub, broker)
    pytest.fail(
        "the registry did not settle within 90 s "
        f"(first polls pending: {_first_passes_pending(hub)}, work waiting: {waiting})"
    )
