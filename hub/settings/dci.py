"""Settings of the DCI Social Registry server (``settings.dci``), with defaults that suit one
machine. Example: ``SRHUB_DCI='{"registry_id": "sr.gov.example", "max_page_size": 50}'``.

Signatures are always required: there is no setting to turn them off. A sender that cannot
sign is let in one by one, by an operator (``srhub dci allow-unsigned``). Read by ``hub.dci``
and ``hub.api.dci``; described in docs/standard-apis.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from hub.settings.base import Section, SettingsError, positive


@dataclass(frozen=True)
class DciSettings(Section):
    """Limits, identity and keys of the DCI server and its callbacks."""

    name: ClassVar[str] = "dci"

    registry_id: str = "social-registry"  # our sender_id on everything we send
    receiver_id: str = ""  # when set, requests naming another receiver_id are refused
    max_batch: int = positive(10)  # search_request / subscribe_request items per message
    default_page_size: int = positive(20)
    max_page_size: int = positive(100)
    max_message_age_seconds: int = positive(600)
    max_clock_skew_seconds: int = positive(60)
    # Longest accepted signature lifetime (expires - created): a signature valid for years is a
    # credential anyone who captured the request can replay until then. The hub signs for 300 s.
    max_signature_lifetime_seconds: int = positive(3600)
    async_workers: int = positive(2)
    max_pending: int = positive(100)  # queued async jobs before answering NACK
    callback_timeout_seconds: float = positive(10.0)
    callback_attempts: int = positive(3)
    signing_key_file: str = ""  # empty: <data_dir>/dci-signing-key.pem
    score_model: str = ""  # scoring model reported as poverty_score; empty: an active one
    # How long a process trusts what it read of a sender's keys: a key an operator registers
    # or revokes takes effect within this time.
    key_cache_seconds: float = positive(5.0)
    # Sync searches record their transaction and spend the message id with PostgreSQL's
    # synchronous_commit off (their own small connection pool): the row is written, but a
    # database crash may forget the last fraction of a second of them. Registry data is never
    # written this way. False: every ledger row waits for its WAL flush (bench.api: about 8%
    # fewer searches per second on the 2-core machine).
    relaxed_search_ledger: bool = True

    @property
    def max_age(self) -> timedelta:
        return timedelta(seconds=self.max_message_age_seconds)

    @property
    def max_future(self) -> timedelta:
        return timedelta(seconds=self.max_clock_skew_seconds)

    @classmethod
    def retired(cls, key: str, value: object, where: str) -> bool:
        """``require_signatures``, the old switch: on is now the only way."""
        if key != "require_signatures":
            return False
        on = value is True or (isinstance(value, str) and value.strip().lower() == "true")
        if not on:
            raise SettingsError(
                f"{where} cannot be turned off: every DCI sender must sign. Let a sender "
                "that cannot sign in with `srhub dci allow-unsigned SENDER_ID --reason ...`"
            )
        return True
