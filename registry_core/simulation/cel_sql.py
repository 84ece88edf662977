"""A rule's CEL condition written as a SQL expression, so a simulation stays set-based.

Why: a simulation must answer over a million households in about two seconds; running the
condition per household in Python (as the eligibility decision does) costs ten times that.
Conditions are small boolean formulas over the model's variables, ``score`` and ``area``, so
the subset administrators write translates one to one:

- literals (numbers, strings, ``true``/``false``), names, parentheses;
- ``||``, ``&&``, ``!``, ``? :``, ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``, ``+``,
  ``-``, ``*``, unary ``-``, ``double(x)``;
- ``area.startsWith("R01")``, ``.endsWith(...)``, ``.contains(...)`` with a string literal.

Anything else (``/`` and ``%``, whose errors CEL and SQL report differently, macros, ``int``,
``size``) raises ``Untranslatable`` naming it: the caller refuses the simulation with that
message rather than guess. The expression has already been compiled and checked by
``expressions.compile_expression`` (the names exist, the types fit); this module only
rewrites it. Every string literal becomes a bound parameter; names are mapped to columns
the caller chose, so nothing of the text reaches the SQL unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Untranslatable(ValueError):
    """The condition uses something a set-based simulation does not evaluate."""


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
    at: int = 0

    def peek(self) -> tuple[str, str]:
        return self.items[self.at] if self.at < len(self.items) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.at += 1
        return token

    def expect(self, text: str) -> None:
        kind, value = self.take()
        if value != text or kind != "op":
            raise Untranslatable(f"expected {text!r}, found {value or 'the end'!r}")


def _tokenize(source: str) -> _Tokens:
    items: list[tuple[str, str]] = []
    position = 0
    source = source.rstrip()
    while position < len(source):
        found = _TOKEN.match(source, position)
        if found is None or found.end() == position:
            raise Untranslatable(f"cannot read the condition at character {position + 1}")
        kind = found.lastgroup or "op"
        items.append((kind, found.group(kind)))
        position = found.end()
    return _Tokens(items)


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
        column: Callable[[str], str],
        dialect: str,
        prefix: str,
    ) -> None:
        self.tokens = tokens
        self.column = column
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
            raise Untranslatable("'in' is not evaluated set-based")
        return node

    def additive(self) -> _Node:
        node = self.multiplicative()
        while self._is("+") or self._is("-"):
            _, operator = self.tokens.take()
            right = self.multiplicative()
            if node.text or right.text:
                raise Untranslatable("joining strings is not evaluated set-based")
            node = _Node(f"({node.sql} {operator} {right.sql})")
        return node

    def multiplicative(self) -> _Node:
        node = self.unary()
        while True:
            kind, value = self.tokens.peek()
            if kind == "op" and value == "*":
                self.tokens.take()
                node = _Node(f"({node.sql} * {self.unary().sql})")
            elif kind == "op" and value in ("/", "%"):
                raise Untranslatable(f"{value!r} is not evaluated set-based; multiply instead")
            else:
                return node

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
            if kind != "name" or method not in _STRING_METHODS or not node.text:
                raise Untranslatable(f"'.{method}' is not evaluated set-based")
            self.tokens.expect("(")
            argument = self.expression()
            self.tokens.expect(")")
            if not argument.text:
                raise Untranslatable(f"'.{method}' takes a string")
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
        if kind == "string":
            return _Node(self._param(_unquote(value)), text=True)
        if kind == "name":
            if value in ("true", "false"):
                return _Node("(1 = 1)" if value == "true" else "(1 = 0)")
            if self._is("("):
                if value != "double":
                    raise Untranslatable(f"'{value}(...)' is not evaluated set-based")
                self.tokens.take()
                inner = self.expression()
                self.tokens.expect(")")
                if inner.text:
                    raise Untranslatable("double() of a string is not evaluated set-based")
                return inner
            return _Node(self.column(value), text=value == "area")
        if kind == "op" and value == "(":
            inner = self.expression()
            self.tokens.expect(")")
            return _Node(f"({inner.sql})", inner.text)
        raise Untranslatable(f"{value or 'the end'!r} is not evaluated set-based")


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    if "\\" in body:
        raise Untranslatable("escaped characters in strings are not evaluated set-based")
    return body


def translate(
    source: str,
    columns: Mapping[str, str],
    dialect: str,
    prefix: str = "c",
) -> Translation:
    """``source`` (a checked CEL condition) as SQL; ``columns`` maps each name it may read
    (variables, ``score``, ``area``) to a SQL column. Raises ``Untranslatable``."""

    def column(name: str) -> str:
        if name not in columns:
            raise Untranslatable(f"unknown name {name!r}")
        return columns[name]

    translator = _Translator(_tokenize(source), column, dialect, prefix)
    node = translator.expression()
    kind, value = translator.tokens.peek()
    if kind != "end":
        raise Untranslatable(f"{value!r} is not evaluated set-based")
    return Translation(node.sql, translator.params)
