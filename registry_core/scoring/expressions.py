"""CEL expressions of scoring models and eligibility rules, compiled and checked once.

Why CEL (the ``common-expression-language`` package, a binding of the Rust ``cel``
interpreter): administrators write formulas and conditions, and those must never run as
Python. CEL has no loops, no I/O, no imports and no user functions unless the host adds them;
it always terminates. We add none: an expression may call only the CEL built-ins listed in
``ALLOWED_FUNCTIONS`` and name only the variables its model declares. Everything is checked
at upload, so a mistake is reported to the person who made it (naming the expression, the
line and column) rather than discovered while a registry of households is being scored.

CEL does not convert between numbers (``2 * x`` with ``x`` a double is an error); every
variable reaches an expression as a double, so constants are written ``2.0``. The trial run at
upload (every declared variable given a sample value) reports such errors too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cel

MAX_EXPRESSION_LENGTH = 2000
# CEL's operators and the few built-ins a formula or condition needs; nothing that reads
# time, parses text into other types, or reaches anything outside the expression.
ALLOWED_FUNCTIONS = frozenset(
    {
        "_+_",
        "_-_",
        "_*_",
        "_/_",
        "_%_",
        "_<_",
        "_<=_",
        "_>_",
        "_>=_",
        "_==_",
        "_!=_",
        "_&&_",
        "_||_",
        "!_",
        "-_",
        "_?_:_",
        "_[_]",
        "@in",
        "@not_strictly_false",
        "size",
        "startsWith",
        "endsWith",
        "contains",
        "double",
        "int",
        "string",
        "bool",
    }
)
_MACRO_VARIABLE = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")
_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*?)(?:\n|$)")


class ExpressionError(ValueError):
    """An expression that may not be used; the message names where it is and what is wrong."""

    def __init__(
        self, where: str, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        at = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"{where}: {message}{at}")
        self.where = where
        self.line = line
        self.column = column
        self.reason = message


def _position_of(expression: str, name: str) -> tuple[int | None, int | None]:
    found = re.search(rf"\b{re.escape(name)}\b", expression)
    if found is None:
        return None, None
    before = expression[: found.start()]
    return before.count("\n") + 1, found.start() - (before.rfind("\n") + 1) + 1


@dataclass(frozen=True)
class Expression:
    """A compiled, checked CEL expression and the variables it reads."""

    source: str
    program: Any  # cel.Program
    variables: frozenset[str]

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """Run it over ``values`` (only its own variables are handed in)."""
        return self.program.execute({name: values[name] for name in self.variables})


def compile_expression(
    source: str,
    where: str,
    declared: Mapping[str, Any],
    *,
    result: type | tuple[type, ...] | None = None,
) -> Expression:
    """Compile ``source`` and check it: CEL syntax, only allowed functions, only ``declared``
    variables (a name -> sample value map), and a trial run on the samples whose result is of
    type ``result``. Raises ``ExpressionError`` naming ``where`` (e.g. ``formula``)."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError(where, "the expression is empty")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(where, f"longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        program = cel.compile(source)
    except ValueError as exc:
        found = _POSITION.search(str(exc))
        if found:
            line, column, reason = int(found[1]), int(found[2]), found[3].strip()
            raise ExpressionError(where, f"syntax error: {reason}", line, column) from None
        raise ExpressionError(where, "syntax error") from None
    for function in program.functions():
        if function not in ALLOWED_FUNCTIONS:
            at = _position_of(source, function.strip("_@"))
            raise ExpressionError(where, f"function {function!r} is not allowed", *at)
    bound = set(_MACRO_VARIABLE.findall(source))
    names = set(program.variables()) - bound
    unknown = sorted(names - set(declared))
    if unknown:
        at = _position_of(source, unknown[0])
        raise ExpressionError(
            where, f"unknown variable {unknown[0]!r} (declare it in the model)", *at
        )
    expression = Expression(source, program, frozenset(names))
    try:
        outcome = expression.evaluate(declared)
    except Exception as exc:
        raise ExpressionError(where, f"does not evaluate: {_first_line(exc)}") from None
    if result is not None and (isinstance(outcome, bool) and result is not bool):
        raise ExpressionError(where, "gives true/false where a number is expected")
    if result is not None and not isinstance(outcome, result):
        raise ExpressionError(where, f"gives {type(outcome).__name__}, not {_named(result)}")
    return expression


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _named(kinds: type | tuple[type, ...]) -> str:
    items: Iterable[type] = kinds if isinstance(kinds, tuple) else (kinds,)
    words = {bool: "true/false", float: "a number", int: "a number"}
    return " or ".join(sorted({words.get(k, k.__name__) for k in items}))
