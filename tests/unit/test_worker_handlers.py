"""Handler look-up by routing key: exact keys, AMQP-style topic patterns, precedence."""

from __future__ import annotations

from typing import Any

import pytest

from hub.workers.errors import PermanentError, TransientError, is_transient
from hub.workers.handlers import HandlerRegistry


def noop(_event: dict[str, Any], _ctx: Any) -> None:
    return None


def other(_event: dict[str, Any], _ctx: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("person.*", "person.died", True),
        ("person.*", "person.died.late", False),
        ("*.died", "person.died", True),
        ("person.#", "person", True),
        ("person.#", "person.a.b", True),
        ("#", "anything.at.all", True),
        ("civil.#.death", "civil.death", True),
        ("civil.#.death", "civil.a.b.death", True),
        ("civil.#.death", "civil.a.birth", False),
        ("household.member_added", "household.member_added", True),
        ("household.member_added", "household.member_removed", False),
    ],
)
def test_topic_patterns(pattern: str, key: str, matches: bool) -> None:
    registry = HandlerRegistry("t")
    registry.register(pattern, noop)
    assert (registry.resolve(key) is not None) is matches


def test_exact_key_wins_and_unregister_and_decorator() -> None:
    registry = HandlerRegistry("t")
    registry.register("person.#", noop)

    @registry.handler("person.died", transactional=False)
    def died(_event: dict[str, Any], _ctx: Any) -> None:
        return None

    spec = registry.resolve("person.died")
    assert spec is not None and spec.func is died and not spec.transactional
    resolved = registry.resolve("person.born")
    assert resolved is not None and resolved.func is noop
    registry.register("person.#", other)  # re-registering a pattern replaces it
    resolved = registry.resolve("person.born")
    assert resolved is not None and resolved.func is other
    registry.unregister("person.died")
    assert registry.resolve("person.died").func is other  # type: ignore[union-attr]
    assert registry.routing_keys() == ["person.#"]
    assert registry.resolve("household.created") is None


def test_error_classification() -> None:
    assert is_transient(TransientError("busy"))
    assert is_transient(ConnectionError("refused"))
    assert is_transient(TimeoutError())
    assert not is_transient(PermanentError("bad"))
    assert not is_transient(ValueError("bad"))
    error = PermanentError("household_size must be a number", error_class="MappingError")
    assert (error.error_class, error.reason) == ("MappingError", "household_size must be a number")
    assert PermanentError("x").error_class == "PermanentError"
