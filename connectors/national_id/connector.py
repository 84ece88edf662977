"""The national ID connector: MOSIP-like verification and eKYC over SOAP, on demand.

A lookup connector: registry staff (or a workflow) ask "is this person who they say they
are?" (``verify``) or "what does the authority hold for this ID?" (``get_person``). The answer
goes back to the caller *and* is published raw to ``sr.inbound`` (``national_id.verification``,
``national_id.person``), so the ingest records ``person.verified`` /
``person.verification_failed`` through the registry like any other partner fact.

One zeep client per connector instance, built on first use and then reused (building it
parses the WSDL); every call runs under the connector's resilience (per-attempt timeout passed
to zeep, retries of transient failures, circuit breaker, rate limit).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import requests
from zeep.helpers import serialize_object

from connectors.base import (
    ConnectorContext,
    Deadline,
    LookupConnector,
    PublishFailed,
    RecordType,
    connector_settings_schema,
)
from connectors.base.errors import safe_reason
from connectors.national_id.answers import (
    NationalIdAnswer,
    PersonAnswer,
    VerificationAnswer,
    error_codes_of,
    json_safe,
)
from connectors.national_id.ids import national_id_problem, normalised_national_id
from connectors.national_id.soap import build_client, translate

log = logging.getLogger(__name__)

URL = {"type": "string", "pattern": "^https?://", "maxLength": 2000}
SETTINGS_SCHEMA = connector_settings_schema(
    {
        "url": URL,  # the authority's base URL (written by the sandbox; informative)
        "wsdl_url": URL,
        "endpoint_url": URL,  # overrides the address written in the WSDL
        "username": {"type": "string", "minLength": 1, "maxLength": 200},
        "password": {"type": "string", "minLength": 1, "maxLength": 500},
        "wsdl_timeout_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 120,
            "default": 10,
        },
        "publish_person_records": {"type": "boolean", "default": True},
    },
    required=("wsdl_url", "username", "password"),
)

# Canonical demographic names -> the authority's element names.
DEMOGRAPHICS = {
    "name": "name",
    "birth_date": "dob",
    "sex": "gender",
    "phone": "phone",
    "address": "address",
}


class InvalidRequest(ValueError):
    """The caller's request cannot be sent (bad ID, unknown demographic); says why."""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _partner_demographics(given: Mapping[str, Any]) -> dict[str, Any]:
    """The authority's ``demographics`` element from canonical names."""
    values = dict(given)
    if "name" not in values and ("given_name" in values or "family_name" in values):
        parts = [values.pop("given_name", None), values.pop("family_name", None)]
        values["name"] = " ".join(str(p) for p in parts if p)
    values.pop("given_name", None)
    values.pop("family_name", None)
    unknown = sorted(set(values) - set(DEMOGRAPHICS))
    if unknown:
        raise InvalidRequest(
            f"unknown demographic field(s) {', '.join(unknown)}; "
            f"use {', '.join([*DEMOGRAPHICS, 'given_name', 'family_name'])}"
        )
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value in (None, ""):
            continue
        if name == "birth_date" and not isinstance(value, date):
            try:
                value = date.fromisoformat(str(value)[:10])
            except ValueError:
                raise InvalidRequest("birth_date must be YYYY-MM-DD") from None
        out[DEMOGRAPHICS[name]] = value if name == "birth_date" else str(value)[:200]
    if not out:
        raise InvalidRequest("give at least one demographic field to verify against")
    return out


class NationalIdConnector(LookupConnector):
    name = "national_id"
    kind = "national_id"
    settings_schema: ClassVar[dict[str, Any]] = SETTINGS_SCHEMA
    # Answers to our own questions, published raw (zeep's serialised object, JSON-safe).
    record_types: ClassVar[Mapping[str, RecordType]] = {
        "verification": RecordType("national_id_verification", "json", "verification"),
        "person": RecordType("national_id_person", "json", "identity", "person"),
    }

    def __init__(
        self,
        settings: Mapping[str, Any],
        context: ConnectorContext,
        *,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(settings, context)
        self._session = session or requests.Session()
        self._lock = threading.Lock()
        self._client: Any = None
        self._transport: Any = None
        self._service: Any = None

    # --- identifiers ---------------------------------------------------------------------------

    def id_problem(self, national_id: object, id_type: str = "UIN") -> str | None:
        """Why ``national_id`` is not a well-formed UIN/VID under the country profile (the
        context's), or None; the reason names the rule, never the number."""
        return national_id_problem(national_id, id_type, self.context.identifiers)

    def checked_id(self, national_id: object, id_type: str = "UIN") -> str:
        """The number as the profile writes it (what the authority is sent), or
        ``InvalidRequest`` before any call."""
        problem = self.id_problem(national_id, id_type)
        if problem:
            raise InvalidRequest(problem)
        assert isinstance(national_id, str)  # the profile refuses anything else
        return normalised_national_id(national_id, id_type, self.context.identifiers)

    # --- the client, built once ---------------------------------------------------------------

    def _ensure_service(self, deadline: Deadline | None) -> Any:
        """The bound zeep service; the WSDL is fetched and parsed only the first time."""
        if self._service is not None:
            return self._service
        with self._lock:
            if self._service is None:

                def load(timeout: float) -> tuple[Any, Any, Any]:
                    return build_client(
                        self.settings["wsdl_url"],
                        self.settings["username"],
                        self.settings["password"],
                        session=self._session,
                        load_timeout=min(timeout, float(self.settings["wsdl_timeout_seconds"])),
                        operation_timeout=self.resilience.timeout,
                        endpoint_url=self.settings.get("endpoint_url"),
                    )

                client, transport, service = self.resilience.call(
                    load, operation="GET wsdl", deadline=deadline
                )
                self._client, self._transport = client, transport
                self._service = service
                log.info("%s: service description loaded", self.instance_name)
        return self._service

    @property
    def loaded(self) -> bool:
        return self._service is not None

    def _call(self, operation: str, deadline: Deadline | None, **arguments: Any) -> Any:
        service = self._ensure_service(deadline)
        method = getattr(service, operation)

        def attempt(timeout: float) -> Any:
            with self._transport.call_timeout(timeout):
                try:
                    return method(**arguments)
                except Exception as error:  # converted where it enters
                    raise translate(error, operation) from None

        return self.resilience.call(attempt, operation=operation, deadline=deadline)

    # --- operations ---------------------------------------------------------------------------

    def verify(
        self,
        national_id: str,
        demographics: Mapping[str, Any],
        consent: bool,
        *,
        person_id: str | None = None,
        id_type: str = "UIN",
        deadline: Deadline | None = None,
    ) -> VerificationAnswer:
        """Yes/no demographic authentication of ``national_id``.

        ``person_id`` is the registry person the check is about; it travels with the raw
        record (header ``person_id``) so the ingest can record the verification on that
        person. Raises ``NotFoundError`` for an ID the authority does not know,
        ``CredentialsRejected`` for refused credentials, other ``PartnerError``s or
        ``NotAttempted`` as the base resilience decides, ``InvalidRequest`` before any call.
        """
        national_id = self.checked_id(national_id, id_type)
        partner_demographics = _partner_demographics(demographics)
        transaction_id = uuid.uuid4().hex
        started = time.monotonic()
        answer = self._call(
            "VerifyIdentity",
            deadline,
            transactionID=transaction_id,
            individualId=national_id,
            individualIdType=id_type,
            consentObtained=bool(consent),
            requestTime=_now(),
            demographics=partner_demographics,
        )
        payload = json_safe(serialize_object(answer, dict))
        headers = {"national_id": national_id, "individual_id_type": id_type}
        if person_id:
            headers["person_id"] = str(person_id)
        published = self._publish("verification", payload, transaction_id, headers)
        return VerificationAnswer(
            operation="VerifyIdentity",
            transaction_id=transaction_id,
            payload=payload,
            elapsed_ms=(time.monotonic() - started) * 1000,
            error_codes=error_codes_of(payload),
            **published,
        )

    def get_person(
        self,
        national_id: str,
        *,
        consent: bool = True,
        id_type: str = "UIN",
        person_id: str | None = None,
        publish: bool | None = None,
        deadline: Deadline | None = None,
    ) -> PersonAnswer:
        """eKYC: the authority's identity record of ``national_id`` (needs consent).

        Without consent the authority answers ``kycStatus`` false and no identity. The answer
        is published as ``national_id.person`` unless ``publish`` (default: the
        ``publish_person_records`` setting) is false.
        """
        national_id = self.checked_id(national_id, id_type)
        transaction_id = uuid.uuid4().hex
        started = time.monotonic()
        answer = self._call(
            "GetPerson",
            deadline,
            transactionID=transaction_id,
            individualId=national_id,
            individualIdType=id_type,
            consentObtained=bool(consent),
            requestTime=_now(),
        )
        payload = json_safe(serialize_object(answer, dict))
        published: dict[str, Any] = {}
        if publish if publish is not None else self.settings["publish_person_records"]:
            headers = {"national_id": national_id, "individual_id_type": id_type}
            if person_id:
                headers["person_id"] = str(person_id)
            published = self._publish("person", payload, transaction_id, headers)
        return PersonAnswer(
            operation="GetPerson",
            transaction_id=transaction_id,
            payload=payload,
            elapsed_ms=(time.monotonic() - started) * 1000,
            error_codes=error_codes_of(payload),
            **published,
        )

    def lookup(self, request: Any, deadline: Deadline) -> NationalIdAnswer:
        """``{"operation": "verify" | "get_person", "national_id", ...}`` (see the methods)."""
        if not isinstance(request, Mapping):
            raise InvalidRequest("a national ID lookup is a mapping with an 'operation'")
        operation = request.get("operation")
        if operation == "verify":
            return self.verify(
                request.get("national_id", ""),
                request.get("demographics") or {},
                bool(request.get("consent", False)),
                person_id=request.get("person_id"),
                id_type=request.get("id_type", "UIN"),
                deadline=deadline,
            )
        if operation == "get_person":
            return self.get_person(
                request.get("national_id", ""),
                consent=bool(request.get("consent", True)),
                id_type=request.get("id_type", "UIN"),
                person_id=request.get("person_id"),
                deadline=deadline,
            )
        raise InvalidRequest("operation must be 'verify' or 'get_person'")

    # --- raw records --------------------------------------------------------------------------

    def _publish(
        self,
        record_type: str,
        payload: dict[str, Any],
        transaction_id: str,
        headers: dict[str, str],
    ) -> dict[str, Any]:
        """Publish the answer raw; a failure is reported on the answer, not raised: the
        caller still gets what the authority said."""
        try:
            message_id = self.context.publish_raw(
                record_type,
                payload,
                source_id=f"{record_type}:{transaction_id}",
                headers=headers,
            )
        except PublishFailed as failure:
            log.warning("%s: %s", self.instance_name, safe_reason(failure))
            return {"message_id": None, "publish_error": safe_reason(failure)}
        return {"message_id": message_id, "publish_error": None}

    def close(self) -> None:
        self._session.close()
