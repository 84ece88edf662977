"""Health of each subscription, read from the notification side's own delivery log
(``subscription_deliveries``): it is written in every process that delivers, so this view holds
even when dispatch runs as separate ``srhub worker dispatch`` processes."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select

from hub.monitoring.metrics import WINDOWS, Recorder, percentile
from standards.timeutil import utcnow

FAILED_STATUSES = ("failed", "dead_lettered")
OK_STATUSES = ("delivered", "queued", "duplicate")
ALERT_WINDOW_SECONDS = 300


def _window_counts(session: Any, table: Any, seconds: int) -> dict[str, tuple[int, int]]:
    since = utcnow() - timedelta(seconds=seconds)
    failed = func.sum(case((table.status.in_(FAILED_STATUSES), 1), else_=0))
    rows = session.execute(
        select(table.subscription_code, func.count(), failed)
        .where(table.started_at >= since)
        .group_by(table.subscription_code)
    ).all()
    return {code: (int(count), int(bad or 0)) for code, count, bad in rows}


def subscription_health(session: Any, recorder: Recorder) -> dict[str, dict[str, Any]]:
    try:
        from hub.subscriptions.tables import DeliveryAttempt, Subscription
    except ImportError:  # the notification side is not in this build
        return {}
    subscriptions = dict(session.execute(select(Subscription.code, Subscription.status)).all())
    if not subscriptions:
        return {}
    windows = {
        name: _window_counts(session, DeliveryAttempt, seconds)
        for name, seconds in {**WINDOWS, "alert_window": ALERT_WINDOW_SECONDS}.items()
    }
    durations: dict[str, list[float]] = defaultdict(list)
    since_hour = utcnow() - timedelta(hours=1)
    for code, duration in session.execute(
        select(DeliveryAttempt.subscription_code, DeliveryAttempt.duration_ms)
        .where(DeliveryAttempt.started_at >= since_hour, DeliveryAttempt.duration_ms.is_not(None))
        .order_by(DeliveryAttempt.id.desc())
        .limit(20_000)
    ):
        durations[code].append(float(duration))
    found: dict[str, dict[str, Any]] = {}
    for code, status in sorted(subscriptions.items()):
        recent = session.execute(
            select(DeliveryAttempt.status, DeliveryAttempt.error, DeliveryAttempt.started_at)
            .where(DeliveryAttempt.subscription_code == code)
            .order_by(DeliveryAttempt.id.desc())
            .limit(3)
        ).all()
        last_ok = session.execute(
            select(func.max(DeliveryAttempt.started_at)).where(
                DeliveryAttempt.subscription_code == code,
                DeliveryAttempt.status.in_(OK_STATUSES),
            )
        ).scalar()
        last_bad = next((r for r in recent if r.status in FAILED_STATUSES), None)
        deliveries: dict[str, Any] = {}
        for name, counts in windows.items():
            count, bad = counts.get(code, (0, 0))
            deliveries[name] = {
                "count": count,
                "errors": bad,
                "error_rate": round(bad / count, 4) if count else 0.0,
            }
        p50 = percentile(durations.get(code, []), 0.5)
        p95 = percentile(durations.get(code, []), 0.95)
        deliveries["hour"].update(p50_ms=p50, p95_ms=p95)
        if status == "paused":
            state = "paused"
        elif recent and all(r.status in FAILED_STATUSES for r in recent):
            state = "down"
        elif deliveries["alert_window"]["errors"]:
            state = "degraded"
        else:
            state = "up"
        found[code] = {
            "name": code,
            "state": state,
            "status": status,
            "last_success_at": last_ok.isoformat() if last_ok else None,
            "last_error_at": last_bad.started_at.isoformat() if last_bad else None,
            "last_error": last_bad.error if last_bad else None,
            "deliveries": deliveries,
            "dead_letters_24h": int(
                session.execute(
                    select(func.count()).where(
                        DeliveryAttempt.subscription_code == code,
                        DeliveryAttempt.status == "dead_lettered",
                        DeliveryAttempt.started_at >= utcnow() - timedelta(days=1),
                    )
                ).scalar()
                or 0
            ),
            "outbound": recorder.summary(f"outbound:{code}"),
        }
    return found
