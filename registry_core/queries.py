"""Read-only household search by attributes, for the standard APIs (DCI search, FHIR).

A filter tree from ``standards.dci.query`` becomes one SQL query, so filtering, sorting and
counting happen in the database on both backends and a page costs the same whatever the
registry's size. Attributes are of three kinds:

- household attributes (``group_size``, ``poverty_score``, ``admin_area_code`` ...);
- member attributes (``age``, ``sex``, ``birth_date`` ...): a comparison holds when *some*
  current member satisfies it (each comparison separately);
- identifier types (``UIN``, ``BRN`` ...): exact match through the keyed look-up hash, so no
  identifier is ever compared in clear. Only ``eq`` and ``in`` make sense for them.

``poverty_score`` is the newest eligibility score of the household (of one model if the
caller names it). Nothing here writes.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cached_property
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    exists,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from registry_core.consent import ConsentScope, member_covered
from registry_core.crypto import IdentifierCipher
from registry_core.db import read_connection
from registry_core.models import EligibilityScore, Household, Identifier, Membership, Person
from standards.dci import codes
from standards.dci.query import And, Cmp, IdMatch, Node, Not, Or, Page, QueryError, SortKey

HOUSEHOLD_ATTRIBUTES = frozenset(
    {
        "group_size",
        "poverty_score",
        "admin_area_code",
        "location",
        "registration_date",
        "last_updated",
        "group_status",
        "registry_number",
        "group_identifier",
    }
)
MEMBER_ATTRIBUTES = frozenset(
    {
        "age",
        "birth_date",
        "sex",
        "gender",
        "given_name",
        "surname",
        "family_name",
        "is_deceased",
    }
)
SORTABLE = frozenset(
    {
        "group_size",
        "poverty_score",
        "admin_area_code",
        "registration_date",
        "last_updated",
        "registry_number",
    }
)
_STRING_OPS = frozenset({"eq", "ne", "in"})


@dataclass(frozen=True)
class FoundHousehold:
    record: dict[str, Any]
    poverty_score: float | None
    poverty_score_type: str | None


def _iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}


def _invalid(message: str) -> QueryError:
    return QueryError(codes.RJCT_SEARCH_CRITERIA, message)


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


def _holds_identifier(
    system: Any, hash_matches: ColumnElement, members: list[ColumnElement]
) -> ColumnElement:
    """A member of the household (``members``: the conditions on the Membership row) holds
    an identifier of ``system`` whose keyed hash satisfies ``hash_matches``."""
    return exists(
        select(Membership.id)
        .join(Identifier, Identifier.person_id == Membership.person_id)
        .where(
            Membership.household_id == Household.id,
            *members,
            Identifier.system == system,
            hash_matches,
        )
        .correlate(Household)
    )


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
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def _member_fields(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["p_id"]),
        "version": row["p_version"],
        "given_name": row["p_given_name"],
        "family_name": row["p_family_name"],
        "other_names": row["p_other_names"],
        "sex": row["p_sex"],
        "birth_date": _iso(row["p_birth_date"]),
        "death_date": _iso(row["p_death_date"]),
        "is_deceased": row["p_is_deceased"],
        "relationship": row["m_relationship"],
        "identifiers": [],
        "created_at": _iso(row["p_created_at"]),
        "updated_at": _iso(row["p_updated_at"]),
    }


def searchable_attributes() -> list[str]:
    return sorted(HOUSEHOLD_ATTRIBUTES | MEMBER_ATTRIBUTES | set(codes.IDENTIFIER_TYPE_TO_SYSTEM))


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
        self._cipher = cipher
        self._score_model = score_model
        self._today = today
        self._consent: ConsentScope | None = None

    def scoped(self, consent: ConsentScope | None) -> HouseholdQueries:
        """These queries restricted to what ``consent`` covers (None: unrestricted)."""
        if consent is None:
            return self
        view = copy.copy(self)
        view._consent = consent
        view.__dict__.pop("_by_identifier", None)  # its statements are the unrestricted ones
        return view

    def _members(self) -> list[ColumnElement]:
        """Conditions on a Membership row for a member this view shows: current, and covered
        by the consent when the view is scoped."""
        current: list[ColumnElement] = [Membership.end_date.is_(None)]
        if self._consent is not None:
            current.append(member_covered(self._consent))
        return current

    # ---------------------------------------------------------------- expressions

    @property
    def engine(self) -> Engine:
        bind = self._sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    def _score(self) -> Any:
        return self._newest_score(EligibilityScore.score)

    def _score_type(self) -> Any:
        return self._newest_score(EligibilityScore.model)

    def _newest_score(self, column: Any) -> Any:
        """``column`` of the household's newest eligibility score (of our model, if one is set)."""
        query = select(column).where(EligibilityScore.household_id == Household.id)
        if self._score_model:
            query = query.where(EligibilityScore.model == self._score_model)
        return (
            query.order_by(EligibilityScore.computed_at.desc(), EligibilityScore.id)
            .limit(1)
            .correlate(Household)
            .scalar_subquery()
        )

    def _size(self) -> Any:
        return (
            select(func.count(Membership.id))
            .where(Membership.household_id == Household.id, *self._members())
            .correlate(Household)
            .scalar_subquery()
        )

    def _household_column(self, name: str) -> tuple[Any, str]:
        """(SQL expression, value kind) for a household attribute."""
        if name == "group_size":
            return self._size(), "number"
        if name == "poverty_score":
            return self._score(), "number"
        if name in ("admin_area_code", "location"):
            return Household.admin_area_code, "string"
        if name == "registration_date":
            return Household.created_at, "datetime"
        if name == "last_updated":
            return Household.updated_at, "datetime"
        if name == "group_status":
            return Household.status, "string"
        return Household.registry_number, "string"

    @staticmethod
    def _convert(kind: str, value: Any, name: str) -> Any:
        try:
            if kind == "number":
                if isinstance(value, bool):
                    raise ValueError
                return float(value)
            if kind == "date":
                return date.fromisoformat(str(value)[:10])
            if kind == "datetime":
                text = str(value)
                if len(text) == 10:
                    return datetime.combine(date.fromisoformat(text), time.min, UTC)
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            if kind == "bool":
                if isinstance(value, bool):
                    return value
                if str(value).lower() in ("true", "false"):
                    return str(value).lower() == "true"
                raise ValueError
            return str(value)
        except (TypeError, ValueError):
            raise _invalid(f"the value given for {name!r} is not a valid {kind}") from None

    def _compare(self, column: Any, kind: str, op: str, value: Any, name: str) -> ColumnElement:
        if kind == "string" and op not in _STRING_OPS:
            raise _invalid(f"{name!r} only takes eq, ne or in")
        if kind == "bool" and op not in ("eq", "ne"):
            raise _invalid(f"{name!r} only takes eq or ne")
        if op == "in":
            return column.in_([self._convert(kind, v, name) for v in value])
        converted = self._convert(kind, value, name)
        return {
            "eq": lambda: column == converted,
            "ne": lambda: column != converted,
            "lt": lambda: column < converted,
            "le": lambda: column <= converted,
            "gt": lambda: column > converted,
            "ge": lambda: column >= converted,
        }[op]()

    def _age(self, op: str, value: Any) -> ColumnElement:
        """age <op> N as a birth_date range: indexes work and no SQL date maths is needed."""
        today = self._today or datetime.now(UTC).date()

        def born_before_or_on(years: int) -> date:
            return today - relativedelta(years=years)

        def exactly(years: int) -> ColumnElement:
            return and_(
                Person.birth_date > born_before_or_on(years + 1),
                Person.birth_date <= born_before_or_on(years),
            )

        if op == "in":
            return or_(*[exactly(self._whole_age(v)) for v in value])
        years = self._whole_age(value)
        return {
            "eq": lambda: exactly(years),
            "ne": lambda: not_(exactly(years)),
            "lt": lambda: Person.birth_date > born_before_or_on(years),
            "le": lambda: Person.birth_date > born_before_or_on(years + 1),
            "gt": lambda: Person.birth_date <= born_before_or_on(years + 1),
            "ge": lambda: Person.birth_date <= born_before_or_on(years),
        }[op]()

    @staticmethod
    def _whole_age(value: Any) -> int:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _invalid("age must be a number of years") from None
        if not 0 <= number <= 150 or not number.is_integer():
            raise _invalid("age must be a whole number of years from 0 to 150")
        return int(number)

    def _member_condition(self, cmp: Cmp) -> ColumnElement:
        name = cmp.attribute
        if name == "age":
            condition = self._age(cmp.op, cmp.value)
        elif name == "birth_date":
            condition = self._compare(Person.birth_date, "date", cmp.op, cmp.value, name)
        elif name in ("sex", "gender"):
            condition = self._compare(Person.sex, "string", cmp.op, cmp.value, name)
        elif name == "given_name":
            condition = self._compare(Person.given_name, "string", cmp.op, cmp.value, name)
        elif name in ("surname", "family_name"):
            condition = self._compare(Person.family_name, "string", cmp.op, cmp.value, name)
        else:
            condition = self._compare(Person.is_deceased, "bool", cmp.op, cmp.value, name)
        return exists(
            select(Membership.id)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.household_id == Household.id, *self._members(), condition)
            .correlate(Household)
        )

    def _system(self, id_type: str) -> str | None:
        """Our identifier system for a DCI identifier type: the DCI code directory's, else one
        the country profile gives a ``dci_identifier_type``."""
        return codes.identifier_system(id_type) or self._cipher.profile.system_for_dci_type(id_type)

    def _hash(self, system: str, value: Any) -> str:
        """The look-up hash of a searched value, normalised by the country profile; a value
        that breaks the system's rule (no one can hold it) rejects the search with the rule."""
        problem = self._cipher.profile.problem(system, str(value))
        if problem is not None:
            raise _invalid(f"the searched {problem.reason}")
        return self._cipher.lookup_hash(system, str(value))

    def _identifier_condition(self, id_type: str, op: str, value: Any) -> ColumnElement:
        system = self._system(id_type)
        assert system is not None
        if op not in ("eq", "in"):
            raise _invalid(f"identifier type {id_type} only takes eq or in")
        values = value if op == "in" else (value,)
        hashes = [self._hash(system, v) for v in values]
        return _holds_identifier(system, Identifier.value_hash.in_(hashes), self._members())

    def condition(self, node: Node) -> ColumnElement:
        """The SQL condition on ``households`` for a filter tree; QueryError when unsupported."""
        if isinstance(node, And):
            return and_(*[self.condition(item) for item in node.items])
        if isinstance(node, Or):
            return or_(*[self.condition(item) for item in node.items])
        if isinstance(node, Not):
            return not_(self.condition(node.item))
        if isinstance(node, IdMatch):
            if node.id_type in codes.GROUP_IDENTIFIER_ALIASES:
                return Household.registry_number == node.value
            if self._system(node.id_type) is None:
                known = ", ".join(sorted([*codes.IDENTIFIER_TYPE_TO_SYSTEM, "SRN"]))
                raise _invalid(f"identifier type {node.id_type[:32]!r} is not searchable: {known}")
            return self._identifier_condition(node.id_type, "eq", node.value)
        assert isinstance(node, Cmp)
        name = node.attribute
        if self._system(name) is not None:
            return self._identifier_condition(name, node.op, node.value)
        if name in MEMBER_ATTRIBUTES:
            return self._member_condition(node)
        if name in HOUSEHOLD_ATTRIBUTES:
            column, kind = self._household_column(name)
            return self._compare(column, kind, node.op, node.value, name)
        raise _invalid(
            f"attribute {name!r} is not searchable; use one of: "
            + ", ".join(searchable_attributes())
        )

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
        if not sort and self._consent is None:
            by_identifier = self._identifier_lookup(node)
        if by_identifier is not None:
            # The common query (one identifier, no sort) reuses one prepared statement tree:
            # building a statement costs more Python time than the database takes to run it.
            statement, count = self._by_identifier
            params.update(by_identifier)
        else:
            where = self.condition(node)
            if self._consent is not None:  # only households with a covered member
                where = and_(
                    where,
                    exists(
                        select(Membership.id)
                        .where(Membership.household_id == Household.id, *self._members())
                        .correlate(Household)
                    ),
                )
            keys = []
            for key in sort:
                column, _kind = self._household_column(key.attribute)
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

    def _identifier_lookup(self, node: Node) -> dict[str, str] | None:
        """Bind values for an identifier-equality query (``UIN = x``), or None for others."""
        if not isinstance(node, IdMatch) or node.id_type in codes.GROUP_IDENTIFIER_ALIASES:
            return None
        system = self._system(node.id_type)
        if system is None:
            return None
        return {"id_system": system, "id_hash": self._hash(system, node.value)}

    @cached_property
    def _by_identifier(self) -> tuple[Any, Any]:
        """(page statement, count statement) for one bound identifier: built once."""
        where = _holds_identifier(
            bindparam("id_system"), Identifier.value_hash == bindparam("id_hash"), self._members()
        )
        return self._page_statement(where, []), select(func.count(Household.id)).where(where)

    def _page_statement(self, where: ColumnElement, keys: list[tuple[Any, bool]]) -> Any:
        """The page (bound ``page_limit``/``page_offset``) joined to members and identifiers."""
        page_cte = (
            select(
                *_PAGE_COLUMNS,
                self._score().label("score"),
                self._score_type().label("score_model"),
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
                    Membership, and_(Membership.household_id == page_cte.c.id, *self._members())
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
                        "value": self._cipher.decrypt(row["i_system"], row["i_ciphertext"]),
                        "verified": row["i_verified"],
                    }
                )
        found = []
        for key, row in first_rows.items():
            head = str(row["head_person_id"]) if row["head_person_id"] else None
            ordered = sorted(members[key].values(), key=lambda member: member["id"] != head)
            record = _household_record(row, [_compact(member) for member in ordered])
            score = row["score"]
            found.append(
                FoundHousehold(
                    _compact(record),
                    score,
                    (self._score_model or row["score_model"]) if score is not None else None,
                )
            )
        return found

    def matches(self, node: Node, household_id: uuid.UUID | str) -> bool:
        """Whether one household satisfies a filter (a subscription's, for notify routing)."""
        key = uuid.UUID(str(household_id))
        with self._sessions() as session:
            found = session.scalar(
                select(Household.id).where(Household.id == key, self.condition(node))
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
