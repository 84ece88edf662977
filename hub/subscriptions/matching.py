"""Which subscriptions an event goes to: event-type patterns, the area filter, and the
program an eligibility decision belongs to.

Event-type patterns use the broker's topic rules (``*`` one word, ``#`` any number), so a
subscription reads like the AMQP binding an AMQP subscriber would write. The area filter is a
list of areas ``data.admin_area_code`` must lie in (area codes are a hierarchy of segments:
``R01`` contains ``R01-D02``, not ``R011``; ``registry_core.areas``); an event without an area
never passes an area filter, because guessing would send it to programs of the wrong region.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.broker.topic import matches
from registry_core.areas import within_any
from registry_core.outbox import EVENT_TYPES

SUBSCRIBABLE_EVENT_TYPES: tuple[str, ...] = EVENT_TYPES


def type_matches(patterns: Iterable[str], routing_key: str) -> bool:
    return any(matches(pattern, routing_key) for pattern in patterns)


def pattern_is_useful(pattern: str) -> bool:
    """True when ``pattern`` matches at least one event type the registry emits."""
    return any(matches(pattern, event_type) for event_type in SUBSCRIBABLE_EVENT_TYPES)


def area_matches(filters: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    prefixes = filters.get("admin_areas") or []
    if not prefixes:
        return True
    area = data.get("admin_area_code")
    if not isinstance(area, str) or not area:
        return False
    return within_any(area, prefixes)


# Events about one program's decision go to that program's subscriptions only: a program
# learns nothing of its households' standing in other programs.
PROGRAM_EVENTS = frozenset({"household.eligibility_changed"})


def program_matches(program_code: str | None, routing_key: str, data: Any) -> bool:
    """False for a program-specific event (``PROGRAM_EVENTS``) of another program."""
    if routing_key not in PROGRAM_EVENTS:
        return True
    owner = data.get("program_code") if isinstance(data, Mapping) else None
    return owner is not None and owner == program_code


def subscription_matches(
    event_types: Iterable[str], filters: Mapping[str, Any], routing_key: str, data: Any
) -> bool:
    """Type and area filters; the enrolment filter needs the database (see ``fanout``)."""
    if not type_matches(event_types, routing_key):
        return False
    return area_matches(filters, data if isinstance(data, Mapping) else {})
