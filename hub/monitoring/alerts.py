"""Alerts: conditions staff must act on, with when each began and ended.

Rules (thresholds from ``settings.monitoring``, defaults in ``AlertRules``):

- ``error_rate``: a connector's (partner calls or ingest) or subscription's error rate over the
  last ``error_rate_window_seconds`` exceeds ``error_rate_threshold`` with at least
  ``error_rate_min_events`` events (a single failure among two calls is not an outage);
- ``lag``: the oldest unprocessed message of a connector is older than ``lag_seconds``;
- ``circuit_open``: a connector's circuit breaker is open (the partner is considered down);
- ``dead_letter_growth``: more than ``dead_letter_growth`` messages reached ``sr.dead.letters``
  within the last ``dead_letter_window_seconds``.

Each (rule, subject) pair has at most one firing alert. It fires when its condition first holds
(``began_at``) and resolves when it no longer does (``ended_at``); both transitions are sent to
``alert_webhook_url`` as JSON, signed with HMAC-SHA256 over ``"<timestamp>.<body>"`` using
``alert_webhook_secret`` (header ``X-Srhub-Signature: t=<ts>,v1=<hex>``). A delivery that fails
is retried at the next evaluation; the alert row says whether it was delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import BigInteger, Float, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from hub.settings import MonitoringSettings
from hub.workers.egress import REFUSED_ERROR, EgressPolicy, EgressRefused
from registry_core.db import Base, UTCDateTime
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

FIRING = "firing"
RESOLVED = "resolved"
SIGNATURE_HEADER = "X-Srhub-Signature"

_Key = BigInteger().with_variant(Integer(), "sqlite")


class Alert(Base):
    __tablename__ = "monitoring_alerts"
    __table_args__ = (
        Index("ix_monitoring_alerts_state", "state", "rule", "subject"),
        Index("ix_monitoring_alerts_began", "began_at"),
    )

    id: Mapped[int] = mapped_column(_Key, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str] = mapped_column(String(160), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    severity: Mapped[str] = mapped_column(String(16), nullable=False, default="warning")
    summary: Mapped[str] = mapped_column(String(500), nullable=False)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    began_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    notified_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    notify_error: Mapped[str | None] = mapped_column(String(300), nullable=True)


def alert_dict(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "state": alert.state,
        "severity": alert.severity,
        "summary": alert.summary,
        "value": alert.value,
        "threshold": alert.threshold,
        "began_at": alert.began_at.isoformat(),
        "ended_at": alert.ended_at.isoformat() if alert.ended_at else None,
        "notified": alert.notified_state == alert.state,
        "notify_error": alert.notify_error,
    }


@dataclass(frozen=True)
class AlertRules:
    error_rate_threshold: float = 0.5
    error_rate_window_seconds: int = 300
    error_rate_min_events: int = 5
    lag_seconds: float = 600.0
    dead_letter_growth: int = 10
    dead_letter_window_seconds: int = 300

    @classmethod
    def from_settings(cls, config: MonitoringSettings) -> AlertRules:
        return cls(
            error_rate_threshold=config.alert_error_rate_threshold,
            error_rate_window_seconds=config.alert_error_rate_window_seconds,
            error_rate_min_events=config.alert_error_rate_min_events,
            lag_seconds=config.alert_lag_seconds,
            dead_letter_growth=config.alert_dead_letter_growth,
            dead_letter_window_seconds=config.alert_dead_letter_window_seconds,
        )


@dataclass(frozen=True)
class Condition:
    """A rule that holds now for one subject."""

    rule: str
    subject: str
    summary: str
    value: float | None = None
    threshold: float | None = None
    severity: str = "warning"


class DeadLetterTrend:
    """Remembers dead-letter queue depths over time to measure growth within a window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque(maxlen=10_000)

    def add(self, depth: int) -> None:
        self._samples.append((self._clock(), depth))

    def growth(self, window_seconds: float) -> int:
        if not self._samples:
            return 0
        now, latest = self._samples[-1]
        start = [d for t, d in self._samples if t >= now - window_seconds]
        return max(0, latest - min(start)) if start else 0


def conditions_from(
    snapshot: dict[str, Any], rules: AlertRules, trend: DeadLetterTrend
) -> list[Condition]:
    """Which rules hold, given a health snapshot (``health.health_snapshot``)."""
    found: list[Condition] = []
    for name, entry in (snapshot.get("connectors") or {}).items():
        subject = f"connector:{name}"
        if entry.get("circuit") == "open":
            found.append(
                Condition(
                    "circuit_open",
                    subject,
                    f"connector {name}: circuit open, partner calls stopped "
                    f"({entry.get('last_error') or 'no reason recorded'})",
                    severity="critical",
                )
            )
        for series in ("calls", "records"):
            window = (entry.get(series) or {}).get("alert_window") or {}
            count, rate = int(window.get("count", 0)), float(window.get("error_rate", 0.0))
            if count >= rules.error_rate_min_events and rate > rules.error_rate_threshold:
                found.append(
                    Condition(
                        "error_rate",
                        f"{subject}:{series}",
                        f"connector {name}: {rate:.0%} of {series} failed in the last "
                        f"{rules.error_rate_window_seconds}s ({count} events)",
                        rate,
                        rules.error_rate_threshold,
                    )
                )
        lag = entry.get("lag_seconds")
        if lag is not None and lag > rules.lag_seconds:
            found.append(
                Condition(
                    "lag",
                    subject,
                    f"connector {name}: oldest unprocessed message is {lag:.0f}s old "
                    f"({entry.get('backlog', 0)} waiting)",
                    float(lag),
                    rules.lag_seconds,
                )
            )
    for name, entry in (snapshot.get("subscriptions") or {}).items():
        window = (entry.get("deliveries") or {}).get("alert_window") or {}
        count, rate = int(window.get("count", 0)), float(window.get("error_rate", 0.0))
        if count >= rules.error_rate_min_events and rate > rules.error_rate_threshold:
            found.append(
                Condition(
                    "error_rate",
                    f"subscription:{name}",
                    f"subscription {name}: {rate:.0%} of deliveries failed in the last "
                    f"{rules.error_rate_window_seconds}s ({count} attempts)",
                    rate,
                    rules.error_rate_threshold,
                )
            )
    depth = (snapshot.get("broker") or {}).get("dead_letters")
    if isinstance(depth, int):
        trend.add(depth)
        growth = trend.growth(rules.dead_letter_window_seconds)
        if growth > rules.dead_letter_growth:
            found.append(
                Condition(
                    "dead_letter_growth",
                    "broker:sr.dead.letters",
                    f"{growth} messages dead-lettered in the last "
                    f"{rules.dead_letter_window_seconds}s (now {depth} waiting)",
                    float(growth),
                    float(rules.dead_letter_growth),
                )
            )
    return found


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: bytes, header: str, body: bytes) -> bool:
    """For receivers (and tests): constant-time check of ``X-Srhub-Signature``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    return hmac.compare_digest(sign(secret, parts["t"], body), f"t={parts['t']},v1={parts['v1']}")


class WebhookNotifier:
    """POSTs alert transitions to one URL; returns None on success or a short reason."""

    def __init__(
        self, url: str, secret: str, timeout: float = 5.0, egress: EgressPolicy | None = None
    ) -> None:
        self.url = url
        self._secret = secret.encode()
        self._timeout = timeout
        # The hook is vetted like every outbound URL (hub.workers.egress): a private address
        # must be allowed by the operator in [srhub.outbound] allow_hosts.
        self._egress = egress or EgressPolicy()
        self._session = self._egress.session()

    def __call__(self, payload: dict[str, Any]) -> str | None:
        body = json.dumps(payload, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json"}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        try:
            response = self._egress.post(
                self._session, self.url, data=body, headers=headers, timeout=self._timeout
            )
        except EgressRefused:
            return REFUSED_ERROR
        except requests.RequestException as exc:
            return f"{type(exc).__name__}"
        if response.status_code >= 300:
            return f"HTTP {response.status_code}"
        return None


class AlertEvaluator:
    """Turns conditions into alert rows and notifications, one evaluation at a time."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        rules: AlertRules,
        notify: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        self._sessions = sessions
        self.rules = rules
        self._notify = notify
        self.trend = DeadLetterTrend()

    def evaluate(self, snapshot: dict[str, Any]) -> list[dict[str, Any]]:
        """Apply one snapshot; return the alerts that changed state (as dicts)."""
        return self.apply(conditions_from(snapshot, self.rules, self.trend))

    def apply(self, conditions: Iterable[Condition]) -> list[dict[str, Any]]:
        holding = {(c.rule, c.subject): c for c in conditions}
        changed: list[dict[str, Any]] = []
        now = utcnow()
        with self._sessions.begin() as session:
            open_alerts = {
                (a.rule, a.subject): a
                for a in session.execute(select(Alert).where(Alert.state == FIRING)).scalars()
            }
            for key, condition in holding.items():
                alert = open_alerts.get(key)
                if alert is None:
                    alert = Alert(
                        rule=condition.rule,
                        subject=condition.subject,
                        state=FIRING,
                        severity=condition.severity,
                        summary=condition.summary[:500],
                        value=condition.value,
                        threshold=condition.threshold,
                        began_at=now,
                    )
                    session.add(alert)
                    session.flush()
                    changed.append(alert_dict(alert))
                    log.warning("alert fired: %s", condition.summary)
                else:
                    alert.value = condition.value  # the latest measurement, same alert
                    alert.summary = condition.summary[:500]
            for key, alert in open_alerts.items():
                if key not in holding:
                    alert.state = RESOLVED
                    alert.ended_at = now
                    changed.append(alert_dict(alert))
                    log.info("alert resolved: %s %s", alert.rule, alert.subject)
        self.deliver_pending()
        return changed

    def deliver_pending(self) -> None:
        """Send every transition not yet delivered (new ones, and earlier failures)."""
        if self._notify is None:
            return
        with self._sessions.begin() as session:
            pending = [
                alert_dict(a)
                for a in session.execute(
                    select(Alert)
                    .where((Alert.notified_state.is_(None)) | (Alert.notified_state != Alert.state))
                    .order_by(Alert.id)
                    .limit(100)
                ).scalars()
            ]
        # Sent outside the transaction: a slow receiver must not hold database locks.
        results = []
        for alert in pending:
            error = self._notify({"type": f"srhub.alert.{alert['state']}", "alert": alert})
            results.append((alert["id"], alert["state"], error))
        with self._sessions.begin() as session:
            for alert_id, state, error in results:
                row = session.get(Alert, alert_id)
                if row is None:
                    continue
                row.notify_error = error
                if error is None:
                    row.notified_state = state


def list_alerts(
    session: Session, *, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Firing first, then the most recent."""
    query = select(Alert)
    if state:
        query = query.where(Alert.state == state)
    rows = session.execute(
        query.order_by(
            (Alert.state == FIRING).desc(), Alert.began_at.desc(), Alert.id.desc()
        ).limit(limit)
    ).scalars()
    return [alert_dict(a) for a in rows]
