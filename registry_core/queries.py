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

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import Session, sessionmaker

from registry_core.crypto import IdentifierCipher
from registry_core.models import EligibilityScore, Household, Identifier, Membership, Person
from registry_core.records import identifier_record
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


def searchable_attributes() -> list[str]:
    return sorted(HOUSEHOLD_ATTRIBUTES | MEMBER_ATTRIBUTES | set(codes.IDENTIFIER_TYPE_TO_SYSTEM))


class HouseholdQueries:
    """Search households with a DCI filter tree; read-only."""

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

    # ---------------------------------------------------------------- expressions

    def _score(self) -> Any:
        query = select(EligibilityScore.score).where(EligibilityScore.household_id == Household.id)
        if self._score_model:
            query = query.where(EligibilityScore.model == self._score_model)
        return (
            query.order_by(EligibilityScore.computed_at.desc(), EligibilityScore.id)
            .limit(1)
            .correlate(Household)
            .scalar_subquery()
        )

    @staticmethod
    def _size() -> Any:
        return (
            select(func.count(Membership.id))
            .where(Membership.household_id == Household.id, Membership.end_date.is_(None))
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
            .where(
                Membership.household_id == Household.id,
                Membership.end_date.is_(None),
                condition,
            )
            .correlate(Household)
        )

    def _identifier_condition(self, id_type: str, op: str, value: Any) -> ColumnElement:
        system = codes.identifier_system(id_type)
        assert system is not None
        if op not in ("eq", "in"):
            raise _invalid(f"identifier type {id_type} only takes eq or in")
        values = value if op == "in" else (value,)
        hashes = [self._cipher.lookup_hash(system, str(v)) for v in values]
        return exists(
            select(Membership.id)
            .join(Identifier, Identifier.person_id == Membership.person_id)
            .where(
                Membership.household_id == Household.id,
                Membership.end_date.is_(None),
                Identifier.system == system,
                Identifier.value_hash.in_(hashes),
            )
            .correlate(Household)
        )

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
            if codes.identifier_system(node.id_type) is None:
                known = ", ".join(sorted([*codes.IDENTIFIER_TYPE_TO_SYSTEM, "SRN"]))
                raise _invalid(f"identifier type {node.id_type[:32]!r} is not searchable: {known}")
            return self._identifier_condition(node.id_type, "eq", node.value)
        assert isinstance(node, Cmp)
        name = node.attribute
        if codes.identifier_system(name) is not None:
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
        self, node: Node, sort: tuple[SortKey, ...] = (), page: Page | None = None
    ) -> tuple[list[FoundHousehold], int]:
        """One page of matching households (with their poverty score) and the total count."""
        page = page or Page(20, 1)
        where = self.condition(node)
        order = []
        for key in sort:
            column, _kind = self._household_column(key.attribute)
            order.append(
                column.desc().nulls_last() if key.descending else column.asc().nulls_last()
            )
        order.extend([Household.created_at.asc(), Household.id.asc()])
        with self._sessions() as session:
            total = session.scalar(select(func.count(Household.id)).where(where)) or 0
            rows = session.execute(
                select(Household, self._score().label("score"))
                .where(where)
                .order_by(*order)
                .limit(page.size)
                .offset((page.number - 1) * page.size)
            ).all()
            records = self._page_records(session, [household for household, _score in rows])
            found = [
                FoundHousehold(
                    record,
                    score,
                    self._score_type(session, household.id) if score is not None else None,
                )
                for record, (household, score) in zip(records, rows, strict=True)
            ]
        return found, total

    def _page_records(self, session: Session, households: list[Household]) -> list[dict[str, Any]]:
        """Household records for a whole page in two queries (not two per member).

        The shape is ``household_record``'s without the parts a search answer does not carry
        (socio-economic attributes, each member's membership history and verification); the
        members come in the same order (head first, then by joining date and age), so an SR
        Group built from either is the same (the tests compare them).
        """
        if not households:
            return []
        keys = [h.id for h in households]
        current = session.execute(
            select(Membership, Person)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.household_id.in_(keys), Membership.end_date.is_(None))
            .order_by(Membership.start_date, Person.birth_date, Person.id)
        ).all()
        person_ids = [person.id for _m, person in current]
        identifiers: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for row in session.scalars(
            select(Identifier)
            .where(Identifier.person_id.in_(person_ids))
            .order_by(Identifier.system, Identifier.id)
        ):
            identifiers.setdefault(row.person_id, []).append(identifier_record(row, self._cipher))
        members: dict[uuid.UUID, list[tuple[Membership, Person]]] = {}
        for membership, person in current:
            members.setdefault(membership.household_id, []).append((membership, person))
        records = []
        for household in households:
            rows = sorted(
                members.get(household.id, []),
                key=lambda row, head=household.head_person_id: row[0].person_id != head,
            )
            location = None
            if household.latitude is not None and household.longitude is not None:
                location = {"lat": household.latitude, "lon": household.longitude}
            records.append(
                _compact(
                    {
                        "id": str(household.id),
                        "registry_number": household.registry_number,
                        "version": household.version,
                        "status": household.status,
                        "head_person_id": str(household.head_person_id)
                        if household.head_person_id
                        else None,
                        "admin_area_code": household.admin_area_code,
                        "address": household.address,
                        "location": location,
                        "members": [
                            _compact(
                                {
                                    "id": str(person.id),
                                    "version": person.version,
                                    "given_name": person.given_name,
                                    "family_name": person.family_name,
                                    "other_names": person.other_names,
                                    "sex": person.sex,
                                    "birth_date": _iso(person.birth_date),
                                    "death_date": _iso(person.death_date),
                                    "is_deceased": person.is_deceased,
                                    "relationship": membership.relationship_to_head,
                                    "identifiers": identifiers.get(person.id, []),
                                    "created_at": _iso(person.created_at),
                                    "updated_at": _iso(person.updated_at),
                                }
                            )
                            for membership, person in rows
                        ],
                        "created_at": _iso(household.created_at),
                        "updated_at": _iso(household.updated_at),
                    }
                )
            )
        return records

    def _score_type(self, session: Session, household_id: uuid.UUID) -> str | None:
        if self._score_model:
            return self._score_model
        return session.scalar(
            select(EligibilityScore.model)
            .where(EligibilityScore.household_id == household_id)
            .order_by(EligibilityScore.computed_at.desc(), EligibilityScore.id)
            .limit(1)
        )

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
