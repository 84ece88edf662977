"""What every registry applier shares: its context, provenance, and finding the person.

An applier takes one mapped inbound record and applies it to the registry inside the ingest
worker's transaction; it returns the outcome the worker counts ("applied", "already_applied",
"review", "not_registered", ...). Normal registry outcomes are not errors; a record that breaks
a rule raises the registry's own error, which the ingest dead-letters with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from registry_core.service import Registry, Source


@dataclass(frozen=True)
class IngestContext:
    """The message an applier works for: its id, the partner's source id and headers, and
    ``source_system``, the connector kind the record came from (the provenance of every fact
    it asserts, so two instances of one kind rank alike in source precedence). The route sets
    it (``hub.pipeline.routes.Route.apply``)."""

    message_id: str
    source_id: str
    headers: Mapping[str, str]
    source_system: str = ""


# (registry, mapped record, context) -> outcome
Applier = Callable[[Registry, dict[str, Any], IngestContext], str]


def source(ctx: IngestContext, record_id: Any, on: Any = None) -> Source:
    """Provenance of a fact: the connector kind, the partner's record id, and the day it was
    true (``on``, an ISO date) when the record says."""
    if not ctx.source_system:
        raise ValueError("an ingest context without source_system: apply records through a Route")
    asserted = None
    if isinstance(on, str) and on:
        try:
            day = date.fromisoformat(on[:10])
            asserted = datetime(day.year, day.month, day.day, tzinfo=UTC)
        except ValueError:
            asserted = None
    return Source(ctx.source_system, str(record_id)[:128] if record_id else None, asserted)


def ref_with_ids(ref: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ref.items() if v is not None}


def who(
    registry: Registry,
    reference: Mapping[str, Any],
    kind: str,
    record: dict[str, Any],
    provenance: Source,
    ctx: IngestContext,
) -> uuid.UUID | str:
    """The registered person ``reference`` is about, or the outcome to report instead:
    "not_registered" when nobody matches, "review" (queued for a person) when unsure."""
    found = registry.resolve(ref_with_ids(reference))
    if found.outcome == "no_match":
        return "not_registered"
    if found.outcome != "match" or found.person_id is None:
        registry.queue_review(
            kind=kind,
            reason=found.reason,
            record=record,
            candidates=found.candidates,
            source=provenance,
            message_id=ctx.message_id,
        )
        return "review"
    return found.person_id
