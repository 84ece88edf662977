"""Settings of monitoring (``settings.monitoring``): the monitoring round, the message log and
its retention, the age of the other growing logs, and the alert rules and webhook.

Read by ``hub.monitoring`` (``start_monitoring``, ``AlertRules``, ``RetentionPolicy``,
``LogAges``) and ``srhub monitoring prune``; described in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section, SettingsError, non_negative, positive, ranged


@dataclass(frozen=True)
class MonitoringSettings(Section):
    """Every threshold and interval of monitoring, with the defaults a single hub needs."""

    name: ClassVar[str] = "monitoring"
    secret_fields: ClassVar[frozenset[str]] = frozenset({"alert_webhook_secret"})

    # Seconds between monitoring rounds (sample counters, health snapshot, alert rules).
    interval_seconds: float = positive(5.0)
    # Connector / subscription names whose message bodies are kept, sealed; "*" for all.
    message_log_bodies: tuple[str, ...] = ()
    # Seconds between flushes of the buffered message-log writes.
    message_log_flush_seconds: float = positive(0.5)
    # Message-log retention: rows older than this, beyond this many rows or bytes, go.
    message_log_max_age_days: float = non_negative(30.0)
    message_log_max_rows: int = non_negative(1_000_000)
    message_log_max_bytes: int = non_negative(1 << 30)
    # Seconds between retention runs in `srhub run`.
    message_log_retention_interval_seconds: float = positive(600.0)
    # Age after which DCI transactions and delivery-log rows are deleted.
    dci_transaction_max_age_days: float = positive(30.0)
    delivery_log_max_age_days: float = positive(90.0)
    # Age after which a connector's archived partner files (processed/ and rejected/ of its
    # drop folder, national IDs in clear) are deleted by the retention round.
    partner_file_archive_max_age_days: float = positive(30.0)
    # Where alert transitions are POSTed (empty: no webhook), and the HMAC key that signs them.
    alert_webhook_url: str = ""
    alert_webhook_secret: str = ""
    # error_rate: more than this share of events failed over the window, with enough events.
    alert_error_rate_threshold: float = ranged(0.5, above=0, high=1)
    alert_error_rate_window_seconds: int = positive(300)
    alert_error_rate_min_events: int = ranged(5, low=1)
    # lag: the oldest unprocessed inbound message of a connector is older than this.
    alert_lag_seconds: float = positive(600.0)
    # dead_letter_growth: more than this many dead letters within the window.
    alert_dead_letter_growth: int = ranged(10, low=1)
    alert_dead_letter_window_seconds: int = positive(300)

    def check(self, label: Callable[[str], str]) -> None:
        url = self.alert_webhook_url
        if url and not url.lower().startswith(("http://", "https://")):
            raise SettingsError(f"{label('alert_webhook_url')} must be an http:// or https:// URL")
