"""Read-only household search for the standard APIs (DCI search, FHIR), by attributes.

A filter tree from ``standards.dci.query`` becomes one SQL condition
(``registry_core.query_filters``), and a page of matching households with their members and
identifiers comes back from one statement, so filtering, sorting and counting happen in the
database on both backends and a page costs the same whatever the registry's size. Nothing
here writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from registry_core.consent import ConsentScope
from registry_core.crypto import IdentifierCipher
from registry_core.db import read_connection
from registry_core.models import Household, Identifier, Membership, Person
from registry_core.query_filters import (
    SORTABLE,
    FilterCompiler,
    holds_identifier,
    searchable_attributes,
)
from registry_core.records import compact
from standards.dci import codes
from standards.dci.query import IdMatch, Node, Page, SortKey
from standards.timeutil import iso

__all__ = ["SORTABLE", "FoundHousehold", "HouseholdQueries", "searchable_attributes"]


@dataclass(frozen=True)
class FoundHousehold:
    record: dict[str, Any]
    poverty_score: float | None
    poverty_score_type: str | None


# What a search page reads: household columns, then one row per member and identifier.
_PAGE_COLUMNS = (
    Household.id,
    Household.registry_number,
    Household.version,
    Household.status,
    Household.head_person_id,
    Household.admin_area_code,
    Household.address,
    Household.latitude,
    Household.longitude,
    Household.created_at,
    Household.updated_at,
)
_MEMBER_COLUMNS = (
    Membership.relationship_to_head.label("m_relationship"),
    Person.id.label("p_id"),
    Person.version.label("p_version"),
    Person.given_name.label("p_given_name"),
    Person.family_name.label("p_family_name"),
    Person.other_names.label("p_other_names"),
    Person.sex.label("p_sex"),
    Person.birth_date.label("p_birth_date"),
    Person.death_date.label("p_death_date"),
    Person.is_deceased.label("p_is_deceased"),
    Person.created_at.label("p_created_at"),
    Person.updated_at.label("p_updated_at"),
    Identifier.system.label("i_system"),
    Identifier.value_ciphertext.label("i_ciphertext"),
    Identifier.verified.label("i_verified"),
)


def _ordering(keys: list[tuple[Any, bool]], created_at: Any, key: Any) -> list[Any]:
    """ORDER BY terms: the caller's sort keys (nulls last), then creation time and id, so
    pages are stable however many households share a sort value."""
    terms = [
        column.desc().nulls_last() if desc else column.asc().nulls_last() for column, desc in keys
    ]
    return [*terms, created_at.asc(), key.asc()]


def _household_record(row: Any, members: list[dict[str, Any]]) -> dict[str, Any]:
    location = None
    if row["latitude"] is not None and row["longitude"] is not None:
        location = {"lat": row["latitude"], "lon": row["longitude"]}
    head = row["head_person_id"]
    return {
        "id": str(row["id"]),
        "registry_number": row["registry_number"],
        "version": row["version"],
        "status": row["status"],
        "head_person_id": str(head) if head else None,
        "admin_area_code": row["admin_area_code"],
        "address": row["address"],
        "location": location,
        "members": members,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def _member_fields(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["p_id"]),
        "version": row["p_version"],
        "given_name": row["p_given_name"],
        "family_name": row["p_family_name"],
        "other_names": row["p_other_names"],
        "sex": row["p_sex"],
        "birth_date": iso(row["p_birth_date"]),
        "death_date": iso(row["p_death_date"]),
        "is_deceased": row["p_is_deceased"],
        "relationship": row["m_relationship"],
        "identifiers": [],
        "created_at": iso(row["p_created_at"]),
        "updated_at": iso(row["p_updated_at"]),
    }


class HouseholdQueries:
    """Search households with a DCI filter tree; read-only.

    ``scoped(consent)`` gives the same queries as one program sees the registry: a household
    is there only when a current member is covered by the program's consent
    (``registry_core.consent``), it consists of its covered members only (``member_list``,
    ``group_size``), and member and identifier criteria match covered members only, so a
    search cannot learn anything about a person the consent does not cover.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        cipher: IdentifierCipher,
        *,
        score_model: str | None = None,
        today: date | None = None,
    ) -> None:
        self._sessions = session_factory
        self._filters = FilterCompiler(cipher, score_model=score_model, today=today)

    def scoped(self, consent: ConsentScope | None) -> HouseholdQueries:
        """These queries restricted to what ``consent`` covers (None: unrestricted)."""
        if consent is None:
            return self
        view = HouseholdQueries.__new__(HouseholdQueries)
        view._sessions = self._sessions
        view._filters = replace(self._filters, consent=consent)
        return view

    @property
    def engine(self) -> Engine:
        bind = self._sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    def condition(self, node: Node) -> ColumnElement[bool]:
        """The SQL condition on ``households`` for a filter tree; QueryError when unsupported."""
        return self._filters.condition(node)

    # ---------------------------------------------------------------- execution

    def search(
        self,
        node: Node,
        sort: tuple[SortKey, ...] = (),
        page: Page | None = None,
        *,
        connection: Connection | None = None,
    ) -> tuple[list[FoundHousehold], int]:
        """One page of matching households (with their poverty score) and the total count.

        The page and its members come back from ONE statement (a CTE with the page, joined to
        members, persons and identifiers), so a look-up by identifier is one round trip and
        reads one snapshot. The count is a second statement only when the page cannot tell it:
        a first page with room to spare holds every match. ``connection`` lets a caller run the
        search on the connection it already holds (the DCI sync search writes its ledger row on
        the same one); without it a connection is taken from the engine for the call.
        """
        if connection is None:
            with read_connection(self.engine) as own:
                return self.search(node, sort, page, connection=own)
        page = page or Page(20, 1)
        offset = (page.number - 1) * page.size
        params: dict[str, Any] = {"page_limit": page.size, "page_offset": offset}
        by_identifier = None
        if not sort and self._filters.consent is None:
            by_identifier = self._identifier_lookup(node)
        if by_identifier is not None:
            # The common query (one identifier, no sort) reuses one prepared statement tree:
            # building a statement costs more Python time than the database takes to run it.
            statement, count = self._by_identifier
            params.update(by_identifier)
        else:
            where = self._filters.condition(node)
            if self._filters.consent is not None:  # only households with a covered member
                where = and_(
                    where,
                    exists(
                        select(Membership.id)
                        .where(Membership.household_id == Household.id, *self._filters.members())
                        .correlate(Household)
                    ),
                )
            keys = []
            for key in sort:
                column, _kind = self._filters.household_column(key.attribute)
                keys.append((column, key.descending))
            statement = self._page_statement(where, keys)
            count = select(func.count(Household.id)).where(where)
        found = self._assemble(connection.execute(statement, params).mappings())
        if page.number == 1 and len(found) < page.size:
            total = len(found)
        elif found and len(found) < page.size:
            total = offset + len(found)
        else:
            total = connection.scalar(count, params) or 0
        return found, total

    def _identifier_lookup(self, node: Node) -> dict[str, Any] | None:
        """Bind values for an identifier-equality query (``UIN = x``), or None for others."""
        if not isinstance(node, IdMatch) or node.id_type in codes.GROUP_IDENTIFIER_ALIASES:
            return None
        system = self._filters.system_for(node.id_type)
        if system is None:
            return None
        return {"id_system": system, "id_hash": self._filters.lookup_hashes(system, node.value)}

    @cached_property
    def _by_identifier(self) -> tuple[Any, Any]:
        """(page statement, count statement) for one bound identifier: built once."""
        where = holds_identifier(
            bindparam("id_system"),
            Identifier.value_hash.in_(bindparam("id_hash", expanding=True)),
            self._filters.members(),
        )
        return self._page_statement(where, []), select(func.count(Household.id)).where(where)

    def _page_statement(self, where: ColumnElement[bool], keys: list[tuple[Any, bool]]) -> Any:
        """The page (bound ``page_limit``/``page_offset``) joined to members and identifiers."""
        page_cte = (
            select(
                *_PAGE_COLUMNS,
                self._filters.score().label("score"),
                self._filters.score_type().label("score_model"),
                *[column.label(f"sort_{n}") for n, (column, _d) in enumerate(keys)],
            )
            .where(where)
            .order_by(*_ordering(keys, Household.created_at, Household.id))
            .limit(bindparam("page_limit"))
            .offset(bindparam("page_offset"))
            .cte("page")
        )
        sort_columns = [(page_cte.c[f"sort_{n}"], d) for n, (_c, d) in enumerate(keys)]
        return (
            select(page_cte, *_MEMBER_COLUMNS)
            .select_from(
                page_cte.outerjoin(
                    Membership,
                    and_(Membership.household_id == page_cte.c.id, *self._filters.members()),
                )
                .outerjoin(Person, Person.id == Membership.person_id)
                .outerjoin(Identifier, Identifier.person_id == Person.id)
            )
            .order_by(
                *_ordering(sort_columns, page_cte.c.created_at, page_cte.c.id),
                Membership.start_date,
                Person.birth_date,
                Person.id,
                Identifier.system,
                Identifier.id,
            )
        )

    def _assemble(self, rows: Any) -> list[FoundHousehold]:
        """Page rows (one per household x member x identifier) -> household records in order.

        The shape is ``household_record``'s without the parts a search answer does not carry
        (socio-economic attributes, each member's membership history and verification); the
        members come in the same order (head first, then by joining date and age), so an SR
        Group built from either is the same (the tests compare them).
        """
        first_rows: dict[uuid.UUID, Any] = {}  # a household's first row carries its own columns
        members: dict[uuid.UUID, dict[uuid.UUID, dict[str, Any]]] = {}
        for row in rows:
            key = row["id"]
            if key not in first_rows:
                first_rows[key], members[key] = row, {}
            person_id = row["p_id"]
            if person_id is None:
                continue
            member = members[key].get(person_id)
            if member is None:
                member = members[key][person_id] = _member_fields(row)
            if row["i_system"] is not None:
                member["identifiers"].append(
                    {
                        "system": row["i_system"],
                        "value": self._filters.cipher.decrypt(row["i_system"], row["i_ciphertext"]),
                        "verified": row["i_verified"],
                    }
                )
        found = []
        for key, row in first_rows.items():
            head = str(row["head_person_id"]) if row["head_person_id"] else None
            ordered = sorted(members[key].values(), key=lambda member: member["id"] != head)
            record = _household_record(row, [compact(member) for member in ordered])
            score = row["score"]
            found.append(
                FoundHousehold(
                    compact(record),
                    score,
                    (self._filters.score_model or row["score_model"])
                    if score is not None
                    else None,
                )
            )
        return found

    def matches(self, node: Node, household_id: uuid.UUID | str) -> bool:
        """Whether one household satisfies a filter (a subscription's, for notify routing)."""
        key = uuid.UUID(str(household_id))
        with self._sessions() as session:
            found = session.scalar(
                select(Household.id).where(Household.id == key, self._filters.condition(node))
            )
        return found is not None

    def household_of_person(self, person_id: uuid.UUID | str) -> uuid.UUID | None:
        """The current household of a person, for the FHIR Patient -> Group link."""
        with self._sessions() as session:
            return session.scalar(
                select(Membership.household_id).where(
                    Membership.person_id == uuid.UUID(str(person_id)),
                    Membership.end_date.is_(None),
                )
            )
