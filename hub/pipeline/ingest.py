"""The ingest worker's handlers: raw partner record -> mapping -> registry.

Each routing key on ``sr.inbound`` (``<connector>.<record_type>``) names a route
(``hub.pipeline.routes``, built from the connectors' own record type declarations): how to
take the partner payload out of the envelope (``hub.pipeline.extract``), which mapping spec
turns it into an inbound record (``standards/schemas/inbound``), and which registry applier
takes it (``hub.pipeline.apply``). Handlers run inside the
worker's transaction (``Registry.within``), so the effect and the processed-message record
commit together: a redelivered message changes nothing twice.

``ingest_handlers(runtime, routes)`` builds the handler registry the ingest worker runs: one
handler per route, plus the verification requests (``hub.pipeline.verification``). What the
handlers need (the registry services, the running connectors) is passed in there and reaches
them as ``ctx.services``; nothing is registered on import and nothing is a module global.

Outcomes that are normal for a registry are not errors: a death of someone never registered is
acknowledged and counted; an ambiguous match or a birth whose mother is not registered goes to
the review queue for a person to decide. Only records that can never be applied (mapping or
schema failures, broken rules) are dead-lettered, with the reason. Each handling returns a
``HandlerResult``: the outcome, and the data-quality notes the message log keeps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hub.pipeline import verification
from hub.pipeline.apply import IngestContext
from hub.pipeline.routes import Route
from hub.pipeline.verification import ConnectorLookup, no_connector
from hub.workers.errors import PermanentError, TransientError
from hub.workers.handlers import Handler, HandlerContext, HandlerRegistry, HandlerResult
from mappings.engine import IdentifierReview, MappingError, Note, load_spec
from registry_core.errors import (
    BusinessRuleViolation,
    ConflictError,
    InvalidRecord,
    NotFound,
)
from registry_core.service import Registry, Source
from standards.hygiene import hygiene_problems
from standards.validation import SchemaViolation

log = logging.getLogger(__name__)

CloudEvent = dict[str, Any]


# ---------------------------------------------------------------------------- the services


@dataclass(frozen=True)
class IngestServices:
    """What the ingest handlers use, given by whoever builds them (``ingest_handlers``)."""

    registry: Registry
    connectors: ConnectorLookup = no_connector  # the running connector of a name, if any


class SupportsRegistry(Protocol):
    """A ``HubRuntime``, or anything else that holds the registry services."""

    @property
    def registry(self) -> Registry: ...


def ingest_handlers(
    runtime: SupportsRegistry,
    routes: Mapping[str, Route],
    *,
    connectors: ConnectorLookup | None = None,
    extra: Mapping[str, Handler] | None = None,
) -> HandlerRegistry:
    """The ingest worker's handlers: one per route of ``routes`` (keyed by routing key) and
    the verification requests. ``runtime`` gives the registry services (a ``HubRuntime``, or
    ``IngestServices`` with the connectors too); ``connectors`` finds a running connector by
    name (verification requests call the national ID connector); ``extra`` are handlers of
    other exact routing keys whoever assembles the worker adds (``intake.submission``)."""
    if isinstance(runtime, IngestServices):
        services = runtime if connectors is None else IngestServices(runtime.registry, connectors)
    else:
        services = IngestServices(runtime.registry, connectors or no_connector)
    handlers = HandlerRegistry("ingest", services)
    # Every key reaches the route handler: one without a route is dead-lettered as NoRoute,
    # naming the key (an instance nobody configured, a record type nobody declared).
    handlers.register("#", IngestHandler(routes))
    # Verification requests call a partner: they run outside a database transaction.
    handlers.register(verification.ROUTING_KEY, verification.handle, transactional=False)
    for key, handler in (extra or {}).items():
        handlers.register(key, handler)
    return handlers


class IngestHandler:
    """The handler of every route: map the partner payload, apply it, report the outcome."""

    def __init__(self, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)

    def __call__(self, event: CloudEvent, ctx: HandlerContext) -> HandlerResult:
        services: IngestServices = ctx.services
        notes: list[str] = []
        try:
            outcome = _handle(event, ctx, self.routes, services.registry, notes)
        except PermanentError as exc:
            exc.notes = tuple(notes)  # what was noted before it failed goes to the log too
            raise
        return HandlerResult(outcome, tuple(notes))


def _note_line(note: Note) -> str:
    """One data-quality note for the message log: target, rule and reason (never a value)."""
    return f"{note.target}: {note.message}"


def _handle(
    event: CloudEvent,
    ctx: HandlerContext,
    routes: Mapping[str, Route],
    registry: Registry,
    log_notes: list[str],
) -> str:
    routing_key = ctx.delivery.message.routing_key
    route = routes.get(routing_key)
    if route is None:
        raise PermanentError(f"no ingest route for {routing_key}", "NoRoute")
    data = event.get("data") or {}
    context = IngestContext(
        message_id=str(event.get("id")),
        source_id=str(data.get("source_id") or ""),
        headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
    )
    if ctx.session is not None:
        registry = registry.within(ctx.session)
    # The registry's own country profile: the mapping checks identifiers by the same rules
    # (and normalises them the same way) as every other write path.
    try:
        mapped = load_spec(route.spec).map(route.extract(event), registry.identifier_profile)
    except IdentifierReview as exc:
        log_notes.append(f"review: {exc.reason}")
        log_notes.extend(_note_line(n) for n in exc.notes)
        return _review_identifiers(registry, route, exc, context)
    except MappingError as exc:
        raise PermanentError(json.dumps(exc.as_dict())[:2000], "MappingError") from None
    record = mapped.record
    # Values no record may hold (NaN from a partner's "NaN", a NUL, a lone surrogate, a bidi
    # override) are refused here with their paths, before any write: a dead letter with the
    # reason, never a crashed statement (standards.hygiene).
    unhygienic = list(hygiene_problems(record))
    if unhygienic:
        raise PermanentError(
            "; ".join(f"{path}: {reason}" for path, _rule, reason in unhygienic)[:2000],
            "SchemaViolation",
        )
    log_notes.extend(_note_line(n) for n in mapped.notes)
    try:
        outcome = route.apply(registry, record, context)
        if mapped.notes:
            _keep_notes(registry, route, record, mapped.notes, outcome, context)
    except ConflictError as exc:
        raise TransientError(str(exc)) from exc
    except SchemaViolation as exc:
        raise PermanentError(
            "; ".join(f"{v.path}: {v.message}" for v in exc.violations)[:2000], "SchemaViolation"
        ) from None
    except (InvalidRecord, BusinessRuleViolation, NotFound) as exc:
        raise PermanentError(str(exc)[:2000], type(exc).__name__) from None
    log.debug("ingest %s: %s", routing_key, outcome)
    return outcome


def _connector_source(route: Route, ctx: IngestContext) -> Source:
    """Provenance of a note or review: the connector kind, as for the facts the record asserts
    (every instance of a kind ranks alike)."""
    return Source(route.kind, ctx.source_id[:128] or None)


def _review_identifiers(
    registry: Registry, route: Route, exc: IdentifierReview, ctx: IngestContext
) -> str:
    """The subject's identifier broke the country profile: a person decides (never a dead
    letter). The sealed review record holds the mapped facts, which identifiers were refused
    and why, the values as received (so staff can correct them) and the notes."""
    record = {
        **exc.record,
        "identifier_problems": [p.as_dict() for p in exc.problems],
        "refused_identifiers": exc.refused,
        "data_quality_notes": [n.as_dict() for n in exc.notes],
    }
    registry.queue_review(
        kind="invalid_identifier",
        reason=f"{route.key}: {exc.reason}"[:2000],
        record=record,
        candidates=[],
        source=_connector_source(route, ctx),
        message_id=ctx.message_id,
    )
    return "review"


def _keep_notes(
    registry: Registry,
    route: Route,
    record: Mapping[str, Any],
    notes: tuple[Note, ...],
    outcome: str,
    ctx: IngestContext,
) -> None:
    """Keep the notes where staff look: on the person the record is about (provenance) when
    the record was applied to a registered person, on the review when it went to one."""
    dicts = [n.as_dict() for n in notes]
    if outcome == "review":
        registry.add_review_notes(ctx.message_id, dicts)
        return
    subject = record.get(route.subject) if route.subject else None
    identifiers = subject.get("identifiers") if isinstance(subject, Mapping) else None
    if not identifiers:
        return
    found = registry.resolve({"identifiers": identifiers})
    if found.outcome == "match" and found.person_id is not None:
        registry.record_data_quality_notes(found.person_id, dicts, _connector_source(route, ctx))
