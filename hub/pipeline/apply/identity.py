"""What the national ID authority says about a person: ``verification``, ``identity``."""

from __future__ import annotations

from typing import Any

from hub.pipeline.apply.common import IngestContext, source
from hub.workers.errors import PermanentError
from registry_core.service import Registry


def apply_verification(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """A verification answer: the person it was asked for is verified, or not, and why."""
    person_id = ctx.headers.get("person_id") or record.get("person_id")
    if not person_id:
        raise PermanentError(
            "a verification answer must name the person it was asked for", "MissingReference"
        )
    provenance = source(ctx, record.get("transaction_id") or ctx.source_id)
    result = registry.record_verification(
        person_id,
        bool(record["verified"]),
        provenance,
        matched_fields=record.get("matched_fields", []),
        mismatched_fields=record.get("mismatched_fields", []),
        reason=record.get("reason") or ("not verified" if not record["verified"] else None),
    )
    return "applied" if result.events else "already_applied"


def apply_identity(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """An eKYC record: the authority's view of a person's names, sex and birth date."""
    person = record["person"]
    found = registry.resolve({"identifiers": person.get("identifiers", [])})
    if found.outcome != "match" or found.person_id is None:
        return "not_registered"
    provenance = source(ctx, record.get("transaction_id") or ctx.source_id)
    fields = {
        k: person[k]
        for k in ("given_name", "family_name", "other_names", "sex", "birth_date")
        if k in person
    }
    result = registry.update_person(found.person_id, fields, provenance) if fields else None
    return "applied" if result and result.events else "already_applied"
