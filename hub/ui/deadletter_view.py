"""The dead-letter browser's view of ``sr.dead.letters``: groups by error class, and pages.

``hub.deadletters`` reads the queue by taking each message and putting it back, so one look
costs one pass over the queue. The browser therefore scans at most ``SCAN_LIMIT`` letters per
page view, groups them in Python and says so on the page when the queue holds more; the total
depth comes from the broker's counter, which is exact and cheap. A healthy hub has few dead
letters; a hub with millions has a problem that bulk replay/discard by error class (which does
not need the listing) addresses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.deadletters import DeadLetter, discard, list_dead_letters, replay, select

SCAN_LIMIT = 2000
PAGE_SIZE = 50
BULK_LIMIT = 10_000


@dataclass
class Group:
    error_class: str
    count: int = 0
    first_failure: str = ""
    last_failure: str = ""
    example_reason: str = ""
    routing_keys: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Listing:
    depth: int  # every dead letter in the queue
    scanned: int  # how many of them this listing looked at
    groups: list[Group]
    letters: list[DeadLetter]  # one page of the selected group (or of all)
    next_after: str | None


def group(letters: Sequence[DeadLetter]) -> list[Group]:
    """Groups by error class, the largest first; times are ISO strings, so they sort."""
    groups: dict[str, Group] = {}
    for letter in letters:
        key = letter.error_class or "(none)"
        found = groups.setdefault(key, Group(key))
        found.count += 1
        if letter.first_failure and (
            not found.first_failure or letter.first_failure < found.first_failure
        ):
            found.first_failure = letter.first_failure
        if letter.last_failure and letter.last_failure >= found.last_failure:
            found.last_failure = letter.last_failure
            found.example_reason = letter.reason[:300]
        if len(found.routing_keys) < 5:
            found.routing_keys.add(letter.routing_key)
    return sorted(groups.values(), key=lambda g: (-g.count, g.error_class))


def listing(
    broker: Any,
    *,
    error_class: str | None = None,
    routing_prefix: str | None = None,
    after: str | None = None,
    size: int = PAGE_SIZE,
) -> Listing:
    """One look at the queue: its depth, the groups and one page of letters.

    Pages follow the queue's order and continue after message id ``after``.
    """
    from hub.broker.base import QUEUE_DEAD

    depth = int(broker.queue_depth(QUEUE_DEAD))
    letters = list_dead_letters(broker, limit=SCAN_LIMIT, wait=0.5) if depth else []
    if routing_prefix:
        letters = [x for x in letters if x.routing_key.startswith(routing_prefix)]
    chosen = [
        x for x in letters if error_class is None or (x.error_class or "(none)") == error_class
    ]
    start = 0
    if after:
        ids = [x.message_id for x in chosen]
        start = ids.index(after) + 1 if after in ids else 0
    page = chosen[start : start + size]
    more = start + size < len(chosen)
    return Listing(
        depth=depth,
        scanned=len(letters),
        groups=group(letters),
        letters=page,
        next_after=page[-1].message_id if more and page else None,
    )


def _selector(message_ids: Sequence[str], error_class: str | None) -> Any:
    if not message_ids and error_class is None:
        raise ValueError("choose dead letters by id or by error class")
    # "(none)" is how the page names letters without an error class
    return select(
        message_ids=message_ids,
        error_class="" if error_class == "(none)" else error_class,
    )


def replay_letters(broker: Any, message_ids: Sequence[str], error_class: str | None) -> int:
    return len(replay(broker, _selector(message_ids, error_class), BULK_LIMIT).selected)


def discard_letters(broker: Any, message_ids: Sequence[str], error_class: str | None) -> int:
    return len(discard(broker, _selector(message_ids, error_class), BULK_LIMIT).selected)
