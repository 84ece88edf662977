"""Registering many households at once: the first load of a registry from a partner export.

Why a path of its own: ``Households.register_household`` costs a dozen round trips per
household (identifier look-ups, ORM flushes, a certification read, an event); a country's
first load is millions of people. Here one batch of households costs a fixed number of
statements: one identifier look-up for every member of the batch (keyed hashes), then one
multi-row INSERT per table. The rows written are the ones ``register_household`` writes —
households, persons, memberships, sealed identifiers with their look-up hashes, a field
assertion (provenance) for every field given, the matcher's blocking keys and the household's
first recertification cycle — so a household loaded in bulk reads, matches and changes like
any other.

Matching: a member whose identifier the registry already holds is that person. A household
all of whose members are known is ``matched``: each member's fields (and identifiers the
person lacks) are asserted on the existing person through ``update_person`` (provenance and
precedence as ever; ``household.updated`` when a current value changes), nothing is created
twice. A household only some of whose
members are known is not created: the known members are linked as above and the others are
``rejected`` (a person adds them to the existing household). Identifiers of one member that
belong to different people, or an identifier repeated inside the batch, reject the household.

Events: a created household writes none. A first load of a country is hundreds of thousands
of ``household.created`` events nobody subscribes to yet; programs take their first copy
through the search APIs. The caller reports the load as a whole (``srhub import`` summary).

The caller has checked each record against ``household.json`` (the mapping's output schema
holds the person and household parts); this module checks what spans rows: one head, the
identifier systems registered, the country profile's rule, no identifier held twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from registry_core.crypto import IdentifierCipher
from registry_core.errors import RegistryError
from registry_core.identifiers import identifier_violations
from registry_core.models import (
    FieldAssertion,
    Household,
    HouseholdRecertification,
    HouseholdStatus,
    Identifier,
    IdentifierSystem,
    Membership,
    Person,
    PersonMatchKey,
    VerificationStatus,
)
from registry_core.resolution import match_keys_for
from registry_core.services.base import (
    HOUSEHOLD_FIELDS,
    PERSON_FIELDS,
    Source,
    Workspace,
    new_registry_number,
)
from registry_core.services.bulk_rows import insert_rows
from standards.timeutil import utcnow

LOOKUP_CHUNK = 5000  # hashes per IN list (SQLite allows 32,766 parameters)


@dataclass(frozen=True)
class BulkHousehold:
    """One household to load: ``key`` is the partner's reference (the provenance record id),
    ``record`` the canonical household (``members`` with ``relationship``)."""

    key: str
    record: Mapping[str, Any]


@dataclass(frozen=True)
class BulkOutcome:
    """What became of one household (``created``, ``matched``, ``rejected``) or, for a
    partly known household, of one of its members (``member`` is its index)."""

    key: str
    outcome: str
    reason: str = ""
    household_id: uuid.UUID | None = None
    member: int | None = None


def lookup_owners(
    session: Session, hashes: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    """{(system, value hash): person id} for those the registry holds: one query per system
    and ``LOOKUP_CHUNK`` hashes, on the unique (system, value_hash) index."""
    by_system: dict[str, set[str]] = {}
    for system, digest in hashes:
        by_system.setdefault(system, set()).add(digest)
    found: dict[tuple[str, str], uuid.UUID] = {}
    for system, digests in sorted(by_system.items()):
        wanted = sorted(digests)
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            rows = session.execute(
                select(Identifier.value_hash, Identifier.person_id).where(
                    Identifier.system == system,
                    Identifier.value_hash.in_(wanted[start : start + LOOKUP_CHUNK]),
                )
            )
            found.update({(system, digest): person_id for digest, person_id in rows})
    return found


def lookup_owners_any_version(
    session: Session, cipher: IdentifierCipher, hashed: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    """``lookup_owners`` for ``(system, value, hash)`` triples, finding rows hashed under any
    look-up key version the cipher holds (during a key rotation, before the re-key job has
    moved them); keyed by the triple's own ``(system, hash)``."""
    alias: dict[tuple[str, str], tuple[str, str]] = {}
    rotating = len(cipher.versions) > 1  # one key: the triple's hash is the only one
    for system, value, digest in hashed:
        alias[(system, digest)] = (system, digest)
        if rotating:
            for other in cipher.lookup_hashes(system, value):
                alias.setdefault((system, other), (system, digest))
    found = lookup_owners(session, alias)
    return {alias[key]: person for key, person in found.items()}


def _head_problem(members: Sequence[Mapping[str, Any]]) -> str:
    if not members:
        return "a household is registered with its head: no member"
    heads = sum(1 for m in members if m.get("relationship") == "head")
    if heads != 1:
        return f"exactly one member must be the head, not {heads}"
    if len(members) > 60:
        return "more than 60 members"
    return ""


class _Rows:
    """The rows of one batch, table by table, inserted in foreign-key order."""

    def __init__(self, hash_version: int = 1) -> None:
        self.hash_version = hash_version  # the look-up key version the batch's hashes used
        self.persons: list[dict[str, Any]] = []
        self.households: list[dict[str, Any]] = []
        self.memberships: list[dict[str, Any]] = []
        self.identifiers: list[dict[str, Any]] = []
        self.assertions: list[dict[str, Any]] = []
        self.match_keys: list[dict[str, Any]] = []
        self.certifications: list[dict[str, Any]] = []

    def write(self, session: Session) -> None:
        for table, rows in (
            (Person.__table__, self.persons),
            (Household.__table__, self.households),
            (Membership.__table__, self.memberships),
            (Identifier.__table__, self.identifiers),
            (FieldAssertion.__table__, self.assertions),
            (PersonMatchKey.__table__, self.match_keys),
            (HouseholdRecertification.__table__, self.certifications),
        ):
            insert_rows(session, cast(Table, table), rows)


class BulkHouseholds:
    """The set-based first load (see the module's docstring)."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def load(self, batch: Sequence[BulkHousehold], source: Source) -> list[BulkOutcome]:
        """Load ``batch`` in one transaction (the caller's when the workspace has one);
        returns one outcome per household (and per refused member of a partly known one)."""
        ws = self._ws
        cipher = ws.cipher
        # One look-up key version for the whole batch, stored beside each hash it made (a
        # rotation during the load moves the next batch, and the re-key job the rest).
        version = cipher.active_version
        with ws.transaction() as session:
            known_systems = set(session.scalars(select(IdentifierSystem.code)))
            outcomes: list[BulkOutcome] = []
            # (household index, member index) -> [(system, value, hash)]
            hashed: dict[tuple[int, int], list[tuple[str, str, str]]] = {}
            refused: dict[int, str] = {}
            for h, item in enumerate(batch):
                members = item.record.get("members", [])
                problem = _head_problem(members)
                if item.record.get("attributes"):
                    problem = problem or "attributes are not loaded in bulk"
                for m, member in enumerate(members):
                    idents = member.get("identifiers", [])
                    unknown = [i["system"] for i in idents if i["system"] not in known_systems]
                    if unknown:
                        problem = problem or (
                            f"member {m}: identifier system {unknown[0]} is not registered"
                        )
                        continue
                    bad = identifier_violations(ws.identifier_profile, idents, f"$.members[{m}]")
                    if bad:
                        problem = problem or f"member {m}: {bad[0].path}: {bad[0].message}"
                        continue
                    hashed[(h, m)] = [
                        (
                            i["system"],
                            i["value"],
                            cipher.lookup_hash(i["system"], i["value"], version),
                        )
                        for i in idents
                    ]
                if problem:
                    refused[h] = problem
            owners = lookup_owners_any_version(
                session, cipher, (t for values in hashed.values() for t in values)
            )
            seen: dict[tuple[str, str], str] = {}
            rows = _Rows(version)
            at = source.at()
            for h, item in enumerate(batch):
                if h in refused:
                    outcomes.append(BulkOutcome(item.key, "rejected", refused[h]))
                    continue
                members = item.record["members"]
                matched: dict[int, uuid.UUID] = {}
                problem = ""
                for m in range(len(members)):
                    people = {owners[(s, d)] for s, _, d in hashed[(h, m)] if (s, d) in owners}
                    if len(people) > 1:
                        problem = f"member {m}: identifiers belong to different people"
                    elif people:
                        matched[m] = people.pop()
                    for s, _, d in hashed[(h, m)]:
                        if (s, d) in seen and (s, d) not in owners:
                            problem = problem or (
                                f"member {m}: {s} repeated in the file (household {seen[(s, d)]})"
                            )
                if problem:
                    outcomes.append(BulkOutcome(item.key, "rejected", problem))
                    continue
                for m in range(len(members)):
                    for s, _, d in hashed[(h, m)]:
                        seen[(s, d)] = item.key
                if matched:
                    outcomes.extend(self._link(session, item, matched, source))
                    continue
                household_id = self._add(rows, item, hashed, h, source, at)
                outcomes.append(BulkOutcome(item.key, "created", household_id=household_id))
            rows.write(session)
            return outcomes

    def _link(
        self,
        session: Session,
        item: BulkHousehold,
        matched: Mapping[int, uuid.UUID],
        source: Source,
    ) -> list[BulkOutcome]:
        """A household some of whose members the registry knows: assert the known members'
        fields on them (the per-record path; rare in a first load), refuse the others."""
        from registry_core.services.households import Households

        households = Households(self._ws.within(session))
        outcomes: list[BulkOutcome] = []
        members = item.record["members"]
        for m, member in enumerate(members):
            if m not in matched:
                outcomes.append(
                    BulkOutcome(
                        item.key,
                        "rejected",
                        "the household is registered already in part: add this member to it "
                        "through the registry",
                        member=m,
                    )
                )
                continue
            fields: dict[str, Any] = {k: member[k] for k in PERSON_FIELDS if k in member}
            if member.get("identifiers"):  # those the person lacks are added, held ones kept
                fields["identifiers"] = member["identifiers"]
            try:
                households.update_person(matched[m], fields, source)
            except RegistryError as exc:
                outcomes.append(BulkOutcome(item.key, "rejected", str(exc), member=m))
                continue
            outcomes.append(BulkOutcome(item.key, "matched", member=m))
        return outcomes

    def _add(
        self,
        rows: _Rows,
        item: BulkHousehold,
        hashed: Mapping[tuple[int, int], list[tuple[str, str, str]]],
        h: int,
        source: Source,
        at: datetime,
    ) -> uuid.UUID:
        """The rows of one new household and its members."""
        cipher, record, now = self._ws.cipher, item.record, utcnow()
        household_id = uuid.uuid4()
        start = at.date()
        provenance = {
            "source_system": source.system,
            "source_record_id": item.key[:128],
            "asserted_at": at,
            "recorded_at": now,
        }
        head_id: uuid.UUID | None = None
        for m, member in enumerate(record["members"]):
            person_id = uuid.uuid4()
            if member["relationship"] == "head":
                head_id = person_id
            fields = {k: member[k] for k in PERSON_FIELDS if k in member}
            rows.persons.append(
                {
                    "id": person_id,
                    "given_name": fields.get("given_name"),
                    "family_name": fields.get("family_name"),
                    "other_names": fields.get("other_names"),
                    "sex": fields.get("sex"),
                    "birth_date": _day(fields.get("birth_date")),
                    "is_deceased": False,
                    "verification_status": VerificationStatus.UNVERIFIED,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            rows.assertions.extend(
                {
                    "entity_type": "person",
                    "entity_id": person_id,
                    "field": name,
                    "value": value,
                    **provenance,
                }
                for name, value in fields.items()
            )
            rows.match_keys.extend(
                {"person_id": person_id, "key": key}
                for key in match_keys_for(fields, str(person_id))
            )
            rows.memberships.append(
                {
                    "id": uuid.uuid4(),
                    "household_id": household_id,
                    "person_id": person_id,
                    "relationship_to_head": member["relationship"],
                    "start_date": start,
                }
            )
            verified = {
                i["system"]: bool(i.get("verified", False)) for i in member.get("identifiers", [])
            }
            rows.identifiers.extend(
                {
                    "id": uuid.uuid4(),
                    "person_id": person_id,
                    "system": system,
                    "value_hash": digest,
                    "value_hash_version": rows.hash_version,
                    "value_ciphertext": cipher.encrypt(system, value),
                    "verified": verified.get(system, False),
                    "source_system": source.system,
                    "created_at": now,
                }
                for system, value, digest in hashed[(h, m)]
            )
        location = record.get("location") or {}
        rows.households.append(
            {
                "id": household_id,
                "registry_number": new_registry_number(),
                "admin_area_code": record["admin_area_code"],
                "address": record.get("address"),
                "latitude": location.get("lat"),
                "longitude": location.get("lon"),
                "status": HouseholdStatus.ACTIVE,
                "head_person_id": head_id,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        rows.assertions.extend(
            {
                "entity_type": "household",
                "entity_id": household_id,
                "field": name,
                "value": record[name],
                **provenance,
            }
            for name in HOUSEHOLD_FIELDS
            if name in record
        )
        policy = self._ws.recertification
        due = policy.due_on(at)
        rows.certifications.append(
            {
                "household_id": household_id,
                "last_certified_at": at,
                "certified_by": source.system,
                "due_on": due,
                "state": policy.state_on(due, at.date()),
                "reminded_for": None,
                "overdue_for": None,
                "updated_at": now,
            }
        )
        return household_id


def _day(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
