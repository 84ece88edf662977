"""Which handler runs for which routing key.

The ingest and dispatch workers look their handler up here by the message's routing key; the
steps that build mapping and delivery register theirs at import. A routing key nobody handles is
dead-lettered with reason "no handler", never silently acked nor retried forever.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.broker.base import Delivery

CloudEvent = dict[str, Any]


@dataclass(frozen=True)
class HandlerContext:
    """What a handler gets besides the event.

    ``session`` is the open transaction in which the runtime records the message as processed:
    a handler whose effect is database writes makes them here, so effect and record commit
    together (exactly-once effect). It is ``None`` for handlers registered with
    ``transactional=False`` (effects outside the database, e.g. a webhook call).
    """

    consumer: str
    delivery: Delivery
    session: Session | None


Handler = Callable[[CloudEvent, HandlerContext], None]


@dataclass(frozen=True)
class HandlerSpec:
    func: Handler
    transactional: bool = True


def _topic_regex(pattern: str) -> re.Pattern[str]:
    """AMQP topic pattern to regex: ``*`` is one word, ``#`` zero or more words."""
    parts = []
    for word in pattern.split("."):
        if word == "#":
            parts.append(r"(?:[^.]+(?:\.[^.]+)*)?")
        elif word == "*":
            parts.append(r"[^.]+")
        else:
            parts.append(re.escape(word))
    body = r"\.".join(parts)
    # "a.#" must also match "a": let the dot before an empty "#" be optional.
    body = body.replace(r"\.(?:[^.]+(?:\.[^.]+)*)?", r"(?:\.[^.]+(?:\.[^.]+)*)?")
    return re.compile(f"^{body}$")


class HandlerRegistry:
    """Routing key (exact or topic pattern) -> handler. Exact keys win over patterns."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._exact: dict[str, HandlerSpec] = {}
        self._patterns: list[tuple[str, re.Pattern[str], HandlerSpec]] = []

    def register(
        self, routing_key: str, handler: Handler, *, transactional: bool = True
    ) -> Handler:
        """Register ``handler`` for ``routing_key`` (``*``/``#`` make it a pattern)."""
        spec = HandlerSpec(handler, transactional)
        if "*" in routing_key or "#" in routing_key:
            self._patterns = [p for p in self._patterns if p[0] != routing_key]
            self._patterns.append((routing_key, _topic_regex(routing_key), spec))
        else:
            self._exact[routing_key] = spec
        return handler

    def handler(
        self, routing_key: str, *, transactional: bool = True
    ) -> Callable[[Handler], Handler]:
        """Decorator form of ``register``."""

        def decorate(func: Handler) -> Handler:
            return self.register(routing_key, func, transactional=transactional)

        return decorate

    def resolve(self, routing_key: str) -> HandlerSpec | None:
        found = self._exact.get(routing_key)
        if found is not None:
            return found
        for _pattern, regex, spec in self._patterns:
            if regex.match(routing_key):
                return spec
        return None

    def unregister(self, routing_key: str) -> None:
        self._exact.pop(routing_key, None)
        self._patterns = [p for p in self._patterns if p[0] != routing_key]

    def routing_keys(self) -> list[str]:
        return sorted(self._exact) + [p[0] for p in self._patterns]


# The registries the worker entry points use; later steps register into them.
INGEST_HANDLERS = HandlerRegistry("ingest")
DISPATCH_HANDLERS = HandlerRegistry("dispatch")
