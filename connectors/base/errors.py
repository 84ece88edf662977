"""The connectors' error tree: one place that says which failures are worth retrying.

Driver errors (``requests``, ``zeep``, socket errors) are converted where they enter, the way
dramatiq converts broker errors, so the retry policy, the circuit breaker and the runners only
ever look at these classes:

- ``TransientPartnerError``: the partner may answer next time (connection refused or reset,
  timeout, HTTP 502/503/504/429/408). Retried with backoff; counted by the circuit breaker.
- ``PermanentPartnerError``: the partner answered and retrying the same call gives the same
  answer (HTTP 4xx, an unparseable body). Never retried; the partner is up.
- ``NotAttempted``: refused locally before any call was made (circuit open, rate-limit wait
  longer than the deadline, deadline already spent). The partner never saw it.

Messages never contain request or response bodies, query strings or identifiers: they name the
partner, the operation and a reason, so they can be logged and shown on a status page.
"""

from __future__ import annotations

from collections.abc import Sequence


class ConnectorError(Exception):
    """Base of every error raised by connectors and their runtime."""


class PartnerError(ConnectorError):
    """An exchange with a partner system failed.

    ``reason`` is a short machine-readable code (``timeout``, ``http_503``) and ``detail`` a
    sentence for a person; neither carries personal data.
    """

    def __init__(self, partner: str, operation: str, reason: str, detail: str = "") -> None:
        text = f"{partner} {operation}: {reason}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)
        self.partner = partner
        self.operation = operation
        self.reason = reason
        self.detail = detail


class TransientPartnerError(PartnerError):
    """Retrying later may succeed. ``retry_after`` is the partner's own hint, in seconds."""

    retry_after: float | None = None


class PartnerConnectionError(TransientPartnerError):
    """The partner could not be reached (refused, reset, DNS, TLS handshake)."""


class PartnerTimeout(TransientPartnerError):
    """The partner did not answer within the call's timeout."""


class PartnerBusy(TransientPartnerError):
    """The partner answered that it is overloaded or down for now (502/503/504/429/408)."""

    def __init__(
        self,
        partner: str,
        operation: str,
        status: int,
        retry_after: float | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(partner, operation, f"http_{status}", detail)
        self.status = status
        self.retry_after = retry_after


class PermanentPartnerError(PartnerError):
    """Retrying the same call will not help; the partner is reachable."""


class PartnerRejected(PermanentPartnerError):
    """The partner refused the request (HTTP 4xx other than 408/429, or a SOAP fault)."""

    def __init__(self, partner: str, operation: str, status: int, detail: str = "") -> None:
        super().__init__(partner, operation, f"http_{status}", detail)
        self.status = status


class PartnerProtocolError(PermanentPartnerError):
    """The partner's answer could not be understood (wrong content type, bad JSON or XML)."""


class NotAttempted(ConnectorError):
    """The call was refused locally; the partner never saw it. Try again later."""

    def __init__(self, partner: str, reason: str, retry_in: float | None = None) -> None:
        text = f"{partner}: call not attempted: {reason}"
        if retry_in is not None:
            text += f"; retry in {retry_in:.1f}s"
        super().__init__(text)
        self.partner = partner
        self.reason = reason
        self.retry_in = retry_in


class CircuitOpenError(NotAttempted):
    """The partner's circuit breaker is open after repeated transient failures."""

    def __init__(self, partner: str, retry_in: float) -> None:
        super().__init__(partner, "circuit_open", retry_in)


class RateLimitTimeout(NotAttempted):
    """Waiting for the partner's rate limit would overrun the call's deadline."""

    def __init__(self, partner: str, wait: float) -> None:
        super().__init__(partner, "rate_limited", wait)


class DeadlineExceeded(NotAttempted):
    """The caller's deadline was spent before the call (or its next retry) could start."""

    def __init__(self, partner: str) -> None:
        super().__init__(partner, "deadline_exceeded")


class PublishFailed(ConnectorError):
    """Handing a raw record to the hub failed; the source must not be marked as consumed."""

    def __init__(self, connector: str, record_type: str, cause: BaseException) -> None:
        super().__init__(
            f"{connector}: publishing a raw {record_type} record failed: {type(cause).__name__}"
        )
        self.connector = connector
        self.record_type = record_type


class SettingsError(ConnectorError, ValueError):
    """A connector's settings break its JSON Schema; ``violations`` lists every problem."""

    def __init__(self, connector: str, violations: Sequence[str]) -> None:
        listing = "; ".join(violations)
        super().__init__(
            f"invalid settings for connector {connector!r}: {len(violations)} problem(s): {listing}"
        )
        self.connector = connector
        self.violations = list(violations)


class ConnectorNotFound(ConnectorError, LookupError):
    """No connector is registered under that name, or its plugin failed to import."""


class FileRejected(ConnectorError):
    """A whole dropped file is refused (wrong format, header, encoding); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def safe_reason(error: BaseException) -> str:
    """A description of ``error`` that is safe to log and show: no foreign messages.

    Our own errors are written to carry no personal data, so their text is kept. Anything else
    (a driver error may echo a URL with a query string, or a body) is reduced to its type name.
    """
    if isinstance(error, ConnectorError):
        return str(error)[:500]
    return type(error).__name__
