"""The form's own rules, checked again on the server for every instance.

A device enforces required, type, constraint and relevant before it sends; an old app, a
hand-made request or a bug may not have. Each bind of the form version is evaluated on the
instance with lxml's XPath 1.0 and the ODK functions forms use (``regex``, ``selected``,
``count-selected``, ``today``...), registered per expression, never globally.

Dates: XPath 1.0 compares numbers, not dates, while ODK compares dates. Expressions are
therefore evaluated on a copy of the instance where every ``date``/``dateTime`` answer is
the number of days since 1970-01-01 (what JavaRosa converts dates to), and ``today()``,
``now()`` and ``date(...)`` answer in days too, so ``. <= today()`` means what the author meant.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from lxml import etree

from hub.intake.xform import Bind, FormModel

log = logging.getLogger(__name__)

EPOCH = date(1970, 1, 1)
_INT = re.compile(r"^[+-]?\d{1,18}$")
_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class RuleViolation:
    """One broken rule: the question (its name and concrete path), the rule, and why."""

    question: str
    path: str
    rule: str  # required | type | choice | constraint
    message: str

    def as_dict(self) -> dict[str, str]:
        return {
            "question": self.question,
            "path": self.path,
            "rule": self.rule,
            "message": self.message,
        }

    def __str__(self) -> str:
        return f"{self.question} ({self.path}): {self.rule}: {self.message}"


# ---------------------------------------------------------------------------- ODK functions


def _string(value: Any) -> str:
    """XPath string() of an argument (a node-set gives its first node's text)."""
    if isinstance(value, list):
        if not value:
            return ""
        first = value[0]
        return "".join(first.itertext()) if isinstance(first, etree._Element) else str(first)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return str(value)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(_string(value).strip())
    except ValueError:
        return math.nan


def _truthy(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, float | int):
        return value != 0 and not math.isnan(value)
    return bool(str(value))


def days_of(text: str) -> float | None:
    """Days since 1970-01-01 of an ODK date or dateTime text (None if it is neither)."""
    text = text.strip()
    try:
        if _DATE.match(text):
            return float((date.fromisoformat(text) - EPOCH).days)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86400


def _regex(_ctx: Any, value: Any, pattern: Any) -> bool:
    try:
        return re.search(_string(pattern), _string(value)) is not None
    except re.error:
        return False


def _selected(_ctx: Any, values: Any, choice: Any) -> bool:
    return _string(choice).strip() in _string(values).split()


def _count_selected(_ctx: Any, values: Any) -> float:
    return float(len(_string(values).split()))


def _selected_at(_ctx: Any, values: Any, index: Any) -> str:
    items = _string(values).split()
    position = int(_number(index)) if not math.isnan(_number(index)) else -1
    return items[position] if 0 <= position < len(items) else ""


def _today(_ctx: Any) -> float:
    return float((datetime.now(UTC).date() - EPOCH).days)


def _now(_ctx: Any) -> float:
    return (datetime.now(UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86400


def _date(_ctx: Any, value: Any) -> float:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return float(value)
    days = days_of(_string(value))
    return math.nan if days is None else days


def _if(_ctx: Any, condition: Any, then: Any, otherwise: Any) -> Any:
    return then if _truthy(condition) else otherwise


def _coalesce(_ctx: Any, first: Any, second: Any) -> Any:
    return first if _string(first) != "" else second


def _int(_ctx: Any, value: Any) -> float:
    number = _number(value)
    return math.nan if math.isnan(number) else float(math.trunc(number))


def _boolean_from_string(_ctx: Any, value: Any) -> bool:
    return _string(value).strip() in ("true", "1")


def _abs(_ctx: Any, value: Any) -> float:
    return abs(_number(value))


def _pow(_ctx: Any, base: Any, exponent: Any) -> float:
    try:
        return float(math.pow(_number(base), _number(exponent)))
    except (OverflowError, ValueError):
        return math.nan


def _current(ctx: Any) -> list[Any]:
    return [ctx.context_node]


def _string_length(_ctx: Any, value: Any = None) -> float:
    return float(len(_string(value)))


FUNCTIONS: dict[tuple[None, str], Callable[..., Any]] = {
    (None, "regex"): _regex,
    (None, "selected"): _selected,
    (None, "count-selected"): _count_selected,
    (None, "selected-at"): _selected_at,
    (None, "today"): _today,
    (None, "now"): _now,
    (None, "date"): _date,
    (None, "decimal-date"): _date,
    (None, "decimal-date-time"): _date,
    (None, "if"): _if,
    (None, "coalesce"): _coalesce,
    (None, "int"): _int,
    (None, "boolean-from-string"): _boolean_from_string,
    (None, "abs"): _abs,
    (None, "pow"): _pow,
    (None, "current"): _current,
}


class UnsupportedExpression(ValueError):
    """An expression this server cannot evaluate (an ODK function it does not know)."""


@lru_cache(maxsize=2048)
def compiled(expression: str) -> etree.XPath:
    try:
        return etree.XPath(expression, extensions=FUNCTIONS)
    except etree.XPathSyntaxError as exc:
        raise UnsupportedExpression(f"{expression!r}: {exc}") from None


def evaluate(expression: str, node: etree._Element) -> bool:
    try:
        return _truthy(compiled(expression)(node))
    except etree.XPathEvalError as exc:
        raise UnsupportedExpression(f"{expression!r}: {exc}") from None


def unsupported_expressions(model: FormModel) -> list[str]:
    """Expressions of ``model`` the server cannot re-check (told to the author at upload)."""
    found = []
    for bind in model.binds:
        for rule, expression in (
            ("required", bind.required),
            ("constraint", bind.constraint),
            ("relevant", bind.relevant),
        ):
            if not expression:
                continue
            try:
                compiled(expression)
            except UnsupportedExpression:
                found.append(f"{bind.name}: {rule} {expression}")
                continue
            # Unknown functions only show when evaluated: try on an empty root.
            try:
                compiled(expression)(etree.Element(model.root_name))
            except etree.XPathEvalError as exc:
                if "function" in str(exc).lower():
                    found.append(f"{bind.name}: {rule} {expression}")
            except Exception:  # noqa: S112 - other errors depend on the instance
                continue
    return found


# ---------------------------------------------------------------------------- the check


def _numeric_view(model: FormModel, doc: etree._Element) -> etree._Element:
    """A copy of the instance with date answers as days since 1970 (see the module doc)."""
    view = etree.fromstring(etree.tostring(doc))
    for bind in model.questions:
        if bind.type not in ("date", "dateTime"):
            continue
        for node in view.xpath(bind.nodeset):
            if isinstance(node, etree._Element) and node.text:
                days = days_of(node.text)
                if days is not None:
                    node.text = repr(days)
    return view


def _type_problem(bind: Bind, value: str, choices: frozenset[str] | None) -> str | None:
    kind = bind.type
    if kind == "int" and not _INT.match(value):
        return f"must be a whole number, not {value[:20]!r}"
    if kind == "decimal" and not _DECIMAL.match(value):
        return f"must be a number, not {value[:20]!r}"
    if kind == "date" and (not _DATE.match(value) or days_of(value) is None):
        return "must be a date written YYYY-MM-DD"
    if kind == "dateTime" and days_of(value) is None:
        return "must be a date and time (ISO 8601)"
    if kind == "geopoint":
        parts = value.split()
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if not 2 <= len(numbers) <= 4 or not (
            -90 <= numbers[0] <= 90 and -180 <= numbers[1] <= 180
        ):
            return "must be 'latitude longitude [altitude accuracy]'"
    if choices is not None:
        picked = value.split()  # choice names hold no blanks
        unknown = [p for p in picked if p not in choices]
        if unknown:
            listed = ", ".join(sorted(choices))[:200]
            return f"{unknown[0][:30]!r} is not one of the choices ({listed})"
    return None


class _Relevance:
    """Whether a node is relevant: its own bind and every ancestor group's or repeat's."""

    def __init__(self, model: FormModel, view: etree._Element) -> None:
        self.model = model
        self.view = view
        self.by_path = {b.nodeset: b.relevant for b in model.binds if b.relevant}
        self.memo: dict[str, bool] = {}

    def of(self, node: etree._Element) -> bool:
        key = self.view.getroottree().getpath(node)
        if key in self.memo:
            return self.memo[key]
        parent = node.getparent()
        relevant = parent is None or self.of(parent)
        if relevant:
            expression = self.by_path.get(_plain_path(node))
            if expression:
                try:
                    relevant = evaluate(expression, node)
                except UnsupportedExpression:
                    relevant = True  # what the server cannot judge, it does not refuse
        self.memo[key] = relevant
        return relevant


def _plain_path(node: etree._Element) -> str:
    names = []
    current: etree._Element | None = node
    while current is not None:
        names.append(etree.QName(current).localname)
        current = current.getparent()
    return "/" + "/".join(reversed(names))


def validate_instance(model: FormModel, doc: etree._Element) -> list[RuleViolation]:
    """Every rule of ``model`` the instance ``doc`` breaks (empty when it passes)."""
    view = _numeric_view(model, doc)
    tree = view.getroottree()
    relevance = _Relevance(model, view)
    originals = doc.getroottree()
    problems: list[RuleViolation] = []
    for bind in model.questions:
        nodes = [n for n in view.xpath(bind.nodeset) if isinstance(n, etree._Element)]
        if not nodes:
            if bind.repeat is None and bind.required and bind.calculate is None:
                parent_path = bind.nodeset.rsplit("/", 1)[0]
                parents = view.xpath(parent_path)
                context = parents[0] if parents else view
                if (
                    relevance.of(context)
                    and _safe(bind.relevant, context, True)
                    and _safe(bind.required, context, False)
                ):
                    problems.append(
                        RuleViolation(
                            bind.name, bind.nodeset, "required", "is required but missing"
                        )
                    )
            continue
        for node in nodes:
            path = tree.getpath(node)
            if not relevance.of(node):
                continue
            original = originals.xpath(path)
            value = "".join(original[0].itertext()).strip() if original else ""
            if not value:
                if bind.required and _safe(bind.required, node, False):
                    problems.append(
                        RuleViolation(bind.name, path, "required", "is required but empty")
                    )
                continue
            problem = _type_problem(bind, value, model.choices.get(bind.nodeset))
            if problem is not None:
                rule = "choice" if bind.nodeset in model.choices else "type"
                problems.append(RuleViolation(bind.name, path, rule, problem))
                continue
            if bind.constraint and not _safe(bind.constraint, node, True):
                message = bind.constraint_message or f"breaks the constraint {bind.constraint}"
                problems.append(RuleViolation(bind.name, path, "constraint", message))
    return problems


def _safe(expression: str | None, node: etree._Element, default: bool) -> bool:
    """``expression`` on ``node``; ``default`` when there is none or the server cannot
    evaluate it (logged once per expression)."""
    if not expression:
        return default
    try:
        return evaluate(expression, node)
    except UnsupportedExpression as exc:
        _warn_once(str(exc))
        return default


@lru_cache(maxsize=256)
def _warn_once(message: str) -> None:
    log.warning("intake: a form rule the server cannot evaluate is not re-checked: %s", message)
