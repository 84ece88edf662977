"""The broker's own error tree. Driver errors (pika, SQLAlchemy) are converted where they enter,
so callers handle one small set of exceptions whatever the backend."""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every broker error."""


class ConnectionClosed(BrokerError):
    """The connection to the broker was lost or could not be made. Transient: retry later."""


class PublishNotConfirmed(BrokerError):
    """The broker did not confirm (nacked, or timed out) one or more published messages.

    ``failed_ids`` holds the message ids that are not known to be stored; publishing them again
    is safe because consumers are idempotent on message id.
    """

    def __init__(self, message: str, failed_ids: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed_ids = failed_ids or []


class Unroutable(BrokerError):
    """A message published with ``mandatory`` matched no queue (returned by the broker)."""

    def __init__(self, message: str, message_ids: list[str] | None = None) -> None:
        super().__init__(message)
        self.message_ids = message_ids or []


class QueueNotFound(BrokerError):
    """The named queue has not been declared."""
