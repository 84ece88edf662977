"""Civil registry look-up by national ID (UIN) over the DCI (SPDCI) synchronous search.

Used by the prefill: "what does the civil registry hold for this UIN?" is one
``POST <dci_base_url>/sync/search`` with an ``idtype-value`` query. It lives beside the national
ID connector because the civil registry's own connector (``connectors/civil_registry``) is a
feed/webhook connector; this client only needs that connector's settings (``dci_base_url``,
``dci_bearer_token``) and its resilience, so both share one circuit breaker and rate limit.

Only records that really carry the UIN asked for are returned: a partner that answers with more
than was asked must not make the hub show other people's data.

The request is the CRVS API's: the connector's configured ``sender_id``, ``locale`` in ISO
639-3, and signed with the hub's key from the connector's context (left out, never ``null``,
when there is none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from connectors.base import (
    Connector,
    Deadline,
    MessageSigningKey,
    PartnerHttpClient,
    ResilientCaller,
)
from connectors.base.clock import SYSTEM_CLOCK
from connectors.base.errors import PermanentPartnerError
from connectors.civil_registry import dci_messages as msgs
from connectors.civil_registry.dci_client import DciClient

SENDER_ID = "social-registry-hub"  # the civil-registry connector's default sender_id


class CivilRegistryNotFound(PermanentPartnerError):
    """The civil registry holds no record with this UIN."""


class CivilRegistryUinLookup:
    """``find(uin)``: the DCI person records of the civil registry carrying that UIN, asked
    through the civil-registry connector's own DCI client (one way to speak DCI)."""

    def __init__(
        self,
        settings: Mapping[str, Any],
        caller: ResilientCaller,
        *,
        session: requests.Session | None = None,
        sender_id: str | None = None,
        signing_key: MessageSigningKey | None = None,
    ) -> None:
        base = settings.get("dci_base_url")
        if not base and settings.get("base_url"):
            base = str(settings["base_url"]).rstrip("/") + "/registry"
        if not base:
            raise ValueError("civil registry settings need dci_base_url (or base_url)")
        headers = {"Content-Type": "application/json"}
        token = settings.get("dci_bearer_token")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.dci = DciClient(
            PartnerHttpClient(
                str(base).rstrip("/") + "/", caller, session=session, headers=headers
            ),
            sender_id=sender_id or str(settings.get("sender_id") or SENDER_ID),
            receiver_id=str(settings.get("registry_id") or "civil-registry"),
            clock=SYSTEM_CLOCK,
            signing_key=signing_key,
            locale=str(settings.get("dci_locale") or msgs.LOCALE),
            reg_type=str(settings.get("dci_registry_type") or msgs.CRVS_REG_TYPE),
        )

    @classmethod
    def from_connector(cls, connector: Connector) -> CivilRegistryUinLookup:
        return cls(
            connector.settings, connector.resilience, signing_key=connector.context.signing_key
        )

    def find(self, uin: str, deadline: Deadline | None = None) -> list[dict[str, Any]]:
        """The records with this UIN; ``CivilRegistryNotFound`` when there are none (a search
        the registry rejects is a ``PermanentPartnerError`` with its reason code)."""
        records = self.dci.search_by_id("UIN", uin, deadline=deadline)
        if not records:
            raise CivilRegistryNotFound(
                "civil_registry",
                "DCI search",
                "not_found",
                "no civil registry record carries this UIN",
            )
        return records
