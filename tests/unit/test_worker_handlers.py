"""Handler look-up by routing key: exact keys, AMQP-style topic patterns, precedence; the one
topic matcher; how errors are classed."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from hub.broker.topic import matches
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


# A grid of patterns and keys with the edge cases that matter: "#" at either end or in the
# middle (zero words too), "*" (exactly one word), empty words, the empty key.
GRID_PATTERNS = ["#", "*", "a", "a.*", "a.#", "#.a", "*.a", "a.*.c", "a.#.c", "#.b.#", "*.*", "#.*"]
GRID_KEYS = ["", "a", "b", "a.b", "b.a", "a.a", "a.b.c", "a.c", "a.b.b.c", "x.b.y", "a.", ".a"]


def test_handler_patterns_route_exactly_like_the_broker_on_the_whole_grid() -> None:
    """One topic matcher: a handler pattern means what the same binding means on either
    broker (``hub.broker.topic``, pinned against RabbitMQ), for all 144 pairs."""
    disagreements = []
    for pattern, key in itertools.product(GRID_PATTERNS, GRID_KEYS):
        registry = HandlerRegistry("t")
        registry.register(pattern, noop)
        if (registry.resolve(key) is not None) is not matches(pattern, key):
            disagreements.append((pattern, key))
    assert len(GRID_PATTERNS) * len(GRID_KEYS) == 144
    assert disagreements == []
    # pairs an earlier, regex-based matcher of the workers got wrong
    for pattern, key in [("#.a", "a"), ("#.b.#", "b"), ("a.#.c", "a.c")]:
        registry = HandlerRegistry("t")
        registry.register(pattern, noop)
        assert registry.resolve(key) is not None


def test_first_matching_pattern_wins_and_a_late_registration_is_seen() -> None:
    registry = HandlerRegistry("t", services="given")
    registry.register("a.#", noop)
    registry.register("#", other)
    assert registry.resolve("a.b").func is noop  # type: ignore[union-attr]
    assert registry.resolve("b").func is other  # type: ignore[union-attr]
    registry.register("b", noop)  # after a look-up was cached
    assert registry.resolve("b").func is noop  # type: ignore[union-attr]
    assert registry.services == "given"


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
