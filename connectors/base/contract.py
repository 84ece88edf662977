"""The plugin contract: what a connector is, what it is given, and what it must provide.

A connector is a class registered under the entry-point group ``srhub.connectors`` (so a
ministry can ship its own as a separate package) and built with its settings and a
``ConnectorContext``. It never imports the hub: everything it needs from the running system
(where raw records go, where checkpoints live, the clock, the status it reports into) comes in
through the context, as zeep's client gets its transport passed in.

Four modes, each a base class with one method to implement; a connector inherits every mode it
offers (a civil-registry connector may both pull and receive pushes):

- ``PullConnector.poll(checkpoint) -> PollResult``: fetch what is new since the checkpoint.
  ``PullRunner`` schedules it, publishes each raw record, and only then saves the checkpoint.
- ``PushConnector.blueprint() -> Blueprint``: webhook views the hub mounts under
  ``/connectors/<name>/``; each view calls ``accept_push`` with the raw body.
- ``FileConnector.handle_file(path, manifest) -> FileReport``: read one complete dropped file
  and publish its records. ``FileDropRunner`` finds the files and archives them.
- ``LookupConnector.lookup(request, deadline)``: ask the partner now, within the deadline.

Each connector class also declares the record types it publishes (``record_types``: mapping
spec, payload extractor and registry applier, by name; see ``records.RecordType``), so the hub
routes every configured instance of it without a table of its own.

Raw first: connectors publish what the partner sent, unchanged, before any mapping, so a
mapping bug never loses a record. All partner I/O goes through ``self.resilience`` (or the
``self.http`` client built on it), so timeouts, retries, the circuit breaker and the rate limit
are the same for every partner.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import requests

from connectors.base.bulk import BulkLoader
from connectors.base.checkpoints import (
    CheckpointStore,
    InMemoryCheckpointStore,
    InMemorySeenFileStore,
    SeenFileStore,
)
from connectors.base.clock import SYSTEM_CLOCK, Clock, Deadline
from connectors.base.envelope import raw_record_id
from connectors.base.errors import PublishFailed
from connectors.base.filedrop import DROP_SCHEMA, DropFolder
from connectors.base.http import PartnerHttpClient
from connectors.base.records import (
    CONNECTOR_NAME_RE,
    FileReport,
    Payload,
    PollResult,
    RawRecord,
    RecordType,
    check_record_type,
)
from connectors.base.resilience import RESILIENCE_SCHEMA, PartnerLimiters, ResilientCaller
from connectors.base.settings import validate_settings
from connectors.base.status import ConnectorStatus
from standards.identifiers import IdentifierProfile, default_profile

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class Mode(StrEnum):
    PULL = "pull"
    PUSH = "push"
    FILE = "file"
    LOOKUP = "lookup"


# (connector name, raw record) -> None; must return only once the record is durably stored
# (the hub publishes a CloudEvent to sr.inbound with publisher confirms) and raise otherwise.
RawPublisher = Callable[[str, RawRecord], None]

# One limiter pool per process unless the hub passes its own: every connector calling the same
# partner then shares one token bucket.
SHARED_LIMITERS = PartnerLimiters()


class MessageSigningKey(Protocol):
    """The hub's own ed25519 key for signing what connectors send (e.g. DCI envelopes).

    The hub holds one key (``srhub dci signing-key`` shows its public half and id); connectors
    get it through their context rather than reading the hub's files.
    """

    @property
    def private_key(self) -> Ed25519PrivateKey: ...

    @property
    def key_id(self) -> str: ...


@dataclass
class ConnectorContext:
    """Everything a connector gets from the running system, passed in by the hub (or a test).

    ``name`` is the configured connector name: the first word of its routing keys on
    ``sr.inbound`` and its key for checkpoints, seen files, status and breaker.
    """

    name: str
    publisher: RawPublisher
    checkpoints: CheckpointStore = field(default_factory=InMemoryCheckpointStore)
    seen_files: SeenFileStore = field(default_factory=InMemorySeenFileStore)
    clock: Clock = SYSTEM_CLOCK
    status: ConnectorStatus | None = None
    limiters: PartnerLimiters | None = None  # None: shared per process (per clock in tests)
    logger: logging.Logger | None = None
    signing_key: MessageSigningKey | None = None  # None: the hub gave no key; send unsigned
    # The country's identifier profile: a connector that checks identifiers before calling a
    # partner (or in a file's rows) applies the same rules as the rest of the hub.
    identifiers: IdentifierProfile = field(default_factory=default_profile)
    # The registry's bulk loader, where the hub runs connectors beside the registry (``srhub
    # run``): a file connector may hand it a large file instead of publishing every row.
    bulk_loader: BulkLoader | None = None

    def __post_init__(self) -> None:
        if not CONNECTOR_NAME_RE.match(self.name):
            raise ValueError(f"connector name {self.name!r} must be lower-case snake_case")
        if self.status is None:
            self.status = ConnectorStatus(self.name, clock=self.clock)
        if self.logger is None:
            self.logger = logging.getLogger(f"connectors.{self.name}")
        if self.limiters is None:
            self.limiters = (
                SHARED_LIMITERS if self.clock is SYSTEM_CLOCK else PartnerLimiters(self.clock)
            )

    @property
    def connector_status(self) -> ConnectorStatus:
        assert self.status is not None  # set in __post_init__
        return self.status

    def publish(self, record: RawRecord) -> str:
        """Hand one raw record to the hub; return its stable message id.

        Any failure of the publisher becomes ``PublishFailed``: the caller must then not
        advance its checkpoint, acknowledge the webhook or archive the file.
        """
        try:
            self.publisher(self.name, record)
        except Exception as exc:
            failure = PublishFailed(self.name, record.record_type, exc)
            self.connector_status.record_failure(failure)
            raise failure from exc
        self.connector_status.count("records_published")
        return raw_record_id(self.name, record)

    def publish_raw(
        self,
        record_type: str,
        payload: Payload,
        *,
        source_id: str,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        content_key: str | None = None,
    ) -> str:
        return self.publish(
            RawRecord(
                record_type, payload, source_id, dict(headers or {}), content_type, content_key
            )
        )

    def publish_many(self, records: Sequence[RawRecord]) -> int:
        """Hand several records to the hub at once; return how many.

        A publisher that has a ``publish_many(connector, records)`` method gets them in one
        call (one broker round trip with confirms instead of one per record: this is what
        makes a million-row file take minutes, not hours); any other publisher gets them one
        by one. On failure nothing tells which were stored: the caller redoes them all.
        """
        if not records:
            return 0
        many = getattr(self.publisher, "publish_many", None)
        if many is None:
            for record in records:
                self.publish(record)
            return len(records)
        try:
            many(self.name, list(records))
        except Exception as exc:
            failure = PublishFailed(self.name, records[0].record_type, exc)
            self.connector_status.record_failure(failure)
            raise failure from exc
        self.connector_status.count("records_published", len(records))
        return len(records)

    @contextmanager
    def batch(self, size: int = 500) -> Iterator[RawBatch]:
        """Collect records and publish them ``size`` at a time; the rest when the block ends.

        If the block raises, records not yet flushed are dropped (the caller is failing the
        whole unit of work, which will be redone or rejected) and the error propagates.
        """
        batch = RawBatch(self, size)
        yield batch
        batch.flush()


class RawBatch:
    """Records waiting to be published together; see ``ConnectorContext.batch``."""

    def __init__(self, context: ConnectorContext, size: int) -> None:
        if size < 1:
            raise ValueError("a batch holds at least one record")
        self._context = context
        self._size = size
        self._pending: list[RawRecord] = []
        self.published = 0

    def add(
        self,
        record_type: str,
        payload: Payload,
        *,
        source_id: str,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        self._pending.append(
            RawRecord(record_type, payload, source_id, dict(headers or {}), content_type)
        )
        if len(self._pending) >= self._size:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self._context.publish_many(pending)
        self.published += len(pending)


def connector_settings_schema(
    properties: Mapping[str, Any],
    required: tuple[str, ...] = (),
    *,
    file_drop: bool = False,
) -> dict[str, Any]:
    """A connector's settings schema with the shared blocks every connector accepts:
    ``kind`` and ``enabled`` (read by the hub), ``partner`` (the rate-limit key),
    ``resilience``, ``poll_interval_seconds``, ``poll_jitter`` and, for file connectors,
    ``drop``. Unknown settings are refused, so a typo is reported, not ignored."""
    shared: dict[str, Any] = {
        # hub-level keys of a [connectors.<name>] table, accepted so it can be passed whole
        "kind": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
        "enabled": {"type": "boolean"},
        "partner": {"type": "string", "pattern": "^[a-z][a-z0-9_.-]{0,63}$"},
        "resilience": RESILIENCE_SCHEMA,
        "poll_interval_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
        "poll_jitter": {"type": "number", "minimum": 0, "maximum": 0.9},
    }
    if file_drop:
        shared["drop"] = DROP_SCHEMA
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {**shared, **properties},
        "required": [*required, *(["drop"] if file_drop else [])],
    }


class Connector(ABC):
    """Base of every connector; subclass one or more of the mode classes below."""

    name: ClassVar[str]  # the plugin's default name (its entry-point name)
    kind: ClassVar[str]  # partner kind: national_id, civil_registry, tax, gis, programs, ...
    settings_schema: ClassVar[dict[str, Any]] = connector_settings_schema({})
    modes: ClassVar[frozenset[Mode]] = frozenset()
    # record type (last word of the routing key) -> what the hub does with it; every
    # configured instance of this connector gets them (see ``RecordType``)
    record_types: ClassVar[Mapping[str, RecordType]] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: set[Mode] = set()
        for base in cls.__mro__:
            mode = base.__dict__.get("_mode")
            if isinstance(mode, Mode):
                found.add(mode)
        cls.modes = frozenset(found)
        cls.record_types = _checked_record_types(cls)

    def __init__(self, settings: Mapping[str, Any], context: ConnectorContext) -> None:
        self.settings = validate_settings(context.name, self.settings_schema, settings)
        self.context = context
        self.status = context.connector_status
        self.log = context.logger or logging.getLogger(f"connectors.{context.name}")
        self.partner: str = str(self.settings.get("partner") or getattr(self, "kind", context.name))
        self.resilience = ResilientCaller.from_settings(
            self.partner,
            self.settings.get("resilience"),
            connector=context.name,
            status=self.status,
            limiters=context.limiters,
            clock=context.clock,
        )

    @property
    def instance_name(self) -> str:
        return self.context.name

    def http(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> PartnerHttpClient:
        """An HTTP client for this partner that runs every request through ``resilience``."""
        return PartnerHttpClient(base_url, self.resilience, session=session, headers=headers)

    def soap(
        self,
        wsdl_url: str,
        *,
        wsse: Any = None,
        session: requests.Session | None = None,
    ) -> Any:
        """A ``soap.SoapService`` for this partner (zeep; imported only by SOAP connectors)."""
        from connectors.base.soap import SoapService

        return SoapService(wsdl_url, self.resilience, wsse=wsse, session=session)

    def close(self) -> None:  # noqa: B027 - optional hook, deliberately a no-op by default
        """Release sessions and files; the hub calls it on shutdown."""

    def describe(self) -> dict[str, Any]:
        """Name, kind, modes and live status, for the hub's connector listing."""
        return {
            "name": self.instance_name,
            "plugin": getattr(self, "name", type(self).__name__),
            "kind": getattr(self, "kind", "unknown"),
            "modes": sorted(self.modes),
            "record_types": sorted(self.record_types),
            "status": self.status.snapshot(),
        }


def _checked_record_types(cls: type[Connector]) -> Mapping[str, RecordType]:
    """The class's declaration, read-only, or a ``TypeError`` naming the class and the entry at
    fault: a plugin with a malformed declaration fails when it is loaded, not at a record."""
    declared = cls.record_types
    if not isinstance(declared, Mapping):
        raise TypeError(f"{cls.__qualname__}.record_types must be a mapping of RecordType")
    for record_type, declaration in declared.items():
        try:
            check_record_type(record_type)
        except ValueError as exc:
            raise TypeError(f"{cls.__qualname__}.record_types: {exc}") from None
        if not isinstance(declaration, RecordType):
            raise TypeError(
                f"{cls.__qualname__}.record_types[{record_type!r}] must be a RecordType"
            )
    return MappingProxyType(dict(declared))


class PullConnector(Connector):
    """Fetches new records on a schedule, resuming from a saved checkpoint."""

    _mode = Mode.PULL

    @abstractmethod
    def poll(self, checkpoint: Any | None) -> PollResult:
        """Fetch the records after ``checkpoint`` (None: from the beginning or a configured
        start). Must not publish: return the records and the checkpoint that follows them.
        Raise ``TransientPartnerError``/``NotAttempted`` to be polled again later from the same
        checkpoint."""

    @property
    def poll_interval(self) -> float:
        return float(self.settings.get("poll_interval_seconds", 60.0))


class PushConnector(Connector):
    """Receives records the partner sends (webhooks)."""

    _mode = Mode.PUSH

    @abstractmethod
    def blueprint(self) -> Any:
        """A Flask ``Blueprint`` whose views the hub mounts under ``/connectors/<name>/``.

        Every view must be declared: ``webhooks.signed_webhook`` for views that check the
        partner's own signature. Answer 2xx only after ``accept_push`` returned.
        """

    def accept_push(
        self,
        record_type: str,
        payload: Payload,
        *,
        source_id: str,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        content_key: str | None = None,
    ) -> str:
        """Publish one pushed record raw; raises ``PublishFailed`` (answer 503 then).
        ``content_key``: see ``RawRecord`` (copies of one event share one message id)."""
        message_id = self.context.publish_raw(
            record_type,
            payload,
            source_id=source_id,
            headers=headers,
            content_type=content_type,
            content_key=content_key,
        )
        self.status.count("pushes_accepted")
        self.status.record_success()
        return message_id


class FileConnector(Connector):
    """Reads partner files dropped in a watched folder."""

    _mode = Mode.FILE
    settings_schema: ClassVar[dict[str, Any]] = connector_settings_schema({}, file_drop=True)

    @abstractmethod
    def handle_file(self, path: Path, manifest: Mapping[str, Any] | None) -> FileReport:
        """Publish the records of one complete file (stream it: ``filedrop.iter_lines``).

        Raise ``FileRejected(reason)`` to refuse the whole file (wrong header, wrong format,
        row count differs from the manifest); report unreadable rows in the ``FileReport``.
        """

    def drop_folder(self) -> DropFolder:
        drop = self.settings["drop"]
        return DropFolder(
            drop["folder"],
            self.instance_name,
            self.context.seen_files,
            patterns=tuple(drop.get("patterns", ("*",))),
            require_manifest=bool(drop.get("require_manifest", False)),
            clock=self.context.clock,
        )

    @property
    def poll_interval(self) -> float:
        drop = self.settings.get("drop", {})
        default = self.settings.get("poll_interval_seconds", 30.0)
        return float(drop.get("poll_interval_seconds", default))


class LookupConnector(Connector):
    """Answers on-demand questions (verify this ID, fetch this household) within a deadline."""

    _mode = Mode.LOOKUP

    @abstractmethod
    def lookup(self, request: Any, deadline: Deadline) -> Any:
        """Ask the partner; pass ``deadline`` to ``self.resilience.call`` / ``self.http``."""

    def lookup_within(self, request: Any, seconds: float) -> Any:
        """``lookup`` with a deadline of ``seconds`` from now on the connector's clock."""
        self.status.count("lookups")
        return self.lookup(request, Deadline(seconds, self.context.clock))
