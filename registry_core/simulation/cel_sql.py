"""A rule's CEL condition written as a SQL expression, so a simulation stays set-based.

Why: a simulation must answer over a million households in about two seconds; running the
condition per household in Python (as the eligibility decision does) costs ten times that.
Conditions are small boolean formulas over the model's variables, ``score`` and ``area``, so
the subset administrators write translates one to one:

- literals (numbers, strings, ``true``/``false``), names, parentheses;
- ``||``, ``&&``, ``!``, ``? :``, ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``, ``+``,
  ``-``, ``*``, unary ``-``, ``double(x)``;
- ``area.startsWith("R01")``, ``.endsWith(...)``, ``.contains(...)`` with a string literal;
- ``/`` by a non-zero double literal (``income / 12.0``): the same IEEE division in CEL and in
  SQL; a division by anything else is refused (by zero CEL gives infinity, PostgreSQL an
  error, SQLite NULL).

A scoring model's CEL ``formula`` is the same language giving a number (``translate_formula``),
so a simulation of a formula model stays set-based too. Anything else (``%``, macros, ``int``,
``size``) raises ``Untranslatable`` naming it and where it is (line and column in the
expression): the caller refuses the simulation with that message rather than guess. The
expression has already been compiled and checked by ``expressions.compile_expression`` (the
names exist, the types fit); this module only rewrites it. Every string literal becomes a
bound parameter; names are mapped to columns the caller chose, so nothing of the text
reaches the SQL unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Untranslatable(ValueError):
    """The expression uses something a set-based simulation does not evaluate; ``line`` and
    ``column`` (1-based) say where, once ``translate`` has placed it."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.reason = message
        self.offset = offset
        self.line: int | None = None
        self.column: int | None = None

    def place(self, source: str) -> Untranslatable:
        """The same refusal naming its line and column in ``source``."""
        placed = Untranslatable(self.reason, self.offset)
        if self.offset is not None:
            before = source[: self.offset]
            placed.line = before.count("\n") + 1
            placed.column = self.offset - (before.rfind("\n") + 1) + 1
            placed.args = (f"{self.reason} at line {placed.line}, column {placed.column}",)
        return placed


_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+\.\d*(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?u?|\.\d+)"
    r"|(?P<string>\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')"
    r"|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<op>\|\||&&|==|!=|<=|>=|[<>!?:()+\-*/%.,\[\]{}]))"
)
_STRING_METHODS = ("startsWith", "endsWith", "contains")


@dataclass
class _Tokens:
    items: list[tuple[str, str]]
    offsets: list[int]
    end: int = 0
    at: int = 0

    def peek(self) -> tuple[str, str]:
        return self.items[self.at] if self.at < len(self.items) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.at += 1
        return token

    def offset(self, index: int) -> int:
        """Where token ``index`` starts in the source (past the last: its end)."""
        return self.offsets[index] if 0 <= index < len(self.offsets) else self.end

    def fail(self, message: str, index: int | None = None) -> Untranslatable:
        """A refusal at token ``index`` (default: the last one taken)."""
        return Untranslatable(message, self.offset(self.at - 1 if index is None else index))

    def expect(self, text: str) -> None:
        kind, value = self.take()
        if value != text or kind != "op":
            raise self.fail(f"expected {text!r}, found {value or 'the end'!r}")


def _tokenize(source: str) -> _Tokens:
    items: list[tuple[str, str]] = []
    offsets: list[int] = []
    position = 0
    source = source.rstrip()
    while position < len(source):
        found = _TOKEN.match(source, position)
        if found is None or found.end() == position:
            skipped = len(source[position:]) - len(source[position:].lstrip())
            raise Untranslatable("cannot read the expression here", position + skipped)
        kind = found.lastgroup or "op"
        items.append((kind, found.group(kind)))
        offsets.append(found.start(kind))
        position = found.end()
    return _Tokens(items, offsets, len(source))


@dataclass
class _Node:
    """A translated piece: its SQL and whether it is a string (only ``area`` and literals)."""

    sql: str
    text: bool = False


@dataclass
class Translation:
    """The SQL of a condition and the bound parameters its string literals became."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


class _Translator:
    def __init__(
        self,
        tokens: _Tokens,
        columns: Mapping[str, str],
        dialect: str,
        prefix: str,
    ) -> None:
        self.tokens = tokens
        self.names = columns
        self.column: Callable[[str], str] = columns.__getitem__
        self.dialect = dialect
        self.prefix = prefix
        self.params: dict[str, Any] = {}

    def _param(self, value: str) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def _is(self, text: str) -> bool:
        kind, value = self.tokens.peek()
        return kind == "op" and value == text

    def expression(self) -> _Node:
        condition = self.disjunction()
        if not self._is("?"):
            return condition
        self.tokens.take()
        then = self.expression()
        self.tokens.expect(":")
        otherwise = self.expression()
        return _Node(
            f"(CASE WHEN {condition.sql} THEN {then.sql} ELSE {otherwise.sql} END)",
            then.text,
        )

    def disjunction(self) -> _Node:
        node = self.conjunction()
        while self._is("||"):
            self.tokens.take()
            node = _Node(f"({node.sql} OR {self.conjunction().sql})")
        return node

    def conjunction(self) -> _Node:
        node = self.relation()
        while self._is("&&"):
            self.tokens.take()
            node = _Node(f"({node.sql} AND {self.relation().sql})")
        return node

    def relation(self) -> _Node:
        node = self.additive()
        kind, value = self.tokens.peek()
        if kind == "op" and value in ("<", "<=", ">", ">=", "==", "!="):
            self.tokens.take()
            right = self.additive()
            operator = {"==": "=", "!=": "<>"}.get(value, value)
            return _Node(f"({node.sql} {operator} {right.sql})")
        if kind == "name" and value == "in":
            raise self.tokens.fail("'in' is not evaluated set-based", self.tokens.at)
        return node

    def additive(self) -> _Node:
        node = self.multiplicative()
        while self._is("+") or self._is("-"):
            _, operator = self.tokens.take()
            at = self.tokens.at - 1
            right = self.multiplicative()
            if node.text or right.text:
                raise self.tokens.fail("joining strings is not evaluated set-based", at)
            node = _Node(f"({node.sql} {operator} {right.sql})")
        return node

    def multiplicative(self) -> _Node:
        node = self.unary()
        while True:
            kind, value = self.tokens.peek()
            if kind == "op" and value == "*":
                self.tokens.take()
                node = _Node(f"({node.sql} * {self.unary().sql})")
            elif kind == "op" and value == "/":
                node = _Node(f"({node.sql} / {self._divisor()})")
            elif kind == "op" and value == "%":
                raise self.tokens.fail("'%' is not evaluated set-based", self.tokens.at)
            else:
                return node

    def _divisor(self) -> str:
        """After ``/``: a non-zero double literal, the one division CEL and SQL agree on."""
        at = self.tokens.at
        self.tokens.take()
        kind, value = self.tokens.take()
        number = float(value.rstrip("u")) if kind == "number" else 0.0
        if kind != "number" or not re.search(r"[.eE]", value) or number == 0.0:
            raise self.tokens.fail(
                "'/' is evaluated set-based only by a non-zero number such as 12.0", at
            )
        return f"CAST({number!r} AS DOUBLE PRECISION)"

    def unary(self) -> _Node:
        if self._is("!"):
            self.tokens.take()
            return _Node(f"(NOT {self.unary().sql})")
        if self._is("-"):
            self.tokens.take()
            return _Node(f"(-{self.unary().sql})")
        return self.member()

    def member(self) -> _Node:
        node = self.primary()
        while self._is("."):
            self.tokens.take()
            kind, method = self.tokens.take()
            at = self.tokens.at - 1
            if kind != "name" or method not in _STRING_METHODS or not node.text:
                raise self.tokens.fail(f"'.{method}' is not evaluated set-based")
            self.tokens.expect("(")
            argument = self.expression()
            self.tokens.expect(")")
            if not argument.text:
                raise self.tokens.fail(f"'.{method}' takes a string", at)
            node = _Node(self._string_method(method, node.sql, argument.sql))
        return node

    def _string_method(self, method: str, subject: str, argument: str) -> str:
        if method == "startsWith":
            return f"(substr({subject}, 1, length({argument})) = {argument})"
        if method == "endsWith":
            return (
                f"(length({subject}) >= length({argument}) AND"
                f" substr({subject}, length({subject}) - length({argument}) + 1) = {argument})"
            )
        finder = "strpos" if self.dialect == "postgresql" else "instr"
        return f"({finder}({subject}, {argument}) > 0)"

    def primary(self) -> _Node:
        kind, value = self.tokens.take()
        if kind == "number":
            number = float(value.rstrip("u"))
            return _Node(f"CAST({number!r} AS DOUBLE PRECISION)")
        at = self.tokens.at - 1
        if kind == "string":
            if "\\" in value:
                raise self.tokens.fail("escaped characters in strings are not evaluated set-based")
            return _Node(self._param(value[1:-1]), text=True)
        if kind == "name":
            if value in ("true", "false"):
                return _Node("(1 = 1)" if value == "true" else "(1 = 0)")
            if self._is("("):
                if value != "double":
                    raise self.tokens.fail(f"'{value}(...)' is not evaluated set-based")
                self.tokens.take()
                inner = self.expression()
                self.tokens.expect(")")
                if inner.text:
                    raise self.tokens.fail("double() of a string is not evaluated set-based", at)
                return inner
            if value not in self.names:
                raise self.tokens.fail(f"unknown name {value!r}")
            return _Node(self.column(value), text=value == "area")
        if kind == "op" and value == "(":
            inner = self.expression()
            self.tokens.expect(")")
            return _Node(f"({inner.sql})", inner.text)
        raise self.tokens.fail(f"{value or 'the end'!r} is not evaluated set-based")


def translate(
    source: str,
    columns: Mapping[str, str],
    dialect: str,
    prefix: str = "c",
) -> Translation:
    """``source`` (a checked CEL condition) as SQL; ``columns`` maps each name it may read
    (variables, ``score``, ``area``) to a SQL column. Raises ``Untranslatable`` naming the
    line and column of what it cannot write."""
    return _translate(source, columns, dialect, prefix, number=False)


def translate_formula(
    source: str,
    columns: Mapping[str, str],
    dialect: str,
    prefix: str = "f",
) -> Translation:
    """A model's checked CEL formula as a SQL number over ``columns`` (each variable's
    resolved value); raises ``Untranslatable`` as ``translate`` does."""
    return _translate(source, columns, dialect, prefix, number=True)


def _translate(
    source: str, columns: Mapping[str, str], dialect: str, prefix: str, *, number: bool
) -> Translation:
    try:
        translator = _Translator(_tokenize(source), columns, dialect, prefix)
        node = translator.expression()
        if translator.tokens.peek()[0] != "end":
            value = translator.tokens.peek()[1]
            raise translator.tokens.fail(
                f"{value!r} is not evaluated set-based", translator.tokens.at
            )
        if number and node.text:
            raise Untranslatable("the formula gives a string, not a number", 0)
    except Untranslatable as exc:
        raise exc.place(source) from None
    return Translation(node.sql, translator.params)
