"""Households with data-quality problems, made through the registry's own services (and, for
what the services refuse to create, the way legacy data gets there: rows written directly),
for the data-quality tests on SQLite and PostgreSQL and the dashboard's browser test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from hub.quality.tables import DataQualityIssue
from hub.subscriptions.tables import DELIVERED, DeliveryAttempt
from registry_core.models import Membership, OutboxEvent
from registry_core.service import Registry, Source
from standards.timeutil import utcnow

STAFF = Source("registry_staff")


def person(name: str, birth: str, relationship: str = "head", **extra: Any) -> dict[str, Any]:
    return {
        "given_name": name,
        "family_name": "Otieno",
        "sex": "female",
        "birth_date": birth,
        "relationship": relationship,
        **extra,
    }


def register(registry: Registry, area: str, *members: dict[str, Any]) -> dict[str, Any]:
    record = {"admin_area_code": area, "address": "1 Test Road", "members": list(members)}
    return registry.register_household(record, STAFF).record


def member_id(household: dict[str, Any], name: str) -> str:
    return next(str(m["id"]) for m in household["members"] if m["given_name"] == name)


def issues(sessions: Any, **where: Any) -> list[DataQualityIssue]:
    with sessions() as session:
        query = select(DataQualityIssue)
        for name, value in where.items():
            query = query.where(getattr(DataQualityIssue, name) == value)
        return list(session.scalars(query.order_by(DataQualityIssue.kind)))


def join_second_household(sessions: Any, person_id: str, household_id: str) -> None:
    """A current membership in another household, as a legacy import leaves it (the
    registry's own ``add_member`` refuses this)."""
    with sessions.begin() as session:
        session.add(
            Membership(
                household_id=uuid.UUID(household_id),
                person_id=uuid.UUID(person_id),
                relationship_to_head="sibling",
                start_date=date(2020, 1, 1),
            )
        )


def deliver_events_about(sessions: Any, person_id: str, subscription: str) -> int:
    """Log a delivery to ``subscription`` of every outbox event about ``person_id`` (as the
    delivery worker logs a webhook the program acknowledged); returns how many."""
    with sessions.begin() as session:
        events = session.scalars(
            select(OutboxEvent).where(OutboxEvent.subject == f"person/{person_id}")
        ).all()
        for event in events:
            session.add(
                DeliveryAttempt(
                    subscription_code=subscription,
                    event_id=event.event_id,
                    sequence=event.sequence,
                    event_type=event.routing_key,
                    attempt=1,
                    status=DELIVERED,
                    personal=True,
                    started_at=utcnow(),
                )
            )
        return len(events)


@dataclass
class Problems:
    """One household or person per kind of issue (ids as strings)."""

    big: str  # household of 4 (max 3 in ``QUALITY``)
    young_head: str  # household whose head is 10 (in R02-D01-L002)
    twice: str  # person in two active households
    twice_other: str  # the second household
    ancient: str  # person born in 1880, alive on paper
    died_before_birth: str  # person whose death date precedes their birth
    emptied: str  # that person's household, left without a current member
    income: str  # household declaring 100 a month, taxed on 30 000 a year
    notified: str  # deceased person whose later verification reached a program
    late: str  # deceased person notified only before the registry learned of the death
    fine: str  # a plausible household


def make_problems(registry: Registry, sessions: Any, area: str = "R01-D02-L003") -> Problems:
    big = register(
        registry,
        area,
        person("Big", "1980-01-01"),
        person("Bea", "1982-01-01", "spouse"),
        person("Cid", "2010-01-01", "child"),
        person("Dot", "2012-01-01", "child"),
    )
    ten = (utcnow().date() - timedelta(days=3700)).isoformat()
    young = register(registry, "R02-D01-L002", person("Kid", ten))
    first = register(registry, area, person("Twice", "1970-05-05"))
    other = register(registry, "R02-D01-L001", person("Host", "1960-05-05"))
    twice = member_id(first, "Twice")
    join_second_household(sessions, twice, str(other["id"]))
    ancient = register(registry, area, person("Old", "1880-02-02"))
    early = register(registry, area, person("Early", "1990-03-03"))
    early_id = member_id(early, "Early")
    registry.record_death(early_id, "2000-01-01", Source("civil_registry"))
    # The birth date "corrected" afterwards, past the date of death (the death check passed).
    registry.update_person(early_id, {"birth_date": "2003-03-03"}, STAFF)
    income = register(
        registry, area, person("Earner", "1975-07-07"), person("Kin", "1999-01-01", "child")
    )
    registry.record_attributes(
        str(income["id"]),
        [{"domain": "income", "name": "monthly_income", "value": 100}],
        Source("intake"),
    )
    registry.record_person_attributes(
        member_id(income, "Earner"),
        [{"domain": "income", "name": "gross_income", "value": 30000, "period": "2025"}],
        Source("tax"),
    )
    gone = register(
        registry, area, person("Gone", "1950-01-01"), person("Heir", "1985-01-01", "child")
    )
    gone_id = member_id(gone, "Gone")
    registry.record_death(gone_id, utcnow().date() - timedelta(days=90), Source("civil_registry"))
    registry.record_verification(gone_id, True, Source("national_id"))  # an event after death
    deliver_events_about(sessions, gone_id, "cash-transfer")
    # A death registered late: what programs got before the registry knew is not an issue.
    late = register(
        registry, area, person("Late", "1940-01-01"), person("Ward", "1990-01-01", "child")
    )
    late_id = member_id(late, "Late")
    registry.record_verification(late_id, True, Source("national_id"))
    deliver_events_about(sessions, late_id, "cash-transfer")
    registry.record_death(late_id, utcnow().date() - timedelta(days=400), Source("civil_registry"))
    fine = register(
        registry, area, person("Fine", "1980-01-01"), person("Son", "2012-06-01", "child")
    )
    return Problems(
        big=str(big["id"]),
        young_head=str(young["id"]),
        twice=twice,
        twice_other=str(other["id"]),
        ancient=member_id(ancient, "Old"),
        died_before_birth=early_id,
        emptied=str(early["id"]),
        income=str(income["id"]),
        notified=gone_id,
        late=late_id,
        fine=str(fine["id"]),
    )
