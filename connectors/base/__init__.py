"""The connector plugin contract, the runtime that drives it, and resilience in one place.

A connector class declares the record types it publishes (``RecordType``: mapping spec,
payload extractor, registry applier, by name), so the hub routes any number of its instances.

Connectors import from here (and from ``soap`` / ``testing`` when they need them); the
modules behind it are ``contract`` (the classes a
connector implements), ``runners`` (scheduled pulls and drop folders), ``resilience`` (timeout,
retry, breaker, rate limit), ``http`` (REST transport), ``soap`` (zeep transport; not
imported here, so only SOAP connectors load zeep), ``checkpoints``, ``filedrop``,
``status``, ``webhooks``, ``envelope`` (how raw records travel on ``sr.inbound``),
``registry`` (entry-point discovery), ``testing`` (fakes for connector tests). See
docs/connectors-contract.md.
"""

from connectors.base.bulk import (
    BulkLoader,
    BulkLoadResult,
    BulkLoadUnavailable,
    BulkRefusal,
    BulkRow,
)
from connectors.base.checkpoints import (
    CheckpointStore,
    InMemoryCheckpointStore,
    InMemorySeenFileStore,
)
from connectors.base.clock import Clock, Deadline, FakeClock, SystemClock
from connectors.base.contract import (
    Connector,
    ConnectorContext,
    FileConnector,
    LookupConnector,
    MessageSigningKey,
    Mode,
    PullConnector,
    PushConnector,
    connector_settings_schema,
)
from connectors.base.envelope import raw_event, raw_record_id, routing_key
from connectors.base.errors import (
    CircuitOpenError,
    ConnectorError,
    ConnectorNotFound,
    FileRejected,
    NotAttempted,
    PartnerError,
    PermanentPartnerError,
    PublishFailed,
    SettingsError,
    TransientPartnerError,
)
from connectors.base.filedrop import DropFolder, iter_lines
from connectors.base.http import PartnerHttpClient
from connectors.base.records import FileReport, PollResult, RawRecord, RecordType
from connectors.base.registry import (
    ENTRY_POINT_GROUP,
    create_connector,
    load_connector_class,
    load_connectors,
)
from connectors.base.resilience import CircuitBreaker, ResilientCaller, RetryPolicy, TokenBucket
from connectors.base.runners import FileDropRunner, PullRunner
from connectors.base.status import ConnectorStatus
from connectors.base.webhooks import signed_webhook, verify_hmac_sha256

__all__ = [
    "ENTRY_POINT_GROUP",
    "BulkLoadResult",
    "BulkLoadUnavailable",
    "BulkLoader",
    "BulkRefusal",
    "BulkRow",
    "CheckpointStore",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "Connector",
    "ConnectorContext",
    "ConnectorError",
    "ConnectorNotFound",
    "ConnectorStatus",
    "Deadline",
    "DropFolder",
    "FakeClock",
    "FileConnector",
    "FileDropRunner",
    "FileRejected",
    "FileReport",
    "InMemoryCheckpointStore",
    "InMemorySeenFileStore",
    "LookupConnector",
    "MessageSigningKey",
    "Mode",
    "NotAttempted",
    "PartnerError",
    "PartnerHttpClient",
    "PermanentPartnerError",
    "PollResult",
    "PublishFailed",
    "PullConnector",
    "PullRunner",
    "PushConnector",
    "RawRecord",
    "RecordType",
    "ResilientCaller",
    "RetryPolicy",
    "SettingsError",
    "SystemClock",
    "TokenBucket",
    "TransientPartnerError",
    "connector_settings_schema",
    "create_connector",
    "iter_lines",
    "load_connector_class",
    "load_connectors",
    "raw_event",
    "raw_record_id",
    "routing_key",
    "signed_webhook",
    "verify_hmac_sha256",
]
