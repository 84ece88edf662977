"""Applying a stored submission to the registry: register, update, or keep a conflict.

Runs inside the caller's transaction (the ingest worker's, or a conflict resolution's), in a
SAVEPOINT of its own: a submission the registry refuses rolls back alone and is marked
``invalid`` with the reason; the good ones of the same batch are kept. A submission that
updates a household carries the version it was based on; if the household changed since, it
becomes a ``conflict`` holding both sides and the fields that differ, for a person to decide.
Nothing is overwritten silently. Applied and conflicting submissions are reported to the
review queue (``ReviewSink``) in the same transaction.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from lxml import etree
from sqlalchemy.orm import Session

from hub.intake.contract import ReviewRequest, ReviewSink
from hub.intake.mapping import MappedSubmission, SubmissionUnmappable, map_submission
from hub.intake.tables import SEAL_RESULT, SEAL_XML, IntakeForm, IntakeSubmission
from hub.intake.xform import cached_model
from mappings.xml_records import safe_parser
from registry_core.crypto import IdentifierCipher
from registry_core.errors import BusinessRuleViolation, ConflictError, InvalidRecord, NotFound
from registry_core.service import Registry, Source
from standards.timeutil import utcnow
from standards.validation import SchemaViolation, Violation

log = logging.getLogger(__name__)

SOURCE_SYSTEM = "intake"
PERSON_FIELDS = ("given_name", "family_name", "other_names", "sex", "birth_date")
HOUSEHOLD_FIELDS = ("admin_area_code", "address", "location")
# Consent to the national ID cross-check, as the registry records consents.
CONSENT_PROGRAM = "national_id"
CONSENT_PURPOSE = "identity_verification"
CONSENT_CHANNEL = "field_form"


class NoReviewSink:
    """The review sink until ``hub.review`` provides one: reports nothing."""

    def submitted(self, session: Session, request: ReviewRequest) -> None:
        return None


def source_of(row: IntakeSubmission) -> Source:
    """Provenance of every fact a submission asserts: system ``intake``, the record id
    ``<form_id>@<version>/<instanceID>`` (the submission row names the submitter)."""
    record_id = f"{row.form_id}@{row.form_version}/{row.instance_id}"[:128]
    return Source(SOURCE_SYSTEM, record_id, row.received_at)


def _record_consent(
    registry: Registry, row: IntakeSubmission, source: Source, household_id: str
) -> None:
    """The form's consent to the ID check, with the submission as its evidence and the
    submitter as who recorded it (the history ``GET /api/v1/households/{id}/consents`` shows)."""
    registry.grant_consent(
        CONSENT_PROGRAM,
        CONSENT_PURPOSE,
        CONSENT_CHANNEL,
        source,
        household_id=household_id,
        evidence_reference=source.record_id,
        recorded_by=f"intake:{row.submitted_by}"[:200],
    )


def seal_json(cipher: IdentifierCipher, value: Any) -> bytes:
    return cipher.seal(SEAL_RESULT, json.dumps(value, sort_keys=True, default=str).encode())


def open_json(cipher: IdentifierCipher, blob: bytes | None) -> Any:
    return json.loads(cipher.unseal(SEAL_RESULT, blob)) if blob else None


@dataclass(frozen=True)
class Outcome:
    status: str  # applied | conflict | invalid | failed
    reason: str | None = None


def differences(mapped: MappedSubmission, current: dict[str, Any]) -> list[str]:
    """The fields where the submission and the registry's household differ."""
    found = [
        field
        for field in HOUSEHOLD_FIELDS
        if field in mapped.record and mapped.record[field] != current.get(field)
    ]
    registry_members = {m.get("id"): m for m in current.get("members", [])}
    seen = set()
    for index, member in enumerate(mapped.record.get("members", [])):
        person_id = mapped.person_ids[index] if index < len(mapped.person_ids) else None
        if not person_id or person_id not in registry_members:
            found.append(f"members[{index + 1}] (new)")
            continue
        seen.add(person_id)
        theirs = registry_members[person_id]
        for field in (*PERSON_FIELDS, "relationship"):
            if field in member and member[field] != theirs.get(field):
                found.append(f"members[{index + 1}].{field}")
    for person_id in registry_members:
        if person_id not in seen and any(mapped.person_ids):
            found.append(f"member {person_id} (not in the submission)")
    return found


class SubmissionApplier:
    """Applies stored submissions; built once per process with the cipher and review sink."""

    def __init__(self, cipher: IdentifierCipher, review: ReviewSink | None = None) -> None:
        self.cipher = cipher
        self.review: ReviewSink = review or NoReviewSink()

    def mapped(
        self, session: Session, row: IntakeSubmission, registry: Registry
    ) -> MappedSubmission:
        form = session.get(IntakeForm, row.form_pk)
        if form is None:
            raise SubmissionUnmappable([{"where": "$", "message": "its form version is gone"}])
        model = cached_model(form.md5, form.xform)
        root = etree.fromstring(self.cipher.unseal(SEAL_XML, row.xml_sealed), safe_parser())
        return map_submission(model, root, registry.identifier_profile)

    def apply(
        self,
        session: Session,
        row: IntakeSubmission,
        registry: Registry,
        *,
        against_version: int | None = None,
    ) -> Outcome:
        """Apply ``row`` (in ``session``); set its status, reason and result; report it to the
        review sink. ``against_version``: a reviewer applies a conflict to this version."""
        registry = registry.within(session)
        try:
            mapped = self.mapped(session, row, registry)
        except SubmissionUnmappable as exc:
            return self._finish(
                session, row, Outcome("invalid", str(exc)), {"problems": exc.problems}
            )
        except Exception as exc:  # a broken row (sealed with another key, unparseable)
            log.exception("intake: submission %s cannot be read", row.id)
            return self._finish(
                session, row, Outcome("failed", f"cannot be read: {type(exc).__name__}"), None
            )
        row.household_id = uuid.UUID(mapped.household_id) if mapped.household_id else None
        row.base_version = mapped.base_version
        try:
            with session.begin_nested():
                outcome, result = self._apply_mapped(row, mapped, registry, against_version)
        except ConflictError as exc:
            outcome, result = self._conflict(row, mapped, registry, str(exc))
        except (InvalidRecord, BusinessRuleViolation, NotFound, SchemaViolation) as exc:
            outcome, result = (
                Outcome("invalid", _reason(exc)),
                {
                    "problems": [{"where": "$", "message": _reason(exc)}],
                    "mapped": mapped.as_dict(),
                },
            )
        return self._finish(session, row, outcome, result, mapped)

    def _apply_mapped(
        self,
        row: IntakeSubmission,
        mapped: MappedSubmission,
        registry: Registry,
        against_version: int | None,
    ) -> tuple[Outcome, dict[str, Any]]:
        source = source_of(row)
        if mapped.household_id is None:
            result = registry.register_household(mapped.record, source)
            household_id = result.record["id"]
            row.household_id = uuid.UUID(household_id)
            if mapped.consent_national_id_check:
                _record_consent(registry, row, source, household_id)
            return Outcome("applied"), {"mapped": mapped.as_dict(), "household": result.record}
        base = against_version if against_version is not None else mapped.base_version
        if base is None:
            raise InvalidRecord(
                [
                    Violation(
                        "base_version",
                        "required",
                        "an update (household_id set) must carry the version it was based on",
                    )
                ]
            )
        current = registry.get_household(mapped.household_id)
        if current["version"] != base:
            raise ConflictError(
                f"household {mapped.household_id} is at version {current['version']}, "
                f"the submission was based on {base}",
                current_version=current["version"],
            )
        household_id = mapped.household_id
        changes = {
            k: mapped.record[k]
            for k in HOUSEHOLD_FIELDS
            if k in mapped.record and mapped.record[k] != current.get(k)
        }
        if changes:
            registry.update_household(household_id, changes, source, expected_version=base)
        registered = {m["id"] for m in current.get("members", [])}
        person_ids: list[str] = []
        for index, member in enumerate(mapped.record["members"]):
            person_id = mapped.person_ids[index] if index < len(mapped.person_ids) else None
            if person_id and person_id in registered:
                theirs = next(m for m in current["members"] if m["id"] == person_id)
                fields = {
                    k: member[k]
                    for k in PERSON_FIELDS
                    if k in member and member[k] != theirs.get(k)
                }
                known = {(i["system"], i["value"]) for i in theirs.get("identifiers", [])}
                new_ids = [
                    i
                    for i in member.get("identifiers", [])
                    if (i["system"], i["value"]) not in known
                ]
                if new_ids:
                    fields["identifiers"] = new_ids
                if fields:
                    registry.update_person(person_id, fields, source)
                person_ids.append(person_id)
            else:
                before = {m["id"] for m in registry.get_household(household_id)["members"]}
                after = registry.add_member(household_id, member, source).record
                added = [m["id"] for m in after["members"] if m["id"] not in before]
                person_ids.append(added[0] if added else "")
        by_member: dict[int, list[dict[str, Any]]] = {}
        household_facts = []
        for fact in mapped.record.get("attributes", []):
            if "member_index" in fact:
                plain = {k: v for k, v in fact.items() if k != "member_index"}
                by_member.setdefault(fact["member_index"], []).append(plain)
            else:
                household_facts.append(fact)
        if household_facts:
            registry.record_attributes(household_id, household_facts, source)
        for index, facts in by_member.items():
            if index < len(person_ids) and person_ids[index]:
                registry.record_person_attributes(person_ids[index], facts, source)
        if mapped.consent_national_id_check:
            _record_consent(registry, row, source, household_id)
        # A field visit that submitted the household again recertifies it, changed or not.
        registry.recertify(household_id, source)
        return Outcome("applied"), {
            "mapped": mapped.as_dict(),
            "household": registry.get_household(household_id),
        }

    def _conflict(
        self, row: IntakeSubmission, mapped: MappedSubmission, registry: Registry, reason: str
    ) -> tuple[Outcome, dict[str, Any]]:
        try:
            current = registry.get_household(str(mapped.household_id))
        except NotFound:
            return Outcome("invalid", "the household to update is not in the registry"), {
                "mapped": mapped.as_dict()
            }
        return Outcome("conflict", reason[:1000]), {
            "submitted": mapped.as_dict(),
            "registry": current,
            "base_version": mapped.base_version,
            "current_version": current.get("version"),
            "differences": differences(mapped, current),
        }

    def _finish(
        self,
        session: Session,
        row: IntakeSubmission,
        outcome: Outcome,
        result: dict[str, Any] | None,
        mapped: MappedSubmission | None = None,
    ) -> Outcome:
        row.status = outcome.status
        row.reason = outcome.reason[:4000] if outcome.reason else None
        row.result_sealed = seal_json(self.cipher, result) if result is not None else None
        row.processed_at = utcnow()
        if outcome.status in ("applied", "conflict"):
            self.review.submitted(session, review_request(row, mapped))
        session.flush()
        return outcome


def review_request(row: IntakeSubmission, mapped: MappedSubmission | None) -> ReviewRequest:
    members = len(mapped.record.get("members", [])) if mapped else 0
    kind = "update" if row.base_version is not None else "registration"
    summary = f"{row.form_id} v{row.form_version}: household {kind}, {members} member(s)"
    if row.status == "conflict":
        summary += "; conflicts with the registry"
    return ReviewRequest(
        instance_id=row.instance_id,
        form_id=row.form_id,
        form_version=row.form_version,
        submitted_by=row.submitted_by,
        admin_area_code=row.admin_area_code,
        household_id=str(row.household_id) if row.household_id else None,
        summary=summary,
        conflict=row.status == "conflict",
        notes=tuple(mapped.notes) if mapped else (),
        visited_at=(mapped.collected_at if mapped else None) or row.received_at,
        latitude=_coordinate(mapped, "lat"),
        longitude=_coordinate(mapped, "lon"),
    )


def _coordinate(mapped: MappedSubmission | None, axis: str) -> float | None:
    location = mapped.record.get("location") if mapped else None
    value = location.get(axis) if isinstance(location, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _reason(exc: Exception) -> str:
    violations = getattr(exc, "violations", None)
    if violations:
        return "; ".join(f"{v.path}: {v.message}" for v in violations)[:2000]
    return str(exc)[:2000] or type(exc).__name__
