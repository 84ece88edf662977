"""Test doubles for connector tests: a raw publisher that collects, and can fail on demand.

Connector tests (here and in each partner package) check what would reach ``sr.inbound``
without a broker: ``CollectingPublisher`` is passed as the context's publisher and keeps every
record. ``fail_at`` makes the n-th publish raise, to prove a connector neither advances its
checkpoint nor archives a file when the hub cannot take a record.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from connectors.base.contract import Connector, connector_settings_schema
from connectors.base.records import RawRecord


class CollectingPublisher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published: list[tuple[str, RawRecord]] = []
        self.fail_at: int | None = None  # 1-based number of the next publish that fails
        self.attempts = 0

    def __call__(self, connector: str, record: RawRecord) -> None:
        with self._lock:
            self.attempts += 1
            if self.fail_at is not None and len(self.published) + 1 == self.fail_at:
                self.fail_at = None
                raise ConnectionError("broker unreachable (simulated)")
            self.published.append((connector, record))

    def records(self, record_type: str | None = None) -> list[RawRecord]:
        with self._lock:
            return [r for _, r in self.published if record_type in (None, r.record_type)]

    def source_ids(self) -> list[str]:
        return [r.source_id for r in self.records()]


class BatchCollectingPublisher(CollectingPublisher):
    """Like ``CollectingPublisher``, and takes whole batches (``publish_many``) as the hub's
    broker publisher does; a batch containing ``fail_at`` fails whole."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []  # size of each batch received

    def publish_many(self, connector: str, records: list[RawRecord]) -> None:
        with self._lock:
            self.attempts += 1
            first = len(self.published) + 1
            if self.fail_at is not None and first <= self.fail_at < first + len(records):
                self.fail_at = None
                raise ConnectionError("broker unreachable (simulated)")
            self.published.extend((connector, record) for record in records)
            self.batches.append(len(records))


class SettingsOnlyConnector(Connector):
    """Carries a partner's settings (as the sandbox writes them, whatever the keys) and its
    resilience, for code that reads them — the prefill — in tests and benchmarks that do not
    run that partner's own connector. The shared keys are still checked."""

    name: ClassVar[str] = "settings_only"
    kind: ClassVar[str] = "settings_only"
    settings_schema: ClassVar[dict[str, Any]] = {
        **connector_settings_schema({}),
        "additionalProperties": True,
    }
