"""The values that cross the connector contract: record types, raw records, poll results,
file reports.

They are plain frozen dataclasses with no behaviour, so connectors, runners, the hub and tests
can build and compare them without importing any transport.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mappings.spec_names import spec_name_problem

# A record type becomes the last word of the routing key ``<connector>.<record_type>``.
RECORD_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CONNECTOR_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# The names a record type declaration uses: an extractor or applier of the hub, a subject key.
HUB_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

Payload = bytes | Mapping[str, Any]


def check_record_type(record_type: str) -> str:
    if not isinstance(record_type, str) or not RECORD_TYPE_RE.match(record_type):
        raise ValueError(
            f"record type {record_type!r} must be lower-case snake_case (a-z, 0-9, _), "
            "starting with a letter: it becomes a routing-key word"
        )
    return record_type


@dataclass(frozen=True)
class RecordType:
    """What the hub does with one record type a connector publishes: a declaration, not code.

    A connector class lists its record types (``Connector.record_types``, keyed by the record
    type, the last word of the routing key); every configured instance of that connector gets
    the same ones, so two tax authorities, or a ministry's own plugin, ingest without any
    change to the hub. Connectors never import the registry: they name the hub's parts.

    - ``spec``: the mapping spec that turns the payload into a canonical inbound record: a
      built-in name (``"tax_income_row"``) or a file in the plugin's own package
      (``"ministry_land.specs:parcel.toml"``, read with ``importlib.resources``).
    - ``extract``: how the hub takes the payload out of the envelope (``json``,
      ``fhir_bundle``, ``xml_or_json``; see docs/connectors.md, "Adding a partner").
    - ``apply``: which of the hub's registry appliers takes the mapped record (``birth``,
      ``death``, ``income``, ``person_attributes``, ...); it decides what the spec's
      ``output_schema`` must be.
    - ``subject``: the key of the mapped record naming the person it is about (``"child"``),
      where data-quality notes are kept; None when the record is about no one person.

    Names are checked for form here; the hub refuses unknown ones when it starts, naming the
    connector instance, the record type and the names it knows.
    """

    spec: str
    extract: str
    apply: str
    subject: str | None = None

    def __post_init__(self) -> None:
        problem = spec_name_problem(self.spec)
        if problem is not None:
            raise ValueError(f"mapping spec {self.spec!r}: {problem}")
        for role in ("extract", "apply"):
            value = getattr(self, role)
            if not isinstance(value, str) or not HUB_NAME_RE.match(value):
                raise ValueError(f"{role} {value!r} must be a snake_case name of the hub's")
        if self.subject is not None and (
            not isinstance(self.subject, str) or not HUB_NAME_RE.match(self.subject)
        ):
            raise ValueError(f"subject {self.subject!r} must be a key of the mapped record")


@dataclass(frozen=True)
class RawRecord:
    """One record exactly as the partner sent it, before any mapping.

    ``payload`` is the partner's bytes (XML, a CSV line) or its decoded JSON object.
    ``source_id`` is the partner's own reference for the record (a bundle id, ``file:line``),
    kept so a record can be traced back; ``headers`` carry transport facts worth keeping
    (content type, partner sequence number). Neither is logged.

    ``content_key``, when given, replaces the payload's bytes in the stable message id. It is
    for payloads whose wrapping changes with every delivery of the same content (OpenCRVS puts
    the delivery time and the subscription's id around the same Bundle): the connector names
    what identifies the content (a digest of the Bundle), so copies share one message id and
    the ingest applies the event once, while changed content still gets a new id.
    """

    record_type: str
    payload: Payload
    source_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None  # for bytes payloads; defaults per the envelope helper
    content_key: str | None = None  # what identifies the content, instead of the payload bytes

    def __post_init__(self) -> None:
        check_record_type(self.record_type)
        if not isinstance(self.payload, bytes | Mapping):
            raise TypeError("a raw payload is bytes or a JSON object (mapping)")
        if not isinstance(self.source_id, str) or not self.source_id:
            raise ValueError("a raw record needs a non-empty source_id")
        if self.content_key is not None and (
            not isinstance(self.content_key, str) or not self.content_key
        ):
            raise ValueError("a content_key, when given, is a non-empty string")


@dataclass(frozen=True)
class PollResult:
    """What one ``poll`` fetched, and where the next one starts.

    ``next_checkpoint`` is saved only after every record here is published. ``more`` says the
    partner has further pages right now, so the runner polls again without waiting.
    """

    records: Sequence[RawRecord]
    next_checkpoint: Any
    more: bool = False


@dataclass(frozen=True)
class RowRejection:
    """A row of a file that could not be read; ``row`` is 1-based, ``reason`` names no person."""

    row: int
    reason: str


@dataclass
class FileReport:
    """The outcome of handling one dropped file that was accepted as a whole."""

    accepted: int = 0
    rejected: list[RowRejection] = field(default_factory=list)

    def reject_row(self, row: int, reason: str) -> None:
        self.rejected.append(RowRejection(row, reason))

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected_count": len(self.rejected),
            "rejected": [{"row": r.row, "reason": r.reason} for r in self.rejected],
        }
