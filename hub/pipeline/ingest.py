"""The ingest worker's handlers: raw partner record -> mapping -> registry.

Each routing key on ``sr.inbound`` (``<connector>.<record_type>``) names a route
(``hub.pipeline.routes``, built from the connectors' own record type declarations): how to
take the partner payload out of the envelope (``hub.pipeline.extract``), which mapping spec
turns it into an inbound record (``standards/schemas/inbound``), and which registry applier
takes it (``hub.pipeline.apply``). Handlers run inside the
worker's transaction (``Registry.within``), so the effect and the processed-message record
commit together: a redelivered message changes nothing twice.

Outcomes that are normal for a registry are not errors: a death of someone never registered is
acknowledged and counted; an ambiguous match or a birth whose mother is not registered goes to
the review queue for a person to decide. Only records that can never be applied (mapping or
schema failures, broken rules) are dead-lettered, with the reason.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from hub.monitoring.hooks import observe_ingest
from hub.pipeline.apply import IngestContext
from hub.pipeline.routes import Route, installed_routes
from hub.workers.errors import PermanentError, TransientError
from hub.workers.handlers import INGEST_HANDLERS, HandlerContext
from mappings.engine import IdentifierReview, MappingError, Note, load_spec
from registry_core.errors import (
    BusinessRuleViolation,
    ConflictError,
    InvalidRecord,
    NotFound,
)
from registry_core.service import Registry, Source
from standards.validation import SchemaViolation

log = logging.getLogger(__name__)

CloudEvent = dict[str, Any]

# What happened to each record, by outcome; read by monitoring and tests.
OUTCOMES: Counter[str] = Counter()
_OUTCOMES_LOCK = threading.Lock()


def _count(outcome: str) -> None:
    with _OUTCOMES_LOCK:
        OUTCOMES[outcome] += 1


# ---------------------------------------------------------------------------- the registry

_registry_factory: Callable[[], Registry] | None = None
_registry: Registry | None = None
_registry_lock = threading.Lock()


def configure(factory: Callable[[], Registry]) -> None:
    """Use ``factory``'s registry (``srhub run`` shares its runtime's); tests pass their own."""
    global _registry_factory, _registry
    with _registry_lock:
        _registry_factory, _registry = factory, None


def _the_registry() -> Registry:
    global _registry
    with _registry_lock:
        if _registry is None:
            if _registry_factory is not None:
                _registry = _registry_factory()
            else:  # a separate ``srhub worker ingest`` process: build from settings
                from hub.runtime import HubRuntime
                from hub.settings import load_settings

                _registry = HubRuntime(load_settings()).registry
        return _registry


def handle(event: CloudEvent, ctx: HandlerContext) -> None:
    """The ingest handler for every routing key on ``sr.inbound`` (its route, or NoRoute)."""
    # monitoring hook (Step 6): message log outcome and metrics of every handling
    with observe_ingest(event, ctx.delivery.message.routing_key) as note:
        note.outcome = _handle(event, ctx, note.notes)


def _note_line(note: Note) -> str:
    """One data-quality note for the message log: target, rule and reason (never a value)."""
    return f"{note.target}: {note.message}"


def _handle(event: CloudEvent, ctx: HandlerContext, log_notes: list[str] | None = None) -> str:
    routing_key = ctx.delivery.message.routing_key
    route = installed_routes().get(routing_key)
    if route is None:
        raise PermanentError(f"no ingest route for {routing_key}", "NoRoute")
    data = event.get("data") or {}
    context = IngestContext(
        message_id=str(event.get("id")),
        source_id=str(data.get("source_id") or ""),
        headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
    )
    registry = _the_registry()
    if ctx.session is not None:
        registry = registry.within(ctx.session)
    log_notes = log_notes if log_notes is not None else []
    # The registry's own country profile: the mapping checks identifiers by the same rules
    # (and normalises them the same way) as every other write path.
    try:
        mapped = load_spec(route.spec).map(route.extract(event), registry.identifier_profile)
    except IdentifierReview as exc:
        _count("review")
        log_notes.append(f"review: {exc.reason}")
        log_notes.extend(_note_line(n) for n in exc.notes)
        return _review_identifiers(registry, routing_key, exc, context)
    except MappingError as exc:
        _count("mapping_failed")
        raise PermanentError(json.dumps(exc.as_dict())[:2000], "MappingError") from None
    record = mapped.record
    log_notes.extend(_note_line(n) for n in mapped.notes)
    try:
        outcome = route.apply(registry, record, context)
        if mapped.notes:
            _keep_notes(registry, route, routing_key, record, mapped.notes, outcome, context)
    except ConflictError as exc:
        raise TransientError(str(exc)) from exc
    except SchemaViolation as exc:
        _count("invalid")
        raise PermanentError(
            "; ".join(f"{v.path}: {v.message}" for v in exc.violations)[:2000], "SchemaViolation"
        ) from None
    except (InvalidRecord, BusinessRuleViolation, NotFound) as exc:
        _count("refused")
        raise PermanentError(str(exc)[:2000], type(exc).__name__) from None
    _count(outcome)
    log.debug("ingest %s: %s", routing_key, outcome)
    return outcome


def _connector_source(routing_key: str, ctx: IngestContext) -> Source:
    return Source(routing_key.split(".", 1)[0], ctx.source_id[:128] or None)


def _review_identifiers(
    registry: Registry, routing_key: str, exc: IdentifierReview, ctx: IngestContext
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
        reason=f"{routing_key}: {exc.reason}"[:2000],
        record=record,
        candidates=[],
        source=_connector_source(routing_key, ctx),
        message_id=ctx.message_id,
    )
    return "review"


def _keep_notes(
    registry: Registry,
    route: Route,
    routing_key: str,
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
        registry.record_data_quality_notes(
            found.person_id, dicts, _connector_source(routing_key, ctx)
        )


# The routes come from the connectors' declarations (every configured instance of a kind);
# they are built now, so what cannot be routed is reported when the worker starts. Keys
# without a route are dead-lettered by ``_handle`` as NoRoute, naming the key.
installed_routes()
INGEST_HANDLERS.register("#", handle)

# Verification requests call a partner: they run outside a database transaction.
import hub.pipeline.verification  # noqa: E402,F401
