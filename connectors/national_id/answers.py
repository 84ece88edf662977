"""The national ID connector's answers: the partner's reply made JSON-safe, plus what it means.

The payload is what zeep read from the SOAP body (``serialize_object``), with dates and times
written as ISO 8601 text so it can travel on ``sr.inbound`` unchanged; the mapping specs
``national_id_verification`` and ``national_id_person`` read it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` with dates, times and decimals as text; mappings and lists copied."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _error_codes(payload: Mapping[str, Any]) -> list[str]:
    errors = payload.get("errors") or {}
    items = errors.get("error") if isinstance(errors, Mapping) else None
    return [str(e.get("errorCode")) for e in items or [] if isinstance(e, Mapping)]


@dataclass(frozen=True)
class NationalIdAnswer:
    """One answer of the authority.

    ``message_id`` is the raw record's id on ``sr.inbound`` (None when it was not published:
    ``publish_error`` then says why; the answer itself is still good).
    """

    operation: str
    transaction_id: str
    payload: dict[str, Any]
    elapsed_ms: float
    message_id: str | None = None
    publish_error: str | None = None
    error_codes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VerificationAnswer(NationalIdAnswer):
    @property
    def verified(self) -> bool:
        return self.payload.get("authStatus") is True

    @property
    def person_status(self) -> str | None:
        status = self.payload.get("personStatus")
        return str(status).lower() if status else None


@dataclass(frozen=True)
class PersonAnswer(NationalIdAnswer):
    @property
    def kyc_status(self) -> bool:
        return self.payload.get("kycStatus") is True

    @property
    def identity(self) -> dict[str, Any] | None:
        identity = self.payload.get("identity")
        return identity if isinstance(identity, dict) else None


def error_codes_of(payload: Mapping[str, Any]) -> list[str]:
    return _error_codes(payload)
