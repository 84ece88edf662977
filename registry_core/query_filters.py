"""DCI filter trees as SQL conditions on ``households``: what a search may ask, and how.

``registry_core.queries`` runs searches; this module only *compiles* a filter tree from
``standards.dci.query`` into one SQL condition, so filtering happens in the database on both
backends. Attributes are of three kinds:

- household attributes (``group_size``, ``poverty_score``, ``admin_area_code`` ...);
- member attributes (``age``, ``sex``, ``birth_date`` ...): a comparison holds when *some*
  current member satisfies it (each comparison separately);
- identifier types (``UIN``, ``BRN`` ...): exact match through the keyed look-up hash, so no
  identifier is ever compared in clear. Only ``eq`` and ``in`` make sense for them.

``poverty_score`` is the household's current score (``household_scores``): of the model the
DCI settings name, else of a model with an active version, else the newest. A compiler
scoped to a consent sees only the members that consent covers, so member and identifier
criteria cannot reveal anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import ColumnElement, and_, case, exists, func, not_, or_, select

from registry_core.consent import ConsentScope, member_covered
from registry_core.crypto import IdentifierCipher
from registry_core.models import Household, Identifier, Membership, Person
from registry_core.scoring.tables import HouseholdScore, ScoringModel
from standards.dci import codes
from standards.dci.query import And, Cmp, IdMatch, Node, Not, Or, QueryError
from standards.timeutil import utcnow

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


def invalid(message: str) -> QueryError:
    """A search the registry cannot answer, with the DCI reason code for bad criteria."""
    return QueryError(codes.RJCT_SEARCH_CRITERIA, message)


def searchable_attributes() -> list[str]:
    return sorted(HOUSEHOLD_ATTRIBUTES | MEMBER_ATTRIBUTES | set(codes.IDENTIFIER_TYPE_TO_SYSTEM))


def holds_identifier(
    system: Any, hash_matches: ColumnElement[bool], members: list[ColumnElement[bool]]
) -> ColumnElement[bool]:
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


@dataclass(frozen=True)
class FilterCompiler:
    """Compiles filter trees for one view of the registry: everything (``consent`` None) or
    what one consent covers; ``score_model`` picks the eligibility model behind
    ``poverty_score``; ``today`` fixes the date ages are counted from (tests)."""

    cipher: IdentifierCipher
    consent: ConsentScope | None = None
    score_model: str | None = None
    today: date | None = None

    def members(self) -> list[ColumnElement[bool]]:
        """Conditions on a Membership row for a member this view shows: current, and covered
        by the consent when the view is scoped."""
        current: list[ColumnElement[bool]] = [Membership.end_date.is_(None)]
        if self.consent is not None:
            current.append(member_covered(self.consent))
        return current

    def score(self) -> Any:
        return self._current_score(HouseholdScore.score)

    def score_type(self) -> Any:
        return self._current_score(HouseholdScore.model_code)

    def _current_score(self, column: Any) -> Any:
        """``column`` of the household's current score: of our model if one is set, else of
        a model with an active version first (``registry_core.scoring``), newest first."""
        query = select(column).where(
            HouseholdScore.household_id == Household.id, HouseholdScore.score.is_not(None)
        )
        if self.score_model:
            query = query.where(HouseholdScore.model_code == self.score_model)
        active = exists(
            select(ScoringModel.id).where(
                ScoringModel.code == HouseholdScore.model_code, ScoringModel.status == "active"
            )
        )
        return (
            query.order_by(
                case((active, 0), else_=1),
                HouseholdScore.computed_at.desc(),
                HouseholdScore.model_code,
            )
            .limit(1)
            .correlate(Household)
            .scalar_subquery()
        )

    def _size(self) -> Any:
        return (
            select(func.count(Membership.id))
            .where(Membership.household_id == Household.id, *self.members())
            .correlate(Household)
            .scalar_subquery()
        )

    def household_column(self, name: str) -> tuple[Any, str]:
        """(SQL expression, value kind) for a household attribute."""
        if name == "group_size":
            return self._size(), "number"
        if name == "poverty_score":
            return self.score(), "number"
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
            raise invalid(f"the value given for {name!r} is not a valid {kind}") from None

    def _compare(
        self, column: Any, kind: str, op: str, value: Any, name: str
    ) -> ColumnElement[bool]:
        if kind == "string" and op not in _STRING_OPS:
            raise invalid(f"{name!r} only takes eq, ne or in")
        if kind == "bool" and op not in ("eq", "ne"):
            raise invalid(f"{name!r} only takes eq or ne")
        if op == "in":
            found: ColumnElement[bool] = column.in_([self._convert(kind, v, name) for v in value])
            return found
        converted = self._convert(kind, value, name)
        found = {
            "eq": lambda: column == converted,
            "ne": lambda: column != converted,
            "lt": lambda: column < converted,
            "le": lambda: column <= converted,
            "gt": lambda: column > converted,
            "ge": lambda: column >= converted,
        }[op]()
        return found

    def _age(self, op: str, value: Any) -> ColumnElement[bool]:
        """age <op> N as a birth_date range: indexes work and no SQL date maths is needed."""
        today = self.today or utcnow().date()

        def born_before_or_on(years: int) -> date:
            return today - relativedelta(years=years)

        def exactly(years: int) -> ColumnElement[bool]:
            return and_(
                Person.birth_date > born_before_or_on(years + 1),
                Person.birth_date <= born_before_or_on(years),
            )

        if op == "in":
            return or_(*[exactly(self._whole_age(v)) for v in value])
        years = self._whole_age(value)
        conditions: dict[str, ColumnElement[bool]] = {
            "eq": exactly(years),
            "ne": not_(exactly(years)),
            "lt": Person.birth_date > born_before_or_on(years),
            "le": Person.birth_date > born_before_or_on(years + 1),
            "gt": Person.birth_date <= born_before_or_on(years + 1),
            "ge": Person.birth_date <= born_before_or_on(years),
        }
        return conditions[op]

    @staticmethod
    def _whole_age(value: Any) -> int:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise invalid("age must be a number of years") from None
        if not 0 <= number <= 150 or not number.is_integer():
            raise invalid("age must be a whole number of years from 0 to 150")
        return int(number)

    def _member_condition(self, cmp: Cmp) -> ColumnElement[bool]:
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
            .where(Membership.household_id == Household.id, *self.members(), condition)
            .correlate(Household)
        )

    def system_for(self, id_type: str) -> str | None:
        """Our identifier system for a DCI identifier type: the DCI code directory's, else one
        the country profile gives a ``dci_identifier_type``."""
        return codes.identifier_system(id_type) or self.cipher.profile.system_for_dci_type(id_type)

    def lookup_hashes(self, system: str, value: Any) -> list[str]:
        """The look-up hashes of a searched value (one per identifier key version held),
        normalised by the country profile; a value that breaks the system's rule (no one can
        hold it) rejects the search with the rule."""
        problem = self.cipher.profile.problem(system, str(value))
        if problem is not None:
            raise invalid(f"the searched {problem.reason}")
        return self.cipher.lookup_hashes(system, str(value))

    def _identifier_condition(self, id_type: str, op: str, value: Any) -> ColumnElement[bool]:
        system = self.system_for(id_type)
        assert system is not None
        if op not in ("eq", "in"):
            raise invalid(f"identifier type {id_type} only takes eq or in")
        values = value if op == "in" else (value,)
        hashes = [h for v in values for h in self.lookup_hashes(system, v)]
        return holds_identifier(system, Identifier.value_hash.in_(hashes), self.members())

    def condition(self, node: Node) -> ColumnElement[bool]:
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
            if self.system_for(node.id_type) is None:
                known = ", ".join(sorted([*codes.IDENTIFIER_TYPE_TO_SYSTEM, "SRN"]))
                raise invalid(f"identifier type {node.id_type[:32]!r} is not searchable: {known}")
            return self._identifier_condition(node.id_type, "eq", node.value)
        assert isinstance(node, Cmp)
        name = node.attribute
        if self.system_for(name) is not None:
            return self._identifier_condition(name, node.op, node.value)
        if name in MEMBER_ATTRIBUTES:
            return self._member_condition(node)
        if name in HOUSEHOLD_ATTRIBUTES:
            column, kind = self.household_column(name)
            return self._compare(column, kind, node.op, node.value, name)
        raise invalid(
            f"attribute {name!r} is not searchable; use one of: "
            + ", ".join(searchable_attributes())
        )
