"""Births and deaths (civil registry records, OpenCRVS or DCI alike): ``birth``, ``death``."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from hub.pipeline.apply.common import IngestContext, ref_with_ids, source, who
from registry_core.errors import BusinessRuleViolation
from registry_core.service import Registry, Source
from registry_core.vital import VitalFacts

log = logging.getLogger(__name__)

_DECLARATION_SYSTEMS = ("crvs_tracking_id", "crvs_draft_id")


def _declaration_source(record: dict[str, Any], ctx: IngestContext) -> Source:
    """Provenance of a civil-registry record: its registration number, else (provisional)
    its tracking id, else its draft id, else the event id."""
    record_id = next(
        (
            record[k]
            for k in ("registration_number", "tracking_id", "draft_id", "event_id")
            if record.get(k)
        ),
        None,
    )
    return source(ctx, record_id, record.get("registered_on"))


def _vital_facts(record: dict[str, Any], event: str, subject: str) -> VitalFacts:
    """The parts of a birth/death record beyond its subject, for the registry's provenance."""
    place = {
        part: record[f"{event}_place_{part}"]
        for part in ("admin_area_code", "type", "name")
        if record.get(f"{event}_place_{part}")
    }
    related = {role: record[role] for role in ("mother", "father", "informant") if record.get(role)}
    if event == "birth" and "mother" in related:
        related["mother"] = {k: v for k, v in related["mother"].items() if k == "identifiers"}
    return VitalFacts(
        place=place,
        residence=record.get(f"{subject}_residence") or {},
        related=related,
        provisional=bool(record.get("provisional")) or not record.get("registration_number"),
    )


def _note_ignored(kind: str, record: dict[str, Any], ctx: IngestContext) -> None:
    """What the partner sent but the mapping did not read: shapes only, never values.

    At DEBUG: real bundles always carry parts the registry has no use for (Observations, the
    facility's Organization), and a line per event at INFO buried what the hub did."""
    ignored = record.get("ignored") or []
    if ignored:
        log.debug(
            "civil registry %s (message %s): %d part(s) not read: %s",
            kind,
            ctx.message_id,
            len(ignored),
            "; ".join(ignored)[:1000],
        )


def apply_birth(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """A birth: the child joins the mother's household; a later delivery of the same birth
    (the registration number after a provisional record) updates that child."""
    provenance = _declaration_source(record, ctx)
    facts = _vital_facts(record, "birth", "mother")
    _note_ignored("birth", record, ctx)
    child_ids = record["child"].get("identifiers", [])
    known = registry.resolve({"identifiers": child_ids}) if child_ids else None
    mother_id: uuid.UUID | None = None
    if known is None or known.outcome != "match":
        mother = registry.resolve(ref_with_ids(record["mother"]))
        if mother.outcome != "match" or mother.person_id is None:
            reason = (
                "the mother is not registered"
                if mother.outcome == "no_match"
                else f"the mother could not be identified with certainty: {mother.reason}"
            )
            registry.queue_review(
                kind="birth",
                reason=reason,
                record=record,
                candidates=mother.candidates,
                source=provenance,
                message_id=ctx.message_id,
            )
            return "review"
        mother_id = mother.person_id
    try:
        result = registry.record_birth(mother_id, record["child"], provenance, facts)
    except BusinessRuleViolation as exc:
        registry.queue_review(
            kind="birth",
            reason=str(exc),
            record=record,
            candidates=[],
            source=provenance,
            message_id=ctx.message_id,
        )
        return "review"
    return "applied" if result.events else "already_applied"


def apply_death(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """A death: the person is marked deceased once, their membership ending on the date of
    death; a later delivery of the same death adds its registration number, nothing else."""
    provenance = _declaration_source(record, ctx)
    _note_ignored("death", record, ctx)
    deceased = who(registry, record["deceased"], "death", record, provenance, ctx)
    if isinstance(deceased, str):
        return deceased
    declaration_ids = [
        i for i in record["deceased"].get("identifiers", []) if i["system"] in _DECLARATION_SYSTEMS
    ]
    try:
        result = registry.record_death(
            deceased,
            record["death_date"],
            provenance,
            record.get("registration_number"),
            identifiers=declaration_ids,
            facts=_vital_facts(record, "death", "deceased"),
        )
    except BusinessRuleViolation as exc:
        registry.queue_review(
            kind="death",
            reason=str(exc),
            record=record,
            candidates=[(str(deceased), 1.0)],
            source=provenance,
            message_id=ctx.message_id,
        )
        return "review"
    return "applied" if result.events else "already_applied"
