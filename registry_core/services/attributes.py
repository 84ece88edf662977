"""Attributes and eligibility: socio-economic facts about a household and its scores.

Facts (income, dwelling, assets) are rows keyed by household, member, domain, name, period
and source, so a new survey question needs no migration and two sources' incomes stand side
by side. A fact whose value did not change emits nothing; one that did is listed in
``household.updated`` as ``attributes.<domain>.<name>``. A score recorded from outside (not
computed by a scoring model, ``registry_core.scoring``) becomes the household's current score of
that model; programs deciding on it are decided again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.errors import BusinessRuleViolation, InvalidRecord
from registry_core.models import (
    EligibilityScore,
    Household,
    Membership,
    Person,
    SocioEconomicAttribute,
)
from registry_core.records import household_record
from registry_core.services.base import (
    ChangeResult,
    Source,
    Workspace,
    current_membership,
    household_by_id,
    person_by_id,
)
from registry_core.services.membership import household_updated
from standards.validation import Violation, validate

# A member that satisfies person.json, for validating attributes alone against household.json.
_PROBE_MEMBER = {
    "given_name": "x",
    "family_name": "x",
    "sex": "unknown",
    "birth_date": "2000-01-01",
}


def validate_attributes(attributes: Sequence[Mapping[str, Any]]) -> None:
    """Check facts against the household schema's ``attributes`` (and nothing else)."""
    validate(
        "household.json",
        {"admin_area_code": "X", "attributes": list(attributes), "members": [_PROBE_MEMBER]},
    )


def record_attribute_rows(
    session: Session,
    household: Household,
    members: Sequence[Person],
    attributes: Sequence[Mapping[str, Any]],
    source: Source,
) -> list[str]:
    """Upsert facts (``member_index`` points into ``members``); returns what changed, as
    ``attributes.<domain>.<name>``."""
    changed: list[str] = []
    if not attributes:
        return changed
    # The household's facts from this source, read once: a look-up per fact (each flushing
    # what came before) made registering a household cost a round trip per answer.
    known = {
        (row.person_id, row.domain, row.name, row.period): row
        for row in session.scalars(
            select(SocioEconomicAttribute).where(
                SocioEconomicAttribute.household_id == household.id,
                SocioEconomicAttribute.source_system == source.system,
            )
        )
    }
    for index, attr in enumerate(attributes):
        person_id = None
        if "member_index" in attr:
            if attr["member_index"] >= len(members):
                raise InvalidRecord(
                    [
                        Violation(
                            f"$.attributes[{index}].member_index",
                            "range",
                            "points past the last member",
                        )
                    ]
                )
            person_id = members[attr["member_index"]].id
        key = dict(
            household_id=household.id,
            person_id=person_id,
            domain=attr["domain"],
            name=attr["name"],
            period=attr.get("period", ""),
            source_system=source.system,
        )
        found = (person_id, key["domain"], key["name"], key["period"])
        row = known.get(found)
        if row is None:
            row = SocioEconomicAttribute(**key, value=None)
            session.add(row)
            known[found] = row
        if row.value != attr["value"] or row.unit != attr.get("unit"):
            row.value = attr["value"]
            row.unit = attr.get("unit")
            row.source_record_id = source.record_id
            row.observed_at = source.at()
            changed.append(f"attributes.{attr['domain']}.{attr['name']}")
    return changed


class Attributes:
    """Socio-economic facts and eligibility scores."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def record_attributes(
        self,
        household_id: uuid.UUID | str,
        attributes: Sequence[Mapping[str, Any]],
        source: Source,
    ) -> ChangeResult:
        """Upsert socio-economic facts (per source, domain, name, period); emits
        ``household.updated`` listing the facts that changed."""
        validate_attributes(attributes)
        with self._ws.transaction() as session:
            household = household_by_id(session, household_id)
            members = [
                m.person
                for m in session.scalars(
                    select(Membership)
                    .where(Membership.household_id == household.id, Membership.end_date.is_(None))
                    .order_by(Membership.start_date, Membership.id)
                )
            ]
            changed = record_attribute_rows(session, household, members, attributes, source)
            events = []
            if changed:
                events.append(household_updated(session, household, sorted(set(changed)), source))
            return ChangeResult(household_record(session, household, self._ws.cipher), events)

    def record_person_attributes(
        self,
        person_id: uuid.UUID | str,
        attributes: Sequence[Mapping[str, Any]],
        source: Source,
    ) -> ChangeResult:
        """Socio-economic facts about one person (e.g. income from the tax authority), kept on
        their current household; emits ``household.updated`` listing the facts that changed.

        The result's record is the household's ``id`` and ``version`` only: its callers (the
        tax and partner feeds, field forms, corrections) read the events, and building the
        whole household record took a third of a tax return's ingest time (bench.scale)."""
        facts = [{**a, "member_index": 0} for a in attributes]
        validate_attributes(facts)
        with self._ws.transaction() as session:
            person = person_by_id(session, person_id, live=True)
            membership = current_membership(session, person.id)
            if membership is None:
                raise BusinessRuleViolation("the person is not a current member of any household")
            household = household_by_id(session, membership.household_id)
            changed = record_attribute_rows(session, household, [person], facts, source)
            events = []
            if changed:
                events.append(
                    household_updated(session, household, sorted(set(changed)), source, person.id)
                )
                session.flush()
            return ChangeResult({"id": str(household.id), "version": household.version}, events)

    def record_eligibility_score(
        self,
        household_id: uuid.UUID | str,
        model: str,
        score: float,
        inputs: Mapping[str, Any],
    ) -> ChangeResult:
        """Store a score computed outside the registry (kept in ``eligibility_scores`` when it
        differs from the model's last one, and as the household's current score of ``model``,
        without a model version); programs whose rule uses ``model`` are decided again and
        ``household.eligibility_changed`` is written for each whose verdict changed."""
        from registry_core.scoring.external import record_external_score

        with self._ws.transaction() as session:
            household = household_by_id(session, household_id)
            previous = session.scalar(
                select(EligibilityScore)
                .where(
                    EligibilityScore.household_id == household.id, EligibilityScore.model == model
                )
                .order_by(EligibilityScore.computed_at.desc())
                .limit(1)
            )
            events: list[str] = []
            if previous is None or previous.score != score:
                session.add(
                    EligibilityScore(
                        household_id=household.id, model=model, score=score, inputs=dict(inputs)
                    )
                )
                events = record_external_score(session, household.id, model, score, inputs)
            return ChangeResult(household_record(session, household, self._ws.cipher), events)
