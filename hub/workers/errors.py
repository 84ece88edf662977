"""The two kinds of failure a message handler can report, and how other errors are classed.

The difference decides the message's fate: a transient failure (a partner or database is briefly
unavailable) is retried with backoff and, if it persists, returned to the queue; a permanent
failure (the message itself is wrong) is dead-lettered at once, because retrying cannot help and
would block the queue behind it.
"""

from __future__ import annotations

import requests
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from hub.broker.errors import ConnectionClosed


class TransientError(Exception):
    """The handler could not finish now but may later: retry with backoff."""


class PermanentError(Exception):
    """The message can never be handled: dead-letter it.

    ``error_class`` becomes the ``x-sr-error-class`` header (e.g. "MappingError") and the message
    the ``x-sr-reason`` header, so it must be actionable and free of personal identifiers.
    ``notes`` are what the handler noted before it failed (data-quality notes, never values):
    middleware such as the message log keeps them with the failure.
    """

    def __init__(
        self, reason: str, error_class: str | None = None, notes: tuple[str, ...] = ()
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_class = error_class or type(self).__name__
        self.notes = notes


# Exceptions raised by drivers that mean "try again later", whatever raised them.
TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionClosed,
    ConnectionError,
    TimeoutError,
    OperationalError,  # database locked, connection refused, server restarting
    DisconnectionError,
    PoolTimeoutError,
    requests.ConnectionError,  # partner unreachable
    requests.Timeout,
)


def is_transient(exc: BaseException) -> bool:
    """True if retrying the same message later may succeed."""
    return isinstance(exc, TRANSIENT_TYPES)
