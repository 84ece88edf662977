"""Topic matching of the embedded broker: the RabbitMQ rules for ``*`` and ``#``.

The contract suite checks a sample of these against the real RabbitMQ; this table pins the
edge cases (empty words, several ``#``, backtracking) without a server.
"""

from __future__ import annotations

import pytest

from hub.broker.topic import InvalidRoutingKey, matches, route, validate_routing_key

CASES = [
    # pattern, routing key, matches?
    ("person.died", "person.died", True),
    ("person.died", "person.born", False),
    ("person.died", "person.died.late", False),
    ("*.died", "person.died", True),
    ("*.died", "died", False),
    ("*.died", "a.person.died", False),
    ("person.*", "person", False),
    ("person.*", "person.", True),  # an empty word is still a word
    ("#", "", True),
    ("#", "a.b.c", True),
    ("person.#", "person", True),
    ("person.#", "person.a.b", True),
    ("person.#", "persons.a", False),
    ("#.died", "died", True),
    ("#.died", "x.y.died", True),
    ("#.died", "x.y.died.z", False),
    ("a.#.z", "a.z", True),
    ("a.#.z", "a.b.c.z", True),
    ("a.#.z", "a.b.c.y", False),
    ("#.b.#", "b", True),
    ("#.b.#", "a.b.c", True),
    ("#.b.#", "a.c", False),
    ("*.*.#", "a", False),
    ("*.*.#", "a.b", True),
    ("#.*", "", False),  # the empty key has no words at all...
    ("*", "", False),
    ("*", ".", False),  # ...while "." has two empty ones
    ("*.*", ".", True),
    ("a.#.b.#.c", "a.x.b.y.b.z.c", True),
    ("a.#.b.#.c", "a.x.c.b", False),
    ("household.*.*", "household.member.added", True),
    ("household.*.*", "household.member", False),
]


@pytest.mark.parametrize(("pattern", "key", "expected"), CASES)
def test_matches_follows_rabbitmq_topic_rules(pattern: str, key: str, expected: bool) -> None:
    assert matches(pattern, key) is expected


def test_many_hashes_do_not_blow_up() -> None:
    pattern = ".".join(["#"] * 30 + ["z"])
    key = ".".join(["a"] * 60)
    assert matches(pattern, key) is False
    assert matches(pattern, key + ".z") is True


def test_route_returns_every_matching_queue_once() -> None:
    bindings = [("q1", "person.*"), ("q2", "#"), ("q1", "#.died"), ("q3", "household.#")]
    assert route("person.died", bindings) == {"q1", "q2"}
    assert route("household.created", bindings) == {"q2", "q3"}
    assert route("x", [("q1", "person.*")]) == set()


@pytest.mark.parametrize("key", ["person.*", "#", "a.#.b"])
def test_published_keys_may_not_contain_wildcards(key: str) -> None:
    with pytest.raises(InvalidRoutingKey, match="wildcard"):
        validate_routing_key(key)


def test_overlong_routing_key_is_refused() -> None:
    with pytest.raises(InvalidRoutingKey, match="255"):
        validate_routing_key("a" * 256)
    assert validate_routing_key("person.died") == "person.died"
