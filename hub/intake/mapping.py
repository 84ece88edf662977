"""A validated instance -> the canonical household, through the mapping engine.

The household-level answers run through ``mappings/specs/intake_household.toml`` and each
member of the members repeat through ``intake_member.toml`` (the engine maps one object per
run; a form's repeat is a list of them). The parts are then put together as the registry's
canonical household: members head first as the form gave them, and every other question as
an attribute (a member's with its ``member_index``). What cannot be mapped is refused with
every problem and its place in the form (``members[2].birth_date``), never a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from hub.intake.instance import MEMBERS_REPEAT, flatten
from hub.intake.xform import FormModel
from mappings.engine import IdentifierReview, MappingError, Problem, load_spec
from standards.identifiers import IdentifierProfile

HOUSEHOLD_SPEC = "intake_household"
MEMBER_SPEC = "intake_member"


class SubmissionUnmappable(ValueError):
    """The answers cannot become a household; ``problems`` says where and why."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        shown = "; ".join(f"{p.get('where')}: {p.get('message')}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"the answers cannot become a household: {shown}{more}")
        self.problems = problems


@dataclass
class MappedSubmission:
    """What a submission asserts: the canonical household (``record``), and for an update the
    household and version it was based on and the registry ids of its members."""

    record: dict[str, Any]
    household_id: str | None = None
    base_version: int | None = None
    person_ids: list[str | None] = field(default_factory=list)
    consent_national_id_check: bool | None = None
    notes: list[str] = field(default_factory=list)
    # When the form was filled (its ``end``, else ``start`` metadata), for the visit record.
    collected_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "household": self.record,
            "household_id": self.household_id,
            "base_version": self.base_version,
            "person_ids": self.person_ids,
            "consent_national_id_check": self.consent_national_id_check,
            "notes": self.notes,
        }


def _problems(exc: MappingError, prefix: str) -> list[dict[str, Any]]:
    found: list[Problem] = list(exc.problems)
    return [
        {
            "where": prefix + (p.source_path or "$").removeprefix("$.answers.").removeprefix("$"),
            "target": p.target,
            "rule": p.rule,
            "message": p.message,
        }
        for p in found
    ]


def collected_at(answers: dict[str, Any]) -> datetime | None:
    """The ``end`` (else ``start``) timestamp ODK apps record, as an aware datetime; None when
    absent or unreadable (the visit then takes the time the hub received the form)."""
    for name in ("end", "start"):
        value = answers.get(name)
        if isinstance(value, datetime):
            found = value
        elif isinstance(value, str) and value.strip():
            try:
                found = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
        else:
            continue
        return found if found.tzinfo else found.replace(tzinfo=UTC)
    return None


def map_submission(
    model: FormModel, root: etree._Element, identifiers: IdentifierProfile | None = None
) -> MappedSubmission:
    """The canonical household an instance of ``model`` asserts, or ``SubmissionUnmappable``."""
    flat = flatten(model, root)
    problems: list[dict[str, Any]] = []
    household: dict[str, Any] = {}
    try:
        household = load_spec(HOUSEHOLD_SPEC).map(flat.household, identifiers).record
    except MappingError as exc:
        problems.extend(_problems(exc, ""))
    members: list[dict[str, Any]] = []
    for index, member in enumerate(flat.members):
        try:
            members.append(load_spec(MEMBER_SPEC).map(member, identifiers).record)
        except IdentifierReview as exc:
            problems.extend(_problems(exc, f"{MEMBERS_REPEAT}[{index + 1}]."))
        except MappingError as exc:
            problems.extend(_problems(exc, f"{MEMBERS_REPEAT}[{index + 1}]."))
    if not flat.members and not problems and not household.get("household_id"):
        problems.append(
            {
                "where": MEMBERS_REPEAT,
                "target": "members",
                "rule": "required",
                "message": "a new household is registered with its members (at least the head)",
            }
        )
    if problems:
        raise SubmissionUnmappable(problems)
    attributes = list(household.get("attributes", []))
    for index, member in enumerate(members):
        attributes.extend({**a, "member_index": index} for a in member.get("attributes", []))
    record: dict[str, Any] = {
        k: household[k] for k in ("admin_area_code", "address", "location") if k in household
    }
    record["members"] = [m["person"] for m in members]
    if attributes:
        record["attributes"] = attributes
    return MappedSubmission(
        record=record,
        household_id=household.get("household_id"),
        base_version=household.get("base_version"),
        person_ids=[m.get("person_id") for m in members],
        consent_national_id_check=household.get("consent_national_id_check"),
        notes=flat.notes,
        collected_at=collected_at(flat.household.get("answers", {})),
    )
