"""DCI (SPDCI) CRVS person records and the search/filter language over them. No I/O.

Why separate: the query language (``idtype-value``, ``predicate``, ``expression``) and the
record shape are where partner integrations break, so they are pure functions that tests can
hit directly and that raise ``QueryError`` with a DCI reason code and a human reason.

Record shape: the CRVS API's example person (``reg_records`` of its SearchResponse and
NotifyEventRequest), one per registered event, the subject being the child or the deceased::

    {"@type": "CRVS_Person",
     "identifier": {"identifier_type", "identifier_value"} (one) or a list of them (several:
         BRN, DRN, UIN; the registration number of the event is its BRN / DRN),
     "name": {"@type": "Name", "surname", "given_name", "second_name": ""},
     "sex", "birth_date",
     "birth_place": {"@type": "Place", "name", "address_line": "", "contained_in_place": <admin
         area code>} or "" (unknown),
     "death_date": "" | date-time, "death_place": <admin area code as text> | "",
     "parent1_identifier", "parent2_identifier": {"identifier_type", "identifier_value"},
     "registration_date", "reg_event_type"}

Blank strings stand for unknown facts, as in the spec's example. ``registration_date`` and
``reg_event_type`` (in the spec's ``spdci-common:RegistryEventType`` vocabulary) are this
registry's additions, which the spec allows: a search answer without an event type mixes births
and deaths. ``parent1_identifier`` is the mother, ``parent2_identifier`` the father.

Searchable attributes: birth_date, death_date, registration_date, event_date (dates; values
may be dates or date-times), sex, given_name, surname, reg_event_type. Operators gt, lt, eq,
ge, le, in; conditions and, or, not. Predicate items are ANDed in ``seq_num`` order; an item
``e1 not e2`` means e1 and not e2, ``not`` without e2 negates e1. ``predicate`` and
``expression`` payloads are accepted interchangeably (real clients mix them up).

Event types are read in the spec's vocabulary (``spdci-common:RegistryEventType:LiveBirth``)
and as the registry core's codes (``live_birth``); answers use the spec's vocabulary.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sandbox_mocks.civil_registry.store import Released
from sandbox_mocks.population.model import Person

ID_TYPES = ("UIN", "BRN", "DRN", "MRN")
EVENT_TYPES = ("live_birth", "death")
EVENT_PREFIX = "spdci-common:RegistryEventType:"
EVENT_NAMES = {"live_birth": EVENT_PREFIX + "LiveBirth", "death": EVENT_PREFIX + "Death"}
_SPELLINGS = {"livebirth": "live_birth", "birth": "live_birth", "death": "death"}
DATE_ATTRIBUTES = ("birth_date", "death_date", "registration_date", "event_date")
TEXT_ATTRIBUTES = ("sex", "given_name", "surname", "reg_event_type")
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "lt": operator.lt,
    "ge": operator.ge,
    "le": operator.le,
    "eq": operator.eq,
}
MAX_PAGE_SIZE = 1000
MAX_UNPAGED = 1000


class QueryError(ValueError):
    """A search the registry refuses; ``code`` is the DCI ``rjct.*`` reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def normalise_event_type(value: Any, reason: str = "rjct.search_criteria.invalid") -> str | None:
    """``live_birth`` / ``death`` from ``spdci-common:RegistryEventType:LiveBirth``,
    ``LiveBirth``, ``live_birth``, ``ns:..:death``; None when absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise QueryError(reason, "reg_event_type must be a string")
    word = value.rsplit(":", 1)[-1].strip().lower().replace("_", "")
    code = _SPELLINGS.get(word)
    if code is None:
        raise QueryError(
            reason,
            f"reg_event_type {value[:80]!r} is not served here; use one of "
            f"{sorted(EVENT_NAMES.values())} (or {list(EVENT_TYPES)})",
        )
    return code


@dataclass(frozen=True)
class Indexed:
    """A released event with its DCI record and the values queries look at."""

    released: Released
    record: dict[str, Any]
    ids: frozenset[tuple[str, str]]
    values: dict[str, Any]


def _pid(kind: str, value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    return {"@type": "Identifier", "identifier_type": kind, "identifier_value": value}


def _parent_id(person: Person | None) -> dict[str, str] | None:
    if person is None:
        return None
    return _pid("UIN", person.national_id) or _pid("BRN", person.birth_registration_number)


def _birth_place(code: str | None) -> dict[str, Any] | str:
    """A place object as in the spec's example; its admin area is the place it lies in."""
    if not code:
        return ""
    return {
        "@type": "Place",
        "name": f"Health centre {code}",
        "address_line": "",
        "contained_in_place": code,
    }


def index(released: Released) -> Indexed:
    event = released.event
    person = event.person
    reg_type = "BRN" if event.kind == "birth" else "DRN"
    identifiers = [_pid(reg_type, event.registration_number), _pid("UIN", person.national_id)]
    if event.kind == "death":
        identifiers.append(_pid("BRN", person.birth_registration_number))
    ids = [i for i in identifiers if i]
    death_date = (person.death_date or event.event_date) if event.kind == "death" else None
    record: dict[str, Any] = {
        "@type": "CRVS_Person",
        "identifier": ids[0] if len(ids) == 1 else ids,
        "name": {
            "@type": "Name",
            "surname": person.family_name,
            "given_name": person.given_name,
            "second_name": "",
        },
        "sex": person.sex,
        "birth_date": person.birth_date.isoformat(),
        "registration_date": f"{event.registration_date.isoformat()}T00:00:00Z",
        "reg_event_type": EVENT_NAMES[released.reg_event_type],
    }
    if event.kind == "birth":
        record["birth_place"] = _birth_place(event.place_locality_code)
        record["death_date"] = ""
        record["death_place"] = ""
        record["parent1_identifier"] = _parent_id(event.mother)
        record["parent2_identifier"] = _parent_id(event.father)
    else:
        record["birth_place"] = ""
        record["death_date"] = f"{death_date.isoformat()}T00:00:00Z" if death_date else ""
        record["death_place"] = event.place_locality_code or ""
    values: dict[str, Any] = {
        "birth_date": person.birth_date,
        "death_date": death_date,
        "registration_date": event.registration_date,
        "event_date": event.event_date,
        "sex": person.sex,
        "given_name": person.given_name,
        "surname": person.family_name,
        "reg_event_type": released.reg_event_type,
    }
    return Indexed(
        released=released,
        record={k: v for k, v in record.items() if v is not None},
        ids=frozenset((i["identifier_type"], i["identifier_value"]) for i in ids),
        values=values,
    )


def _parse_date(value: Any, attribute: str) -> date:
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
        except ValueError:
            pass
    raise QueryError(
        "rjct.search_criteria.invalid",
        f"{attribute}: {value!r} is not an ISO 8601 date (YYYY-MM-DD)",
    )


def _simple(expr: Any) -> Callable[[Indexed], bool]:
    """One ``{attribute_name, operator, attribute_value}`` comparison."""
    if not isinstance(expr, dict):
        raise QueryError("rjct.search_criteria.invalid", "an expression must be an object")
    name, op, raw = expr.get("attribute_name"), expr.get("operator"), expr.get("attribute_value")
    if name not in DATE_ATTRIBUTES and name not in TEXT_ATTRIBUTES:
        known = [*DATE_ATTRIBUTES, *TEXT_ATTRIBUTES]
        raise QueryError(
            "rjct.search_criteria.invalid",
            f"unknown attribute_name {name!r}; searchable attributes are {known}",
        )
    if op not in OPERATORS and op != "in":
        raise QueryError(
            "rjct.search_criteria.invalid",
            f"unknown operator {op!r}; use one of {[*OPERATORS, 'in']}",
        )
    convert: Callable[[Any], Any]
    if name in DATE_ATTRIBUTES:

        def convert(v: Any) -> Any:
            return _parse_date(v, name)
    elif name == "reg_event_type":
        convert = normalise_event_type
    else:

        def convert(v: Any) -> Any:
            if not isinstance(v, str):
                raise QueryError("rjct.search_criteria.invalid", f"{name}: expected a string")
            return v.strip().lower()

    if op == "in":
        if not isinstance(raw, list) or not raw:
            raise QueryError("rjct.search_criteria.invalid", "operator 'in' needs a list value")
        wanted = {convert(v) for v in raw}

        def test_in(item: Indexed) -> bool:
            value = item.values.get(name)
            value = value.lower() if isinstance(value, str) else value
            return value is not None and value in wanted

        return test_in
    target = convert(raw)
    compare = OPERATORS[op]

    def test(item: Indexed) -> bool:
        value = item.values.get(name)
        if value is None:
            return False
        value = value.lower() if isinstance(value, str) else value
        return bool(compare(value, target))

    return test


def _item(item: Any) -> Callable[[Indexed], bool]:
    """One predicate item: ``expression1 [condition expression2]``, or a bare comparison."""
    if not isinstance(item, dict):
        raise QueryError("rjct.search_criteria.invalid", "a predicate item must be an object")
    if "expression1" not in item:
        return _simple(item)
    first = _simple(item["expression1"])
    condition = item.get("condition")
    second = _simple(item["expression2"]) if item.get("expression2") else None
    if condition in (None, ""):
        if second is not None:
            raise QueryError("rjct.search_criteria.invalid", "expression2 needs a condition")
        return first
    if condition == "not":
        if second is None:
            return lambda r: not first(r)
        return lambda r: first(r) and not second(r)
    if second is None:
        raise QueryError(
            "rjct.search_criteria.invalid", f"condition {condition!r} needs expression2"
        )
    if condition == "and":
        return lambda r: first(r) and second(r)
    if condition == "or":
        return lambda r: first(r) or second(r)
    raise QueryError(
        "rjct.search_criteria.invalid", f"unknown condition {condition!r}; use and, or, not"
    )


def compile_predicate(query: Any) -> Callable[[Indexed], bool]:
    """Accept a list of items, one item, or ``{"predicate"|"expression": [...]}``."""
    if isinstance(query, dict):
        for key in ("predicate", "expression", "query"):
            if key in query:
                return compile_predicate(query[key])
        items: list[Any] = [query]
    elif isinstance(query, list):
        items = sorted(
            query,
            key=lambda i: (
                i.get("seq_num", 0)
                if isinstance(i, dict) and isinstance(i.get("seq_num", 0), int)
                else 0
            ),
        )
    else:
        raise QueryError("rjct.search_criteria.invalid", "query must be a list of predicates")
    if not items:
        raise QueryError("rjct.search_criteria.invalid", "query has no predicates")
    tests = [_item(i) for i in items]
    return lambda r: all(t(r) for t in tests)


def _id_test(query: Any, reason: str) -> Callable[[Indexed], bool]:
    """``{"type": "BRN", "value": "..."}``: the records carrying that identifier."""
    if not isinstance(query, dict):
        raise QueryError(reason, 'an idtype-value query is {"type", "value"}')
    kind, value = query.get("type"), query.get("value")
    if not isinstance(kind, str) or kind.upper() not in ID_TYPES:
        raise QueryError(reason, f"identifier type {str(kind)[:40]!r} unknown; use {ID_TYPES}")
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise QueryError(reason, "identifier value must be given")
    key = (kind.upper(), str(value).strip())
    return lambda r: key in r.ids


def compile_filter(value: Any, filter_type: Any = None) -> Callable[[Indexed], bool]:
    """A subscribe ``filter``: a predicate list (what to notify, e.g. ``registration_date ge
    2025-01-01``) or ``{"type", "value"}`` for one person's events. Refusals carry the spec's
    subscribe reason ``rjct.notify_details.invalid``."""
    reason = "rjct.notify_details.invalid"
    try:
        if filter_type == "idtype-value" or (
            isinstance(value, dict)
            and "type" in value
            and not isinstance(value["type"], dict)
            and "value" in value
            and not isinstance(value["value"], dict | list)
        ):
            return _id_test(value, reason)
        if isinstance(value, dict) and isinstance(value.get("value"), dict):
            raise QueryError(reason, "query templates (type/value expressions) are not served")
        return compile_predicate(value)
    except QueryError as exc:
        raise QueryError(reason, f"subscribe_criteria.filter: {exc}") from None


def compile_criteria(criteria: Any) -> tuple[str | None, Callable[[Indexed], bool]]:
    """``(event type or None, test)`` for a DCI ``search_criteria`` object."""
    if not isinstance(criteria, dict):
        raise QueryError("rjct.search_criteria.invalid", "search_criteria must be an object")
    event_type = normalise_event_type(criteria.get("reg_event_type"))
    query_type, query = criteria.get("query_type"), criteria.get("query")
    if query_type == "idtype-value":
        test = _id_test(query, "rjct.search_criteria.invalid")
    elif query_type in ("predicate", "expression"):
        test = compile_predicate(query)
    else:
        raise QueryError(
            "rjct.search_criteria.invalid",
            f"query_type {query_type!r} unknown; use idtype-value, predicate or expression",
        )
    if event_type is None:
        return None, test
    return event_type, lambda r: r.values["reg_event_type"] == event_type and test(r)


def _sort_key(attribute: str) -> Callable[[Indexed], Any]:
    def key(item: Indexed) -> Any:
        value = item.values.get(attribute)
        return (value is None, value if value is not None else "")

    return key


def search(
    items: Iterable[Indexed], criteria: dict[str, Any]
) -> tuple[str | None, list[Indexed], dict[str, int]]:
    """Run one search: matched page plus ``{page_size, page_number, total_count}``."""
    event_type, test = compile_criteria(criteria)
    matched = [item for item in items if test(item)]
    sort = criteria.get("sort") or []
    if not isinstance(sort, list):
        raise QueryError("rjct.sort.invalid", "sort must be a list")
    for spec in reversed(sort):
        if not isinstance(spec, dict):
            raise QueryError("rjct.sort.invalid", "each sort entry is {attribute_name, sort_order}")
        name, order = spec.get("attribute_name"), spec.get("sort_order", "asc")
        if name not in DATE_ATTRIBUTES and name not in TEXT_ATTRIBUTES:
            raise QueryError("rjct.sort.invalid", f"cannot sort by {name!r}")
        if order not in ("asc", "desc"):
            raise QueryError("rjct.sort.invalid", "sort_order must be asc or desc")
        matched.sort(key=_sort_key(name), reverse=order == "desc")
    pagination = criteria.get("pagination")
    if pagination is None:
        if len(matched) > MAX_UNPAGED:
            raise QueryError(
                "rjct.search.too_many_records_found",
                f"{len(matched)} records match; ask for pages (pagination.page_size)",
            )
        return (
            event_type,
            matched,
            {
                "page_size": len(matched),
                "page_number": 1,
                "total_count": len(matched),
            },
        )
    if not isinstance(pagination, dict):
        raise QueryError("rjct.pagination.invalid", "pagination is {page_size, page_number}")
    size, number = pagination.get("page_size"), pagination.get("page_number", 1)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_PAGE_SIZE:
        raise QueryError("rjct.pagination.invalid", f"page_size must be 1..{MAX_PAGE_SIZE}")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise QueryError("rjct.pagination.invalid", "page_number starts at 1")
    start = (number - 1) * size
    return (
        event_type,
        matched[start : start + size],
        {
            "page_size": size,
            "page_number": number,
            "total_count": len(matched),
        },
    )
