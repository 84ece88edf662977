"""A simulated clock, so a mock can live through months of vital events in seconds.

Why: partner systems produce records over time (a birth is registered weeks after it happens).
Tests and demos need to move that time forward on purpose ("advance 30 days") or let it run fast
("one simulated day per real second") while everything stays repeatable.

    clock = SimClock(start=datetime(2024, 1, 1, tzinfo=UTC), rate_days_per_second=0.0)
    clock.advance(days=30)
    clock.now()        # 2024-01-31T00:00:00+00:00 (plus rate * real seconds elapsed)

``install_clock(app, clock, on_change=...)`` adds the admin endpoints:

- ``GET  /_admin/clock``          -> ``{"now", "today", "rate_days_per_second"}``
- ``POST /_admin/clock/advance``  ``{"days": N, "seconds": S}`` (either; non-negative)
- ``PUT  /_admin/clock``          ``{"rate_days_per_second": R}`` and/or ``{"now": iso}``
  (setting ``now`` may only move forward: simulated history is never rewritten)

``on_change`` is called (outside the clock's lock) after every change, so a mock can release
what became due.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask, Response, jsonify, request

MAX_ADVANCE_DAYS = 366 * 20


class SimClock:
    """Simulated time = start + manual advances + rate * real seconds since start."""

    def __init__(
        self,
        start: datetime | date,
        rate_days_per_second: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(start, datetime):
            start = datetime(start.year, start.month, start.day, tzinfo=UTC)
        elif start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        if rate_days_per_second < 0:
            raise ValueError("rate_days_per_second must not be negative")
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._base = start
        self._anchor = monotonic()
        self._rate = float(rate_days_per_second)

    def now(self) -> datetime:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> datetime:
        elapsed = self._monotonic() - self._anchor
        return self._base + timedelta(days=self._rate * elapsed)

    def today(self) -> date:
        return self.now().date()

    @property
    def rate_days_per_second(self) -> float:
        return self._rate

    def _rebase(self) -> None:
        # Fold the elapsed simulated time into the base so a rate change is not retroactive.
        self._base = self._now_locked()
        self._anchor = self._monotonic()

    def advance(self, days: float = 0.0, seconds: float = 0.0) -> datetime:
        if days < 0 or seconds < 0:
            raise ValueError("the clock only moves forward")
        if days + seconds / 86400 > MAX_ADVANCE_DAYS:
            raise ValueError(f"advance at most {MAX_ADVANCE_DAYS} days at once")
        with self._lock:
            self._rebase()
            self._base += timedelta(days=days, seconds=seconds)
            return self._base

    def set_now(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        with self._lock:
            self._rebase()
            if moment < self._base:
                raise ValueError("the clock only moves forward")
            self._base = moment
            return moment

    def set_rate(self, rate_days_per_second: float) -> None:
        if rate_days_per_second < 0:
            raise ValueError("rate_days_per_second must not be negative")
        with self._lock:
            self._rebase()
            self._rate = float(rate_days_per_second)

    def to_dict(self) -> dict[str, Any]:
        now = self.now()
        return {
            "now": now.isoformat(),
            "today": now.date().isoformat(),
            "rate_days_per_second": self._rate,
        }


def _number(body: dict[str, Any], key: str) -> float:
    value = body.get(key, 0)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{key}: expected a number")
    return float(value)


def install_clock(
    app: Flask,
    clock: SimClock,
    on_change: Callable[[], Any] | None = None,
) -> None:
    """Register the ``/_admin/clock`` endpoints for ``clock`` on ``app``."""

    def _bad(message: str) -> tuple[Response, int]:
        return jsonify({"error": {"code": "bad_request", "message": message}}), 400

    def _changed() -> Response:
        result: dict[str, Any] = {}
        if on_change is not None:
            outcome = on_change()
            if isinstance(outcome, dict):
                result.update(outcome)
        result.update(clock.to_dict())
        return jsonify(result)

    def get_clock() -> Response | tuple[Response, int]:
        if request.method == "GET":
            return jsonify(clock.to_dict())
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _bad("body must be a JSON object")
        try:
            if "now" in body:
                if not isinstance(body["now"], str):
                    raise ValueError("now: expected an ISO 8601 date-time")
                clock.set_now(datetime.fromisoformat(body["now"].replace("Z", "+00:00")))
            if "rate_days_per_second" in body:
                clock.set_rate(_number(body, "rate_days_per_second"))
        except ValueError as exc:
            return _bad(str(exc))
        return _changed()

    def advance() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _bad('body must be a JSON object such as {"days": 7}')
        try:
            clock.advance(days=_number(body, "days"), seconds=_number(body, "seconds"))
        except ValueError as exc:
            return _bad(str(exc))
        return _changed()

    app.add_url_rule("/_admin/clock", "sandbox_admin_clock", get_clock, methods=["GET", "PUT"])
    app.add_url_rule(
        "/_admin/clock/advance", "sandbox_admin_clock_advance", advance, methods=["POST"]
    )
