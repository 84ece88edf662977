"""DCI search criteria -> one small filter tree, whatever dialect the caller spoke.

The spec has three query types, and real senders mix them up: a predicate list sent with
``query_type: "expression"``, an expression without its ``{type, value}`` wrapper, a single
predicate object instead of a list. ``parse_query`` reads the *shape* of ``query`` (the
declared ``query_type`` only breaks ties), so every known variant lands on the same tree:

- ``Cmp(attribute, op, value)`` with op in eq, ne, lt, le, gt, ge, in;
- ``And(items)``, ``Or(items)``, ``Not(item)``;
- ``IdMatch(id_type, value)`` for ``idtype-value``.

Predicate semantics (the spec leaves them open, so we state ours): list items are evaluated in
``seq_num`` order and combined with AND; inside an item ``condition`` joins ``expression1``
and ``expression2`` (``and``, ``or``; ``not`` means expression1 AND NOT expression2, or NOT
expression1 when there is no expression2).

Expressions use the Mongo-like syntax of the spec's example (``{"$and": [{"poverty_score":
{"$lt": 5}}]}``). Sort and pagination are checked here too. Errors are ``QueryError`` with the
spec's per-request reason code. Attribute names are checked by the executor, which knows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from standards.dci import codes

MAX_DEPTH = 8
MAX_TERMS = 50
MAX_IN_VALUES = 100
MAX_ATTRIBUTE_LENGTH = 64
MAX_VALUE_LENGTH = 200

_OPERATORS = {
    "eq": "eq",
    "ne": "ne",
    "lt": "lt",
    "le": "le",
    "lte": "le",
    "gt": "gt",
    "ge": "ge",
    "gte": "ge",
    "in": "in",
}


class QueryError(ValueError):
    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True)
class Cmp:
    attribute: str
    op: str
    value: Any


@dataclass(frozen=True)
class IdMatch:
    id_type: str
    value: str


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Cmp | IdMatch | And | Or | Not


@dataclass(frozen=True)
class SortKey:
    attribute: str
    descending: bool


@dataclass(frozen=True)
class Page:
    size: int
    number: int


def _fail(message: str, reason: str = codes.RJCT_SEARCH_CRITERIA) -> QueryError:
    return QueryError(reason, message)


def _scalar(value: Any, where: str) -> Any:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_VALUE_LENGTH:
            raise _fail(f"{where}: value longer than {MAX_VALUE_LENGTH} characters")
        return value
    raise _fail(f"{where}: values must be strings, numbers or booleans")


def _value(op: str, value: Any, where: str) -> Any:
    if op == "in":
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise _fail(f"{where}: 'in' needs a list of 1 to {MAX_IN_VALUES} values")
        return tuple(_scalar(v, where) for v in value)
    return _scalar(value, where)


def _attribute(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_ATTRIBUTE_LENGTH:
        raise _fail(f"{where}: attribute_name must be a short non-empty string")
    return name


def _count(node: Node) -> int:
    if isinstance(node, And | Or):
        return sum(_count(i) for i in node.items)
    if isinstance(node, Not):
        return _count(node.item)
    return 1


# --- predicate ----------------------------------------------------------------------------


def _predicate_expression(raw: Any, where: str) -> Cmp:
    if not isinstance(raw, dict):
        raise _fail(f"{where} must be an object with attribute_name, operator, attribute_value")
    op = _OPERATORS.get(str(raw.get("operator", "")).lower())
    if op is None:
        raise _fail(f"{where}.operator must be one of gt, lt, eq, ge, le, in")
    if "attribute_value" not in raw:
        raise _fail(f"{where}.attribute_value is required")
    name = _attribute(raw.get("attribute_name"), where)
    return Cmp(name, op, _value(op, raw["attribute_value"], where))


def _predicate_item(raw: Any, where: str) -> Node:
    if not isinstance(raw, dict) or "expression1" not in raw:
        raise _fail(f"{where} must be an object with expression1")
    first = _predicate_expression(raw["expression1"], f"{where}.expression1")
    condition = raw.get("condition")
    second_raw = raw.get("expression2")
    if condition is None and second_raw is None:
        return first
    if condition not in ("and", "or", "not"):
        raise _fail(f"{where}.condition must be and, or or not")
    if second_raw is None:
        if condition == "not":
            return Not(first)
        raise _fail(f"{where}: condition {condition!r} needs expression2")
    second = _predicate_expression(second_raw, f"{where}.expression2")
    if condition == "and":
        return And((first, second))
    if condition == "or":
        return Or((first, second))
    return And((first, Not(second)))


def _predicate(raw: list[Any]) -> Node:
    if not raw:
        raise _fail("the predicate list is empty")
    if len(raw) > MAX_TERMS:
        raise _fail(f"at most {MAX_TERMS} predicates")

    def order(pair: tuple[int, Any]) -> tuple[float, int]:
        index, item = pair
        seq = item.get("seq_num") if isinstance(item, dict) else None
        number = float(seq) if isinstance(seq, int | float) and not isinstance(seq, bool) else 0.0
        return number, index

    items = [
        _predicate_item(item, f"query[{index}]")
        for index, item in sorted(enumerate(raw), key=order)
    ]
    return items[0] if len(items) == 1 else And(tuple(items))


# --- expression -----------------------------------------------------------------------------


def _expression(raw: Any, depth: int = 0) -> Node:
    if depth > MAX_DEPTH:
        raise _fail(f"the expression nests deeper than {MAX_DEPTH} levels")
    if isinstance(raw, list):
        return And(tuple(_expression(item, depth + 1) for item in raw)) if raw else _empty()
    if not isinstance(raw, dict) or not raw:
        raise _fail("an expression must be a non-empty object")
    terms: list[Node] = []
    for key, value in raw.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _fail(f"{key} needs a non-empty list")
            parts = tuple(_expression(item, depth + 1) for item in value)
            terms.append(And(parts) if key == "$and" else Or(parts))
        elif key == "$not":
            terms.append(Not(_expression(value, depth + 1)))
        elif key.startswith("$"):
            raise _fail(f"unknown expression operator {key[:20]!r}")
        else:
            name = _attribute(key, "expression")
            if isinstance(value, dict):
                if not value:
                    raise _fail(f"expression on {name!r} has no operator")
                for op_key, operand in value.items():
                    op = _OPERATORS.get(str(op_key).lstrip("$").lower())
                    if op is None or not str(op_key).startswith("$"):
                        raise _fail(f"unknown operator {str(op_key)[:20]!r} on {name!r}")
                    terms.append(Cmp(name, op, _value(op, operand, f"expression.{name}")))
            else:
                terms.append(Cmp(name, "eq", _value("eq", value, f"expression.{name}")))
    return terms[0] if len(terms) == 1 else And(tuple(terms))


def _empty() -> Node:
    raise _fail("the expression is empty")


def _unwrap_expression(raw: dict[str, Any]) -> Any:
    """Peel the spec's wrappers: {type, value: {expression: {collection, query}}}."""
    body: Any = raw
    for _ in range(4):
        if not isinstance(body, dict):
            break
        if "value" in body and isinstance(body["value"], dict | list) and "type" in body:
            body = body["value"]
        elif "expression" in body and isinstance(body["expression"], dict | list | str):
            body = body["expression"]
        elif "query" in body and isinstance(body["query"], dict | list):
            body = body["query"]
        else:
            break
    return body


# --- entry point ----------------------------------------------------------------------------


def parse_query(query_type: Any, query: Any) -> Node:
    """The filter tree of one search_criteria, or QueryError(rjct.search_criteria.invalid)."""
    if query_type not in (None, "idtype-value", "expression", "predicate"):
        raise _fail("query_type must be idtype-value, expression or predicate")
    if isinstance(query, list):
        node = _predicate(query)
    elif not isinstance(query, dict):
        raise _fail("query must be an object or a list of predicates")
    elif "expression1" in query:
        node = _predicate([query])
    elif (
        "type" in query
        and "value" in query
        and (query_type == "idtype-value" or not isinstance(query["value"], dict | list))
    ):
        id_type = query.get("type")
        value = query.get("value")
        if not isinstance(id_type, str) or not id_type or len(id_type) > 32:
            raise _fail("query.type must name an identifier type such as UIN")
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
            raise _fail("query.value must be the identifier value")
        text = str(value).strip()
        if len(text) > MAX_VALUE_LENGTH:
            raise _fail("query.value is too long")
        node = IdMatch(id_type, text)
    else:
        body = _unwrap_expression(query)
        if isinstance(body, str):
            raise _fail("string (e.g. GraphQL) expressions are not supported; use $and/$or")
        node = _predicate(body) if _looks_like_predicates(body) else _expression(body)
    if _count(node) > MAX_TERMS:
        raise _fail(f"at most {MAX_TERMS} comparisons per query")
    return node


def _looks_like_predicates(body: Any) -> bool:
    return (
        isinstance(body, list)
        and bool(body)
        and all(isinstance(item, dict) and "expression1" in item for item in body)
    )


def parse_sort(raw: Any, allowed: frozenset[str]) -> tuple[SortKey, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 5:
        raise QueryError(codes.RJCT_SORT, "sort must be a list of at most 5 keys")
    keys = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise QueryError(codes.RJCT_SORT, f"sort[{index}] must be an object")
        name = item.get("attribute_name")
        if name not in allowed:
            raise QueryError(
                codes.RJCT_SORT,
                f"sort[{index}].attribute_name must be one of " + ", ".join(sorted(allowed)),
            )
        order = item.get("sort_order", "asc")
        if order not in ("asc", "desc"):
            raise QueryError(codes.RJCT_SORT, f"sort[{index}].sort_order must be asc or desc")
        keys.append(SortKey(name, order == "desc"))
    return tuple(keys)


def parse_pagination(raw: Any, *, default_size: int, max_size: int) -> Page:
    if raw is None:
        return Page(default_size, 1)

    def whole(value: Any) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None

    if not isinstance(raw, dict):
        raise QueryError(codes.RJCT_PAGINATION, "pagination must be an object")
    size = whole(raw.get("page_size"))
    number = whole(raw.get("page_number", 1))
    if size is None or not 1 <= size <= max_size:
        raise QueryError(
            codes.RJCT_PAGINATION,
            f"pagination.page_size must be a whole number from 1 to {max_size}",
        )
    if number is None or not 1 <= number <= 1_000_000:
        raise QueryError(
            codes.RJCT_PAGINATION, "pagination.page_number must be a whole number >= 1"
        )
    return Page(size, number)
