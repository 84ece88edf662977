"""Time as every layer writes it: aware UTC inside, RFC 3339 with ``Z`` outside.

Why a module of its own, beneath everything: the registry, the hub, the connectors and the
formats all stamp and print times, and they must agree (a stored time, an event's ``time`` and
an API field are compared by people and by programs). Keeping the three helpers here means no
layer imports a database module, or another layer, to learn what "now" is.

Components that wait or measure (backoff, cool-downs, deadlines) take a clock instead
(``connectors.base.clock``), so tests can drive them; these helpers are for stamping.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC; every stored time goes through this."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as RFC 3339 with a ``Z`` suffix (``2026-01-02T03:04:05.123456Z``).

    Naive times are refused: nobody could tell which zone they meant.
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; times must be timezone-aware")
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def iso(value: date | datetime | None) -> str | None:
    """A date as ``YYYY-MM-DD``, a time as ``rfc3339``, nothing as None (records leave such
    fields out)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return rfc3339(value)
    return value.isoformat()
