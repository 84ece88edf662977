"""Settings of the rate limiter (``settings.rate_limits``, ``[srhub.rate_limits]``).

Read by ``hub.ratelimit``; described in docs/deployment.md and docs/operations.md. Each limit
is written as the ``limits`` library parses it: ``"1200/minute"``, ``"50/second"``,
``"100 per 10 minutes"``; an empty string turns that one limit off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from hub.settings.base import Section, SettingsError


@dataclass(frozen=True)
class RateLimitSettings(Section):
    """How many requests a client may send, and where the counts are kept."""

    name: ClassVar[str] = "rate_limits"

    # Off: no request is counted or refused (a development machine, a benchmark of the
    # server itself).
    enabled: bool = True
    # database: counters in the hub's database, shared by every API process (srhub serve
    # with several workers, several hosts). memory: in this process only (tests, one process).
    storage: Literal["database", "memory"] = "database"
    # Requests carrying a credential (bearer token, API key, OpenRosa Basic/Digest user,
    # dashboard session), per credential: a partner system's key or a device's user.
    per_credential: str = "12000/minute"
    # Requests carrying no credential (login, /health, OpenRosa challenges, DCI callbacks
    # that authenticate by signature...), per client address.
    per_address: str = "1200/minute"
    # Requests refused with 401 (a wrong, expired or made-up token or key) per client address;
    # past it, every request from that address that carries a credential gets 429 until the
    # window ends, so guessing tokens or keys costs a window per few dozen tries.
    failed_credentials: str = "60/minute"

    def check(self, label: Callable[[str], str]) -> None:
        from limits import parse

        for field in ("per_credential", "per_address", "failed_credentials"):
            value = getattr(self, field)
            if not value.strip():
                continue
            try:
                parse(value)
            except ValueError:
                raise SettingsError(
                    f"{label(field)} must be a rate such as '1200/minute' or '50/second' "
                    f"(empty: no limit), not {value[:40]!r}"
                ) from None
