"""Where the dashboard's numbers come from, each behind one small function.

The pages only read: live connector statuses from the ConnectorHost of this process, worker
statuses when the process runs workers, subscriptions from their table (keyset-paginated), the
dead-letter queue through ``hub.deadletters`` and throughput from the monitoring recorder when
it is present. Anything missing (a process without connectors, a checkout without monitoring)
shows as "none" instead of failing the page.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

HOST_KEY = "srhub_connector_host"
WORKERS_KEY = "srhub_workers"
SUBSCRIPTIONS_PAGE = 50

# State -> CSS class; the same words the connector and worker statuses use.
STATE_CLASSES: dict[str, str] = {
    "up": "ok",
    "running": "ok",
    "active": "ok",
    "subscribe": "ok",
    "degraded": "warn",
    "retrying": "warn",
    "waiting_for_broker": "warn",
    "starting": "warn",
    "paused": "paused",
    "down": "bad",
    "stopped": "off",
    "unsubscribe": "off",
    "ended": "off",
    "delivered": "ok",
    "queued": "ok",
    "applied": "ok",
    "received": "warn",
    "failed": "bad",
    "dead_lettered": "bad",
    "withheld": "off",
    "duplicate": "off",
    "firing": "bad",
    "resolved": "off",
}


def state_class(state: str | None) -> str:
    return STATE_CLASSES.get((state or "").lower(), "unknown")


# --- connectors ------------------------------------------------------------------------------


def connector_host() -> Any | None:
    return current_app.extensions.get(HOST_KEY)


def connector_statuses() -> dict[str, dict[str, Any]]:
    host = connector_host()
    if host is None:
        return {}
    return dict(sorted(host.statuses().items()))


def connector_runners(name: str) -> list[Any]:
    host = connector_host()
    return list(host.runners.get(name, [])) if host is not None else []


def checkpoint_of(sessions: sessionmaker[Session], name: str) -> list[dict[str, Any]]:
    """The saved checkpoints of one connector (one row per stream), without their values'
    internals beyond a short preview: checkpoints are cursors, not personal data."""
    from hub.checkpoints import ConnectorCheckpoint

    with sessions() as db:
        rows = db.scalars(
            select(ConnectorCheckpoint).where(ConnectorCheckpoint.connector == name).limit(20)
        ).all()
        return [
            {
                "stream": row.stream,
                "value": row.value_json[:120],
                "updated_at": row.updated_at,
            }
            for row in rows
        ]


# --- workers ---------------------------------------------------------------------------------


def worker_statuses() -> dict[str, dict[str, Any]]:
    """Statuses of the workers running in this process: the group ``srhub run`` keeps in the
    app's extensions, else the one the app's monitoring context knows."""
    group = current_app.extensions.get(WORKERS_KEY)
    if group is None:
        from hub.monitoring.health import EXTENSION_KEY

        context = current_app.extensions.get(EXTENSION_KEY)
        group = getattr(context, "workers", None)
    statuses = getattr(group, "statuses", None)
    if callable(statuses):
        return dict(sorted(statuses().items()))
    if isinstance(group, dict):  # name -> worker with a .status
        return {name: w.status.snapshot() for name, w in sorted(group.items())}
    return {}


# --- subscriptions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionPage:
    rows: list[dict[str, Any]]
    next_after: str | None


def program_subscriptions(
    sessions: sessionmaker[Session], after: str | None = None, size: int = SUBSCRIPTIONS_PAGE
) -> SubscriptionPage:
    """Program subscriptions by code (unique index), ``size`` at a time, each with its latest
    delivery outcome (one indexed look-up per row on (subscription_code, id))."""
    from hub.subscriptions.tables import DeliveryAttempt, Subscription

    query = select(Subscription).order_by(Subscription.code).limit(size + 1)
    if after:
        query = query.where(Subscription.code > after)
    rows: list[dict[str, Any]] = []
    with sessions() as db:
        found = list(db.scalars(query))
        for row in found[:size]:
            last = db.execute(
                select(
                    DeliveryAttempt.status,
                    DeliveryAttempt.error,
                    DeliveryAttempt.started_at,
                    DeliveryAttempt.event_type,
                )
                .where(DeliveryAttempt.subscription_code == row.code)
                .order_by(DeliveryAttempt.id.desc())
                .limit(1)
            ).first()
            rows.append(
                {
                    "code": row.code,
                    "program": row.program_code,
                    "channel": row.channel,
                    "events": ", ".join(row.event_types or []),
                    "state": row.status,
                    "last_delivery": last.status if last else None,
                    "last_event": last.event_type if last else None,
                    "last_delivery_at": last.started_at if last else None,
                    "last_error": last.error if last else None,
                }
            )
    more = len(found) > size
    return SubscriptionPage(rows, rows[-1]["code"] if more and rows else None)


def dci_subscriptions(
    sessions: sessionmaker[Session], after: str | None = None, size: int = SUBSCRIPTIONS_PAGE
) -> SubscriptionPage:
    """DCI ``registry/subscribe`` subscriptions ordered by code (the primary key)."""
    from hub.dci.tables import DciSubscription

    query = select(DciSubscription).order_by(DciSubscription.code).limit(size + 1)
    if after:
        query = query.where(DciSubscription.code > after)
    with sessions() as db:
        found = list(db.scalars(query))
    more = len(found) > size
    rows = [
        {
            "code": row.code,
            "sender": row.sender_id,
            "event_type": row.reg_event_type,
            "record_type": row.notify_record_type,
            "state": "active" if row.status == "subscribe" else "ended",
            "created_at": row.created_at,
            "ended_at": row.ended_at,
        }
        for row in found[:size]
    ]
    return SubscriptionPage(rows, str(rows[-1]["code"]) if more and rows else None)


# --- alerts (hub.monitoring) -------------------------------------------------------------------

ALERTS_SHOWN = 20


def recent_alerts(sessions: sessionmaker[Session]) -> list[dict[str, Any]] | None:
    """Firing alerts first, then the latest resolved ones, each with when it began and ended."""
    from hub.monitoring.alerts import list_alerts

    with sessions() as db:
        return list_alerts(db, limit=ALERTS_SHOWN)


# --- the message log (hub.monitoring) --------------------------------------------------------

MESSAGE_STATUSES: tuple[str, ...] = ("received", "retrying", "failed")


@dataclass(frozen=True)
class MessagePage:
    rows: list[dict[str, Any]]
    next_before: int | None


def connector_messages(
    sessions: sessionmaker[Session],
    connector: str,
    *,
    status: str | None = None,
    before: int | None = None,
    size: int = 25,
) -> MessagePage:
    """One page of a connector's message log, newest first (keyset on id, indexed per
    connector and per status)."""
    from hub.monitoring.message_log import list_messages

    with sessions() as db:
        rows, cursor = list_messages(
            db, connector=connector, status=status, before=before, limit=size
        )
    return MessagePage(rows, cursor)


# --- the broker ------------------------------------------------------------------------------


@contextlib.contextmanager
def broker() -> Iterator[Any]:
    """A broker connection for this request (pika connections must not cross threads)."""
    from hub.api.context import hub_runtime
    from hub.broker import connect
    from hub.workers.topology import WORKER_QUEUES

    opened = connect(hub_runtime().settings, wait_for=5)
    try:
        opened.declare_topology(list(WORKER_QUEUES))
        yield opened
    finally:
        opened.close()


def dead_letter_depth(opened: Any) -> int:
    from hub.broker.base import QUEUE_DEAD

    return int(opened.queue_depth(QUEUE_DEAD))


@dataclass(frozen=True)
class FieldWork:
    """What field collection looks like right now, for the overview's tiles."""

    submissions: dict[str, int]  # intake status -> count
    review: dict[str, int]  # review state -> count
    identity_checks: dict[str, int]  # verified | failed | pending | not_checked -> count


def field_work(sessions: sessionmaker[Session]) -> FieldWork:
    """Counts by status of field submissions, review items and national ID cross-checks
    (three indexed GROUP BYs: cheap on every page load)."""
    from sqlalchemy import func

    from hub.crosscheck.tables import IdentityCheck
    from hub.intake.tables import IntakeSubmission
    from hub.review.tables import ReviewItem

    def counts(column: Any) -> dict[str, int]:
        rows = session.execute(select(column, func.count()).group_by(column)).all()
        return {str(state): int(count) for state, count in rows}

    with sessions() as session:
        return FieldWork(
            submissions=counts(IntakeSubmission.status),
            review=counts(ReviewItem.state),
            identity_checks=counts(IdentityCheck.status),
        )


# --- keeping the registry right (Step 10) ------------------------------------------------------


@dataclass(frozen=True)
class RegistryUpkeep:
    """What waits for someone to keep the registry right, for the overview's tiles."""

    quality_issues_open: int  # data-quality issues nobody acknowledged, resolved or dismissed
    corrections_proposed: int  # change requests waiting for a second person
    duplicate_pairs_open: int  # duplicate pairs nobody merged or kept apart yet


def registry_upkeep(sessions: sessionmaker[Session]) -> RegistryUpkeep:
    """Three indexed counts (issues by state, requests by state, reviews by status and kind)."""
    from sqlalchemy import func

    from hub.corrections.tables import ChangeRequest
    from hub.quality.tables import DataQualityIssue, IssueState
    from registry_core.models import MatchReview
    from registry_core.resolution import DUPLICATE_KIND
    from registry_core.services.merges import REVIEW_OPEN

    def count(model: Any, *conditions: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)

    with sessions() as session:
        return RegistryUpkeep(
            quality_issues_open=count(DataQualityIssue, DataQualityIssue.state == IssueState.OPEN),
            corrections_proposed=count(ChangeRequest, ChangeRequest.state == "proposed"),
            duplicate_pairs_open=count(
                MatchReview, MatchReview.status == REVIEW_OPEN, MatchReview.kind == DUPLICATE_KIND
            ),
        )
