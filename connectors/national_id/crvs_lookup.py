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
from connectors.base.errors import PartnerProtocolError, PermanentPartnerError
from standards.dci.envelope import new_id, request_header, timestamp
from standards.dci.signature import sign_envelope

REG_TYPE = "ns:org:RegistryType:Civil"
SENDER_ID = "social-registry-hub"  # the civil-registry connector's default sender_id
LOCALE = "eng"


class CivilRegistryNotFound(PermanentPartnerError):
    """The civil registry holds no record with this UIN."""


def _has_uin(record: Any, uin: str) -> bool:
    if not isinstance(record, Mapping):
        return False
    identifiers = record.get("identifier") or []
    if isinstance(identifiers, Mapping):
        identifiers = [identifiers]
    return any(
        isinstance(i, Mapping)
        and str(i.get("identifier_type", "")).upper() == "UIN"
        and str(i.get("identifier_value", "")).strip() == uin
        for i in identifiers
    )


class CivilRegistryUinLookup:
    """``find(uin)``: the DCI person records of the civil registry carrying that UIN."""

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
        self.sender_id = sender_id or str(settings.get("sender_id") or SENDER_ID)
        self.signing_key = signing_key
        self.locale = str(settings.get("dci_locale") or LOCALE)
        self.reg_type = str(settings.get("dci_registry_type") or REG_TYPE)
        self.receiver_id = str(settings.get("registry_id") or "civil-registry")
        self.http = PartnerHttpClient(str(base), caller, session=session, headers=headers)

    @classmethod
    def from_connector(cls, connector: Connector) -> CivilRegistryUinLookup:
        return cls(
            connector.settings, connector.resilience, signing_key=connector.context.signing_key
        )

    def search_body(self, uin: str) -> dict[str, Any]:
        header = request_header("search", sender_id=self.sender_id, receiver_id=self.receiver_id)
        message = {
            "transaction_id": new_id(),
            "search_request": [
                {
                    "reference_id": new_id(),
                    "timestamp": timestamp(),
                    "search_criteria": {
                        "version": "1.0.0",
                        "reg_type": self.reg_type,
                        "query_type": "idtype-value",
                        "query": {"type": "UIN", "value": uin},
                        "pagination": {"page_size": 20, "page_number": 1},
                    },
                    "locale": self.locale,
                }
            ],
        }
        body: dict[str, Any] = {"header": header, "message": message}
        if self.signing_key is not None:
            body["signature"] = sign_envelope(
                header,
                message,
                self.signing_key.private_key,
                sender_id=self.sender_id,
                key_id=self.signing_key.key_id,
            )
        return body

    def find(self, uin: str, deadline: Deadline | None = None) -> list[dict[str, Any]]:
        """The records with this UIN; ``CivilRegistryNotFound`` when there are none.

        A fresh ``message_id`` per attempt would be needed if the registry refused replays of
        a retried message; the body is therefore built inside each attempt.
        """
        operation = "POST /registry/sync/search"

        def attempt(timeout: float) -> Any:
            url = self.http.url("sync/search")
            response = self.http.send_once(
                "POST", url, timeout=timeout, operation=operation, json=self.search_body(uin)
            )
            return self.http.json_of(response, operation)

        answer = self.http.caller.call(attempt, operation=operation, deadline=deadline)
        return self._records(answer, uin, operation)

    def _records(self, answer: Any, uin: str, operation: str) -> list[dict[str, Any]]:
        try:
            items = answer["message"]["search_response"]
        except (KeyError, TypeError):
            raise PartnerProtocolError(
                "civil_registry", operation, "bad_answer", "no message.search_response"
            ) from None
        records: list[dict[str, Any]] = []
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, Mapping):
                continue
            if item.get("status") == "rjct":
                code = str(item.get("status_reason_code") or "rjct")[:80]
                raise PermanentPartnerError(
                    "civil_registry", operation, code, "the civil registry rejected the search"
                )
            data = item.get("data") or {}
            found = data.get("reg_records") if isinstance(data, Mapping) else None
            if isinstance(found, Mapping):
                found = [found]
            records.extend(dict(r) for r in found or [] if _has_uin(r, uin))
        if not records:
            raise CivilRegistryNotFound(
                "civil_registry",
                operation,
                "not_found",
                "no civil registry record carries this UIN",
            )
        return records
