"""Running the rules over chosen subjects and keeping the issue table in step.

``check_subjects`` is the one path every check takes — on change (``hub.quality.handlers``,
a few subjects per registry event) and in a scan (``hub.quality.scan``, a batch at a time):
gather the facts, run every rule of each subject's type, reconcile the issues.

``subjects_of_event`` says which subjects a registry event may have changed, so the worker
re-checks exactly those: the household, the persons the event names, and the household's
current members (a household dissolved, a member added or removed changes whether each of
them is in two households at once); for a person's own event, the households they are in.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.quality.facts import household_facts, person_facts, thresholds
from hub.quality.rules import Finding, check_household, check_person
from hub.quality.service import Reconciled, reconcile
from hub.settings.quality import QualitySettings
from registry_core.models import Membership


def check_subjects(
    session: Session,
    config: QualitySettings,
    now: datetime,
    *,
    households: Collection[uuid.UUID] = (),
    persons: Collection[uuid.UUID] = (),
) -> Reconciled:
    """Check the given households and persons (those that exist) in ``session``'s
    transaction; returns what changed in the issue table."""
    limits = thresholds(config)
    today = now.date()
    findings: list[Finding] = []
    checked: list[tuple[str, uuid.UUID]] = []
    for hid, hfacts in household_facts(session, set(households), config).items():
        findings.extend(check_household(hfacts, limits, today))
        checked.append(("household", hid))
    for pid, pfacts in person_facts(session, set(persons), config).items():
        findings.extend(check_person(pfacts, limits, today))
        checked.append(("person", pid))
    return reconcile(session, checked, findings, now)


@dataclass
class Subjects:
    households: set[uuid.UUID] = field(default_factory=set)
    persons: set[uuid.UUID] = field(default_factory=set)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def subjects_of_event(session: Session, routing_key: str, data: Mapping[str, Any]) -> Subjects:
    """The subjects a registry event (``household.*``, ``person.*``) may have changed."""
    found = Subjects()
    person = _uuid(data.get("person_id"))
    household = _uuid(data.get("household_id"))
    if person:
        found.persons.add(person)
    for member in data.get("members") or []:
        if isinstance(member, Mapping) and (pid := _uuid(member.get("person_id"))):
            found.persons.add(pid)
    if household:
        found.households.add(household)
        found.persons.update(
            session.scalars(
                select(Membership.person_id).where(
                    Membership.household_id == household, Membership.end_date.is_(None)
                )
            )
        )
    if routing_key.startswith("person.") and person:
        # A birth date corrected, a death recorded: the person's households change too.
        found.households.update(
            session.scalars(select(Membership.household_id).where(Membership.person_id == person))
        )
    return found
