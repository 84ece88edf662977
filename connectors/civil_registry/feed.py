"""Reading one page of the registry's "changes since" feed. No I/O.

``GET /feed?since=<cursor>&limit=N`` answers ``{"entries": [...], "next": "<cursor>",
"has_more": bool}``; each entry is ``{"id", "topic", "kind", "registration_number",
"registration_date", "bundle"}``. Two kinds of damage are told apart here, because they are
handled in opposite ways:

- a page that cannot be read as a page (no ``entries`` list, no ``next`` cursor) raises
  ``FeedPageError``: the connector reports it and keeps its checkpoint, so the page is asked
  for again and nothing behind it is skipped;
- one entry that cannot be typed (not an object, unknown topic) is *rejected with a reason*
  while the other entries of the page are published; re-reading the page would not mend it.

An entry whose Bundle is broken is still published raw: judging a Bundle is the mapping's job,
and the ingest dead-letters it with the mapping's reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.base import RawRecord
from connectors.civil_registry.settings import RECORD_TYPE_BY_TOPIC

MAX_CURSOR_LENGTH = 512
# Header telling the ingest where the Bundle sits inside the published payload.
BUNDLE_PATH_HEADER = "bundle_path"
FEED_BUNDLE_PATH = "bundle"
_KIND_TO_TOPIC = {"birth": "BIRTH_REGISTERED", "death": "DEATH_REGISTERED"}


class FeedPageError(ValueError):
    """The answer is not a feed page; ``str(error)`` says what is wrong (no personal data)."""


@dataclass(frozen=True)
class Rejection:
    """One entry refused: where it was and why, never its content."""

    source: str
    reason: str


@dataclass
class FeedPage:
    records: list[RawRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    next_cursor: str = ""
    has_more: bool = False


def topic_of_entry(entry: dict[str, Any]) -> str | None:
    """The entry's WebSub topic, from ``topic`` or else from ``kind``."""
    topic = entry.get("topic")
    if isinstance(topic, str) and topic in RECORD_TYPE_BY_TOPIC:
        return topic
    kind = entry.get("kind")
    if isinstance(kind, str):
        return _KIND_TO_TOPIC.get(kind.strip().lower())
    return None


def parse_page(body: Any, cursor: str | None) -> FeedPage:
    """Split a decoded feed answer into raw records and rejected entries."""
    if not isinstance(body, dict):
        raise FeedPageError("the feed answer is not a JSON object")
    entries = body.get("entries")
    if not isinstance(entries, list):
        raise FeedPageError("the feed answer has no 'entries' list")
    next_cursor = body.get("next")
    if not isinstance(next_cursor, str) or not 0 < len(next_cursor) <= MAX_CURSOR_LENGTH:
        raise FeedPageError("the feed answer has no usable 'next' cursor")
    has_more = body.get("has_more", False)
    if not isinstance(has_more, bool):
        raise FeedPageError("'has_more' is not true or false")
    if has_more and next_cursor == cursor:
        raise FeedPageError("the feed says it has more but its cursor did not move")
    page = FeedPage(next_cursor=next_cursor, has_more=has_more)
    for index, entry in enumerate(entries):
        where = f"feed page after {cursor or 'the start'}, entry {index + 1}"
        if not isinstance(entry, dict):
            page.rejected.append(Rejection(where, "the entry is not a JSON object"))
            continue
        topic = topic_of_entry(entry)
        if topic is None:
            page.rejected.append(
                Rejection(where, "the entry has no known topic or kind (birth / death)")
            )
            continue
        entry_id = entry.get("id")
        if isinstance(entry_id, str | int) and not isinstance(entry_id, bool) and str(entry_id):
            source_id = str(entry_id)[:256]
        else:
            source_id = f"feed:{cursor or ''}:{index + 1}"
        page.records.append(
            RawRecord(
                RECORD_TYPE_BY_TOPIC[topic],
                entry,
                source_id,
                headers={"origin": "feed", "topic": topic, BUNDLE_PATH_HEADER: FEED_BUNDLE_PATH},
            )
        )
    return page
