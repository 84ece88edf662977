"""Topic-exchange pattern matching, written once so the embedded queue routes exactly like
RabbitMQ does.

Routing keys and binding patterns are lists of words separated by ``.``. In a pattern ``*``
stands for exactly one word and ``#`` for zero or more words. As in RabbitMQ, an empty word is
still a word (``"a..b"`` has three) but the empty key has none, and a pattern without
wildcards matches only itself. The unit tests pin these rules; they were checked against
RabbitMQ 3.10.
"""

from __future__ import annotations

from functools import lru_cache

MAX_KEY_LENGTH = 255  # AMQP short-string limit; both backends refuse longer keys


class InvalidRoutingKey(ValueError):
    """A routing key or binding pattern that no backend can route on."""


def validate_routing_key(key: str) -> str:
    """Return ``key`` if it is usable as a routing key; otherwise raise ``InvalidRoutingKey``.

    Wildcards in a *published* key would match differently on the two backends (RabbitMQ treats
    them as literal words), so they are refused instead of silently mis-routed.
    """
    if not isinstance(key, str):
        raise InvalidRoutingKey(f"routing key must be a string, not {type(key).__name__}")
    if len(key.encode("utf-8")) > MAX_KEY_LENGTH:
        raise InvalidRoutingKey(f"routing key is longer than {MAX_KEY_LENGTH} bytes")
    if any(word in ("*", "#") for word in key.split(".")):
        raise InvalidRoutingKey(f"routing key {key!r} contains a wildcard word; only bindings may")
    return key


def validate_pattern(pattern: str) -> str:
    """Return ``pattern`` if usable as a binding pattern; otherwise raise ``InvalidRoutingKey``."""
    if not isinstance(pattern, str):
        raise InvalidRoutingKey(f"binding pattern must be a string, not {type(pattern).__name__}")
    if len(pattern.encode("utf-8")) > MAX_KEY_LENGTH:
        raise InvalidRoutingKey(f"binding pattern is longer than {MAX_KEY_LENGTH} bytes")
    return pattern


@lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    # RabbitMQ reads the empty key as no words at all ("*" does not match it), while a
    # trailing or doubled dot makes an empty word ("person." matches "person.*").
    return tuple(text.split(".")) if text else ()


def matches(pattern: str, routing_key: str) -> bool:
    """True when ``routing_key`` matches the topic binding ``pattern``."""
    return _match(_words(pattern), _words(routing_key))


@lru_cache(maxsize=65536)
def _match(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    # Iterative two-pointer match with backtracking to the last '#', the classic glob
    # algorithm over words: linear in practice, never exponential.
    p = k = 0
    star_p = -1  # index in pattern of the last '#' seen
    star_k = 0  # key position that '#' is currently assumed to extend to
    while k < len(key):
        if p < len(pattern) and pattern[p] == "#":
            star_p, star_k = p, k
            p += 1
        elif p < len(pattern) and (pattern[p] == "*" or pattern[p] == key[k]):
            p += 1
            k += 1
        elif star_p >= 0:
            # Let the last '#' swallow one more word and retry from there.
            star_k += 1
            k = star_k
            p = star_p + 1
        else:
            return False
    while p < len(pattern) and pattern[p] == "#":
        p += 1
    return p == len(pattern)


def route(routing_key: str, bindings: list[tuple[str, str]]) -> set[str]:
    """The queues whose binding pattern matches: ``bindings`` is ``[(queue, pattern), ...]``."""
    return {queue for queue, pattern in bindings if matches(pattern, routing_key)}
