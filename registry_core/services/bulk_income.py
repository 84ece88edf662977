"""Recording many persons' facts at once: a tax authority's yearly extract.

Why a path of its own: the per-record path (``hub.pipeline.apply.facts.apply_income`` over
``Attributes.record_person_attributes``) resolves, reads the person and their household and
writes one fact at a time; a national extract is a million returns. Here a batch costs a fixed
number of statements: one identifier look-up (keyed hashes) for every taxpayer, one read of
their identifier systems, one of their current memberships, one of the facts this source
already gave them, then multi-row INSERT / UPDATE.

The effect is the per-record path's: a fact is upserted per (household, person, domain, name,
period, source), an unchanged fact changes nothing, an identifier the source knows and the
registry did not is added to the person, and every household whose facts changed gets its
version bumped and one ``household.updated`` per person (``attributes.<domain>.<name>``), as
``record_person_attributes`` writes it. Within one batch the last return of a key wins, as it
would arriving later.

What it does not decide: a taxpayer none of whose identifiers is known, or whose identifiers
belong to different people, is ``unresolved``; the caller sends it through the per-record
path (matcher, review queue).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from registry_core.models import (
    Household,
    Identifier,
    Membership,
    OutboxEvent,
    SocioEconomicAttribute,
)
from registry_core.outbox import EVENT_SOURCE, EVENT_TYPE_PREFIX
from registry_core.services.base import Source, Workspace
from registry_core.services.bulk_households import LOOKUP_CHUNK, lookup_owners_any_version
from registry_core.services.bulk_rows import insert_rows
from registry_core.services.events import HouseholdUpdated
from standards.timeutil import utcnow
from standards.validation import validate

# The mapped classes' tables, typed as Tables (``__table__`` is typed as any FromClause).
IDENTIFIERS = cast(Table, Identifier.__table__)
FACTS = cast(Table, SocioEconomicAttribute.__table__)
OUTBOX = cast(Table, OutboxEvent.__table__)
HOUSEHOLDS = cast(Table, Household.__table__)


@dataclass(frozen=True)
class BulkFacts:
    """One record's facts about one person: ``key`` names it in the outcome (the line),
    ``identifiers`` say who (``[{"system", "value"}]``), ``attributes`` are the facts
    (``domain``, ``name``, ``period``, ``value``, ``unit``), ``source`` who says so."""

    key: str
    identifiers: Sequence[Mapping[str, Any]]
    attributes: Sequence[Mapping[str, Any]]
    source: Source


# outcomes: applied | already_applied | not_in_household | unresolved


class BulkIncome:
    """The set-based facts writer (see the module's docstring)."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._version = 1  # the look-up key version of the batch being recorded

    def record(self, batch: Sequence[BulkFacts]) -> dict[str, str]:
        """Apply ``batch`` in one transaction (the caller's when there is one); returns
        {key: outcome}."""
        ws = self._ws
        cipher = ws.cipher
        self._version = version = cipher.active_version  # one look-up key version per batch
        with ws.transaction() as session:
            hashed = [
                [
                    (i["system"], i["value"], cipher.lookup_hash(i["system"], i["value"], version))
                    for i in b.identifiers
                ]
                for b in batch
            ]
            owners = lookup_owners_any_version(
                session, cipher, (t for values in hashed for t in values)
            )
            outcomes: dict[str, str] = {}
            person_of: dict[int, uuid.UUID] = {}
            for index, item in enumerate(batch):
                people = {owners[(s, d)] for s, _, d in hashed[index] if (s, d) in owners}
                if len(people) != 1:
                    outcomes[item.key] = "unresolved"
                else:
                    person_of[index] = people.pop()
            persons = sorted(set(person_of.values()))
            homes = _current_households(session, persons)
            self._add_identifiers(session, batch, hashed, person_of, owners)
            changed = self._upsert_facts(session, batch, person_of, homes, outcomes)
            self._events(session, changed, batch)
            return outcomes

    def _add_identifiers(
        self,
        session: Session,
        batch: Sequence[BulkFacts],
        hashed: Sequence[Sequence[tuple[str, str, str]]],
        person_of: Mapping[int, uuid.UUID],
        owners: Mapping[tuple[str, str], uuid.UUID],
    ) -> None:
        """Identifiers the source knows and the registry did not, of systems the person has
        none of (a second value of a system is not guessed at)."""
        wanted = {
            (person_of[i], s): (v, d, batch[i].source.system)
            for i in person_of
            for s, v, d in hashed[i]
            if (s, d) not in owners
        }
        if not wanted:
            return
        held = _systems_held(session, sorted({p for p, _ in wanted}))
        now = utcnow()
        rows = [
            {
                "id": uuid.uuid4(),
                "person_id": person,
                "system": system,
                "value_hash": digest,
                "value_hash_version": self._version,
                "value_ciphertext": self._ws.cipher.encrypt(system, value),
                "verified": False,
                "source_system": source_system,
                "created_at": now,
            }
            for (person, system), (value, digest, source_system) in wanted.items()
            if (person, system) not in held
        ]
        if rows:
            insert_rows(session, IDENTIFIERS, rows)

    def _upsert_facts(
        self,
        session: Session,
        batch: Sequence[BulkFacts],
        person_of: Mapping[int, uuid.UUID],
        homes: Mapping[uuid.UUID, uuid.UUID],
        outcomes: dict[str, str],
    ) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[set[str], Source]]:
        """Insert new facts, update changed ones; {(household, person): (changed, source)}."""
        # (household, person, domain, name, period, source system) -> (row values, index)
        latest: dict[tuple[Any, ...], tuple[dict[str, Any], int]] = {}
        for index, person in person_of.items():
            item = batch[index]
            household = homes.get(person)
            if household is None:
                outcomes[item.key] = "not_in_household"
                continue
            outcomes[item.key] = "already_applied"
            for attr in item.attributes:
                key = (household, person, attr["domain"], attr["name"], attr.get("period", ""),
                       item.source.system)  # fmt: skip
                latest[key] = (
                    {
                        "value": attr["value"],
                        "unit": attr.get("unit"),
                        "source_record_id": item.source.record_id,
                        "observed_at": item.source.at(),
                    },
                    index,
                )
        existing = _facts_of(session, sorted({k[0] for k in latest}), {k[5] for k in latest})
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        changed: dict[tuple[uuid.UUID, uuid.UUID], tuple[set[str], Source]] = {}
        for key, (values, index) in latest.items():
            found = existing.get(key)
            if found is not None and found[1] == values["value"] and found[2] == values["unit"]:
                continue
            household, person, domain, name, period, system = key
            if found is None:
                inserts.append(
                    {
                        "id": uuid.uuid4(),
                        "household_id": household,
                        "person_id": person,
                        "domain": domain,
                        "name": name,
                        "period": period,
                        "source_system": system,
                        **values,
                    }
                )
            else:
                updates.append({"row_id": found[0], **values})
            outcomes[batch[index].key] = "applied"
            fields, _ = changed.setdefault((household, person), (set(), batch[index].source))
            fields.add(f"attributes.{domain}.{name}")
        if inserts:
            insert_rows(session, FACTS, inserts)
        if updates:
            table = FACTS
            session.execute(
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values(
                    value=bindparam("value"),
                    unit=bindparam("unit"),
                    source_record_id=bindparam("source_record_id"),
                    observed_at=bindparam("observed_at"),
                ),
                updates,
                execution_options={"synchronize_session": False},
            )
        return changed

    def _events(
        self,
        session: Session,
        changed: Mapping[tuple[uuid.UUID, uuid.UUID], tuple[set[str], Source]],
        batch: Sequence[BulkFacts],
    ) -> None:
        """Bump each changed household's version once, then one ``household.updated`` per
        (household, person), as the per-record path writes them."""
        if not changed:
            return
        households = sorted({h for h, _ in changed})
        table = HOUSEHOLDS
        now = utcnow()
        state: dict[uuid.UUID, tuple[int, str, str | None]] = {}
        for start in range(0, len(households), LOOKUP_CHUNK):
            chunk = households[start : start + LOOKUP_CHUNK]
            rows = session.execute(
                update(table)
                .where(table.c.id.in_(chunk))
                .values(version=table.c.version + 1, updated_at=now)
                .returning(table.c.id, table.c.version, table.c.status, table.c.admin_area_code),
                execution_options={"synchronize_session": False},
            )
            state.update({r[0]: (r[1], r[2], r[3]) for r in rows})
        events: list[dict[str, Any]] = []
        for (household, person), (fields, source) in changed.items():
            version, status, area = state[household]
            payload = HouseholdUpdated(
                household_id=household,
                version=version,
                status=status,
                changed_fields=tuple(sorted(fields)),
                admin_area_code=area,
                source=source,
                person_id=person,
            )
            data = payload.to_data()
            if not events:  # one code path builds them all: the batch's first is checked
                validate(f"events/{payload.TYPE}.json", data)
            events.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "type": EVENT_TYPE_PREFIX + payload.TYPE,
                    "routing_key": payload.TYPE,
                    "source": EVENT_SOURCE,
                    "subject": payload.subject,
                    "time": now,
                    "data": data,
                    "published_at": None,
                }
            )
        insert_rows(session, OUTBOX, events)


def _current_households(
    session: Session, persons: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    found: dict[uuid.UUID, uuid.UUID] = {}
    for start in range(0, len(persons), LOOKUP_CHUNK):
        chunk = persons[start : start + LOOKUP_CHUNK]
        rows = session.execute(
            select(Membership.person_id, Membership.household_id).where(
                Membership.person_id.in_(chunk), Membership.end_date.is_(None)
            )
        )
        found.update({p: h for p, h in rows})
    return found


def _systems_held(session: Session, persons: Sequence[uuid.UUID]) -> set[tuple[uuid.UUID, str]]:
    held: set[tuple[uuid.UUID, str]] = set()
    for start in range(0, len(persons), LOOKUP_CHUNK):
        chunk = persons[start : start + LOOKUP_CHUNK]
        held.update(
            (p, s)
            for p, s in session.execute(
                select(Identifier.person_id, Identifier.system).where(
                    Identifier.person_id.in_(chunk)
                )
            )
        )
    return held


def _facts_of(
    session: Session, households: Sequence[uuid.UUID], systems: set[str]
) -> dict[tuple[Any, ...], tuple[uuid.UUID, Any, str | None]]:
    """{(household, person, domain, name, period, source): (row id, value, unit)} of these
    households' facts from these sources (by household: the indexed column)."""
    found: dict[tuple[Any, ...], tuple[uuid.UUID, Any, str | None]] = {}
    table = SocioEconomicAttribute
    for start in range(0, len(households), LOOKUP_CHUNK):
        chunk = households[start : start + LOOKUP_CHUNK]
        rows = session.execute(
            select(
                table.household_id, table.person_id, table.domain, table.name, table.period,
                table.source_system, table.id, table.value, table.unit,
            ).where(table.household_id.in_(chunk), table.source_system.in_(sorted(systems)))
        )  # fmt: skip
        for r in rows:
            found[(r[0], r[1], r[2], r[3], r[4], r[5])] = (r[6], r[7], r[8])
    return found


__all__ = ["BulkFacts", "BulkIncome"]
