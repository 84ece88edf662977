"""Gathering what the rules read, for many subjects at once.

The same loaders serve a check on change (one household, a few persons) and a scan batch
(hundreds): each reads its subjects in a handful of ``IN`` queries rather than one query per
subject, so a scan's cost grows with the registry's size, not with its size times the number
of rules.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.quality.rules import HouseholdFacts, MemberFacts, PersonFacts, Thresholds
from hub.settings.quality import QualitySettings
from hub.subscriptions.tables import DELIVERED, QUEUED, DeliveryAttempt
from registry_core.models import (
    FieldAssertion,
    Household,
    HouseholdStatus,
    Membership,
    OutboxEvent,
    Person,
    SocioEconomicAttribute,
)

# Events that carry the news of a death (or follow from it): delivering them after a death is
# the point, not an issue. Likewise events whose ``reason`` is the death (a head's death puts
# the household in review: ``household.updated`` with reason ``head_died``).
DEATH_NOTICES = frozenset({"person.died", "household.member_removed", "consent.revoked"})
DEATH_REASONS = frozenset({"death", "head_died"})
DELIVERED_STATES = (DELIVERED, QUEUED)


def thresholds(config: QualitySettings) -> Thresholds:
    """The rules' thresholds from ``settings.quality``."""
    return Thresholds(
        max_age_years=config.max_age_years,
        min_household_size=config.min_household_size,
        max_household_size=config.max_household_size,
        min_head_age_years=config.min_head_age_years,
        min_parent_gap_years=config.min_parent_gap_years,
        income_tolerance_ratio=config.income_tolerance_ratio,
        income_min_difference=config.income_min_difference,
        deceased_grace_days=config.deceased_grace_days,
    )


# --- persons --------------------------------------------------------------------------------


def person_facts(
    session: Session, person_ids: Collection[uuid.UUID], config: QualitySettings
) -> dict[uuid.UUID, PersonFacts]:
    """The facts of each person in ``person_ids`` that exists."""
    if not person_ids:
        return {}
    persons = {
        p.id: p for p in session.scalars(select(Person).where(Person.id.in_(list(person_ids))))
    }
    rows = session.execute(
        select(
            Membership.person_id,
            Membership.household_id,
            Membership.start_date,
            Membership.end_date,
            Household.status,
            Household.admin_area_code,
        )
        .join(Household, Household.id == Membership.household_id)
        .where(Membership.person_id.in_(list(persons)))
    ).all()
    memberships: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:
        memberships[row.person_id].append(row)
    facts: dict[uuid.UUID, PersonFacts] = {}
    for person_id, person in persons.items():
        mine = memberships.get(person_id, [])
        active = sorted(
            {
                m.household_id
                for m in mine
                if m.end_date is None and m.status != HouseholdStatus.DISSOLVED
            },
            key=str,
        )
        filed = _filing_household(mine, active)
        late = _late_deliveries(session, person, mine, config) if person.death_date else []
        facts[person_id] = PersonFacts(
            person_id=person_id,
            birth_date=person.birth_date,
            death_date=person.death_date,
            is_deceased=bool(person.is_deceased),
            active_households=tuple(active),
            household_id=filed[0] if filed else None,
            area=filed[1] if filed else None,
            late_deliveries=len(late),
            late_subscriptions=tuple(sorted({code for code, _ in late})),
            latest_days_after_death=max((days for _, days in late), default=0),
        )
    return facts


def _filing_household(
    memberships: list[Any], active: list[uuid.UUID]
) -> tuple[uuid.UUID, str | None] | None:
    """The household a person's issues are filed under: the first active one, else the one
    they joined last (a deceased person's last household)."""
    if active:
        first = next(m for m in memberships if m.household_id == active[0])
        return first.household_id, first.admin_area_code
    if not memberships:
        return None
    latest = max(memberships, key=lambda m: (m.start_date, str(m.household_id)))
    return latest.household_id, latest.admin_area_code


def _names(event: Any, person: str) -> bool:
    """Whether an event's data names ``person`` (as its person, or as a listed member)."""
    data = event.data or {}
    if str(data.get("person_id") or "") == person:
        return True
    return any(str(m.get("person_id")) == person for m in data.get("members") or [])


def death_recorded_at(session: Session, person: Person) -> datetime | None:
    """When the registry learned of the death: its first ``person.died`` event, else the first
    assertion of a date of death (a death recorded as a field), else None."""
    died = session.scalar(
        select(func.min(OutboxEvent.time)).where(
            OutboxEvent.subject == f"person/{person.id}", OutboxEvent.routing_key == "person.died"
        )
    )
    if died is None:
        died = session.scalar(
            select(func.min(FieldAssertion.recorded_at)).where(
                FieldAssertion.entity_type == "person",
                FieldAssertion.entity_id == person.id,
                FieldAssertion.field == "death_date",
            )
        )
    return _aware(died) if died is not None else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _late_deliveries(
    session: Session, person: Person, memberships: Iterable[Any], config: QualitySettings
) -> list[tuple[str, int]]:
    """(subscription code, days after death) of each delivery to a program of an event naming
    ``person`` written after the registry learned of the death and later than the death plus
    the grace days. Events written before the registry knew (a death registered late) are not
    the registry's fault and not counted."""
    assert person.death_date is not None
    cutoff = datetime.combine(
        person.death_date + timedelta(days=config.deceased_grace_days + 1), time(), tzinfo=UTC
    )
    recorded = death_recorded_at(session, person)
    if recorded is not None:
        cutoff = max(cutoff, recorded)
    subjects = {f"person/{person.id}"} | {f"household/{m.household_id}" for m in memberships}
    rows = session.execute(
        select(
            DeliveryAttempt.subscription_code,
            OutboxEvent.subject,
            OutboxEvent.time,
            OutboxEvent.data,
            OutboxEvent.routing_key,
        )
        .join(OutboxEvent, OutboxEvent.event_id == DeliveryAttempt.event_id)
        .where(
            OutboxEvent.subject.in_(sorted(subjects)),
            OutboxEvent.time >= cutoff,
            OutboxEvent.routing_key.not_in(sorted(DEATH_NOTICES)),
            DeliveryAttempt.status.in_(DELIVERED_STATES),
        )
    ).all()
    me = str(person.id)
    found = []
    for row in rows:
        if (row.data or {}).get("reason") in DEATH_REASONS:
            continue
        if row.subject.startswith("household/") and not _names(row, me):
            continue
        moment = _aware(row.time)
        found.append((row.subscription_code, (moment.date() - person.death_date).days))
    return found


# --- households -----------------------------------------------------------------------------


def household_facts(
    session: Session, household_ids: Collection[uuid.UUID], config: QualitySettings
) -> dict[uuid.UUID, HouseholdFacts]:
    """The facts of each household in ``household_ids`` that exists."""
    if not household_ids:
        return {}
    households = {
        h.id: h
        for h in session.scalars(select(Household).where(Household.id.in_(list(household_ids))))
    }
    members: dict[uuid.UUID, list[MemberFacts]] = defaultdict(list)
    for row in session.execute(
        select(
            Membership.household_id,
            Membership.person_id,
            Membership.relationship_to_head,
            Person.birth_date,
            Person.is_deceased,
        )
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.household_id.in_(list(households)), Membership.end_date.is_(None))
        .order_by(Membership.start_date, Membership.person_id)
    ):
        members[row.household_id].append(
            MemberFacts(
                person_id=row.person_id,
                relationship=row.relationship_to_head,
                birth_date=row.birth_date,
                is_deceased=bool(row.is_deceased),
            )
        )
    incomes = _incomes(session, list(households), members, config)
    facts = {}
    for hid, household in households.items():
        declared, taxed, period = incomes[hid]
        facts[hid] = HouseholdFacts(
            household_id=hid,
            status=household.status,
            area=household.admin_area_code,
            head_person_id=household.head_person_id,
            members=tuple(members.get(hid, ())),
            declared_annual_income=declared,
            tax_annual_income=taxed,
            tax_period=period,
        )
    return facts


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _incomes(
    session: Session,
    household_ids: list[uuid.UUID],
    members: dict[uuid.UUID, list[MemberFacts]],
    config: QualitySettings,
) -> dict[uuid.UUID, tuple[float | None, float | None, str | None]]:
    """Per household: the latest declared yearly income, and the tax authority's yearly
    total over the current members for the latest tax year it reported."""
    multipliers = {name: 12.0 for name in config.declared_monthly_income}
    multipliers.update({name: 1.0 for name in config.declared_annual_income})
    tax_sources = set(config.tax_income_sources)
    names = sorted(set(multipliers) | {config.tax_income_name})
    rows = session.scalars(
        select(SocioEconomicAttribute).where(
            SocioEconomicAttribute.household_id.in_(household_ids),
            SocioEconomicAttribute.domain == "income",
            SocioEconomicAttribute.name.in_(names),
        )
    ).all()
    declared: dict[uuid.UUID, tuple[datetime, float]] = {}
    taxed: dict[uuid.UUID, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        value = _number(row.value)
        if value is None:
            continue
        if row.source_system in tax_sources:
            current = {m.person_id for m in members.get(row.household_id, ())}
            if row.name == config.tax_income_name and (
                row.person_id is None or row.person_id in current
            ):
                taxed[row.household_id][row.period] += value
            continue
        if row.name in multipliers:
            seen = declared.get(row.household_id)
            at = _aware(row.observed_at)
            if seen is None or at > seen[0]:
                declared[row.household_id] = (at, value * multipliers[row.name])
    result: dict[uuid.UUID, tuple[float | None, float | None, str | None]] = {}
    for hid in household_ids:
        periods = taxed.get(hid) or {}
        latest = max(periods, default=None)
        result[hid] = (
            declared[hid][1] if hid in declared else None,
            periods[latest] if latest is not None else None,
            latest,
        )
    return result
