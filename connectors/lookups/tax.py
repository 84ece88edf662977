"""Tax authority look-up: the income returns the authority holds for one national ID.

``POST <api_url>/taxpayers/lookup {"national_id"}`` (the tax mock's read-only endpoint; a POST
so the ID never sits in a URL that proxies and access logs keep). The answer is the authority's
own vocabulary: taxpayer records and returns as rows with the extract's column names, which the
``tax_income_row`` mapping reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from connectors.base import Connector, Deadline, PartnerHttpClient, ResilientCaller
from connectors.base.errors import PartnerProtocolError, PartnerRejected, PermanentPartnerError


class TaxpayerNotFound(PermanentPartnerError):
    """The tax authority has no taxpayer with this national ID."""


class TaxpayerLookup:
    def __init__(
        self,
        settings: Mapping[str, Any],
        caller: ResilientCaller,
        *,
        session: requests.Session | None = None,
    ) -> None:
        base = settings.get("api_url") or settings.get("url") or settings.get("base_url")
        if not base:
            raise ValueError("tax settings need api_url (the tax authority's API base URL)")
        self.http = PartnerHttpClient(str(base), caller, session=session)

    @classmethod
    def from_connector(cls, connector: Connector) -> TaxpayerLookup:
        return cls(connector.settings, connector.resilience)

    def find(self, national_id: str, deadline: Deadline | None = None) -> dict[str, Any]:
        """``{"national_id", "taxpayers": [...], "returns": [row, ...]}``; only this person's."""
        operation = "POST /taxpayers/lookup"
        try:
            answer = self.http.post_json(
                "taxpayers/lookup",
                json={"national_id": national_id},
                deadline=deadline,
                operation=operation,
            )
        except PartnerRejected as error:
            if error.status == 404:
                raise TaxpayerNotFound(
                    "tax", operation, "not_found", "no taxpayer with this national ID"
                ) from None
            raise
        if not isinstance(answer, dict) or not isinstance(answer.get("returns"), list):
            raise PartnerProtocolError("tax", operation, "bad_answer", "no 'returns' list")
        returns = [
            r
            for r in answer["returns"]
            if isinstance(r, Mapping) and str(r.get("NATIONAL_ID", "")).strip() == national_id
        ]
        taxpayers = [
            t
            for t in answer.get("taxpayers") or []
            if isinstance(t, Mapping) and str(t.get("national_id", "")).strip() == national_id
        ]
        if not returns and not taxpayers:
            raise TaxpayerNotFound(
                "tax", operation, "not_found", "no taxpayer with this national ID"
            )
        return {"national_id": national_id, "taxpayers": taxpayers, "returns": returns}
