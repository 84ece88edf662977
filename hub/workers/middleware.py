"""Middleware: code that watches every handling without the handlers knowing (dramatiq's idea).

The runtime calls each middleware it was given around every message it handles:

- ``before(ctx, event)`` just before each run of the handler (a message retried, or a batch
  redone message by message after a failure, is seen again);
- ``after(ctx, event, result)`` once the message's effect is committed (for handlers outside
  the database: once the effect is done and the message recorded as processed), with the
  handler's ``HandlerResult``;
- ``failed(ctx, event, error)`` after each failed run; ``is_transient(error)`` says whether
  the message will be tried again or dead-lettered.

Monitoring (message log and metrics) is one middleware that the application configures
(``srhub run``, ``srhub worker``, test fixtures); the runtime imports no monitoring. Hooks must
be cheap and should not raise: whatever one raises is logged and swallowed, so watching the
traffic can never break it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable

from hub.workers.errors import PermanentError, is_transient
from hub.workers.handlers import CloudEvent, HandlerContext, HandlerResult

log = logging.getLogger(__name__)


class Middleware:
    """Base class: every hook does nothing; override the ones you need."""

    def before(self, ctx: HandlerContext, event: CloudEvent) -> None:
        """A handler is about to run for ``event``."""

    def after(self, ctx: HandlerContext, event: CloudEvent, result: HandlerResult) -> None:
        """``event``'s effect is committed; ``result`` is what the handler reported."""

    def failed(self, ctx: HandlerContext, event: CloudEvent, error: BaseException) -> None:
        """A run of the handler for ``event`` raised ``error``."""


class MiddlewareChain:
    """Calls every middleware in order, isolating each from the others' failures."""

    def __init__(self, middleware: Iterable[Middleware] = ()) -> None:
        self.items: tuple[Middleware, ...] = tuple(middleware)

    def __bool__(self) -> bool:
        return bool(self.items)

    def before(self, ctx: HandlerContext, event: CloudEvent) -> None:
        for item in self.items:
            try:
                item.before(ctx, event)
            except Exception:
                log.exception("middleware %s failed in before()", type(item).__name__)

    def after(self, ctx: HandlerContext, event: CloudEvent, result: HandlerResult) -> None:
        for item in self.items:
            try:
                item.after(ctx, event, result)
            except Exception:
                log.exception("middleware %s failed in after()", type(item).__name__)

    def failed(self, ctx: HandlerContext, event: CloudEvent, error: BaseException) -> None:
        for item in self.items:
            try:
                item.failed(ctx, event, error)
            except Exception:
                log.exception("middleware %s failed in failed()", type(item).__name__)


class OutcomeCounter(Middleware):
    """Counts outcomes (``applied``, ``review``...) and failures by error class, per worker:
    what tests and a worker's own summary read, without a process-wide counter."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self._lock = threading.Lock()

    def after(self, ctx: HandlerContext, event: CloudEvent, result: HandlerResult) -> None:
        with self._lock:
            self.outcomes[result.outcome] += 1

    def failed(self, ctx: HandlerContext, event: CloudEvent, error: BaseException) -> None:
        if is_transient(error):
            return
        name = error.error_class if isinstance(error, PermanentError) else type(error).__name__
        with self._lock:
            self.failures[name] += 1
