"""Which handler runs for which routing key, and what a handler gets and gives back.

A worker is given a ``HandlerRegistry`` built by whoever composes it (the pipeline's
``ingest_handlers`` / ``dispatch_handlers`` factories, a test): nothing registers itself on
import, and the runtime knows no pipeline. A routing key nobody handles is dead-lettered with
reason "no handler", never silently acked nor retried forever.

Routing keys are matched with the broker's own topic matcher (``hub.broker.topic.matches``), so
a handler pattern means exactly what the same binding pattern means on either broker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.broker.topic import matches, validate_pattern

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.broker.base import Delivery

CloudEvent = dict[str, Any]


@dataclass(frozen=True)
class HandlerResult:
    """What a handling achieved: ``outcome`` is counted by monitoring (``applied``,
    ``already_applied``, ``review``, ``not_registered``...), ``notes`` are kept in the message
    log (data-quality notes, the reason a record went to review; never personal values)."""

    outcome: str = "applied"
    notes: tuple[str, ...] = ()


APPLIED = HandlerResult()


@dataclass(frozen=True)
class HandlerContext:
    """What a handler gets besides the event.

    ``session`` is the open transaction in which the runtime records the message as processed:
    a handler whose effect is database writes makes them here, so effect and record commit
    together (exactly-once effect). It is ``None`` for handlers registered with
    ``transactional=False`` (effects outside the database, e.g. a webhook call).
    ``services`` is what the factory that built the handlers gave their registry (the
    registry services, a connector directory...): handlers find their dependencies there,
    never in module globals.
    """

    consumer: str
    delivery: Delivery
    session: Session | None
    services: Any = None


Handler = Callable[[CloudEvent, HandlerContext], HandlerResult | None]


@dataclass(frozen=True)
class HandlerSpec:
    func: Handler
    transactional: bool = True


def is_pattern(routing_key: str) -> bool:
    return any(word in ("*", "#") for word in routing_key.split("."))


class HandlerRegistry:
    """Routing key (exact or topic pattern) -> handler. Exact keys win over patterns; among
    patterns the first registered that matches wins.

    ``services`` reaches every handler as ``HandlerContext.services``.
    """

    def __init__(self, name: str, services: Any = None) -> None:
        self.name = name
        self.services = services
        self._exact: dict[str, HandlerSpec] = {}
        self._patterns: list[tuple[str, HandlerSpec]] = []
        self._resolved: dict[str, HandlerSpec | None] = {}  # per routing key, for speed
        self._lock = threading.Lock()

    def register(
        self, routing_key: str, handler: Handler, *, transactional: bool = True
    ) -> Handler:
        """Register ``handler`` for ``routing_key`` (``*``/``#`` words make it a pattern)."""
        spec = HandlerSpec(handler, transactional)
        with self._lock:
            if is_pattern(routing_key):
                validate_pattern(routing_key)
                self._patterns = [p for p in self._patterns if p[0] != routing_key]
                self._patterns.append((routing_key, spec))
            else:
                self._exact[routing_key] = spec
            self._resolved = {}
        return handler

    def handler(
        self, routing_key: str, *, transactional: bool = True
    ) -> Callable[[Handler], Handler]:
        """Decorator form of ``register``."""

        def decorate(func: Handler) -> Handler:
            return self.register(routing_key, func, transactional=transactional)

        return decorate

    def resolve(self, routing_key: str) -> HandlerSpec | None:
        """The handler of ``routing_key``, or None when nobody handles it."""
        resolved = self._resolved
        if routing_key in resolved:
            return resolved[routing_key]
        found = self._exact.get(routing_key)
        if found is None:
            found = next(
                (spec for pattern, spec in self._patterns if matches(pattern, routing_key)), None
            )
        if len(resolved) < 10_000:  # routing keys are few; the bound only guards a flood
            resolved[routing_key] = found
        return found

    def unregister(self, routing_key: str) -> None:
        with self._lock:
            self._exact.pop(routing_key, None)
            self._patterns = [p for p in self._patterns if p[0] != routing_key]
            self._resolved = {}

    def routing_keys(self) -> list[str]:
        return sorted(self._exact) + [p[0] for p in self._patterns]
