"""SOAP transport for connectors: zeep with a timeout on every call and errors mapped once.

zeep waits forever by default (``operation_timeout=None``) and raises its own exceptions; a
connector using it directly would have to get both right itself. ``SoapService`` wraps one
zeep ``Client``:

- every operation runs through the connector's ``ResilientCaller`` (retry, breaker, rate
  limit), and the HTTP call gets that attempt's timeout through ``ResilientTransport``;
- the client (which downloads and parses the WSDL) is built lazily inside a call, once, so a
  partner that is down when the hub starts is retried like any other call instead of failing
  start-up;
- errors are converted where they enter: HTTP 502/503/504/429/408 (even when the body is a
  SOAP fault) -> ``PartnerBusy`` with ``Retry-After``; connection errors and timeouts ->
  transient; any other SOAP fault -> ``PartnerFault`` (permanent) carrying the fault code and
  the zeep fault itself for its structured ``detail``; unparseable or unsafe XML ->
  ``PartnerProtocolError``. Fault *messages* are not copied into our errors: they may echo the
  request's personal data.
- XML is parsed with DTDs and entities forbidden.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
from zeep import Client, Settings
from zeep import exceptions as zeep_errors
from zeep.transports import Transport

from connectors.base.clock import Deadline
from connectors.base.errors import (
    PartnerBusy,
    PartnerConnectionError,
    PartnerProtocolError,
    PartnerRejected,
    PartnerTimeout,
    PermanentPartnerError,
)
from connectors.base.http import TRANSIENT_STATUSES, parse_retry_after
from connectors.base.resilience import ResilientCaller
from connectors.base.watchdog import total_deadline, watch_session

# DTDs and entities refused. External references stay allowed: a WSDL importing its own XSD by
# URL is normal (the national-ID mock does), and those loads go through our transport.
SAFE_SETTINGS = Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=False)


class PartnerFault(PermanentPartnerError):
    """The partner answered with a SOAP fault (not an outage status).

    ``fault_code`` is e.g. ``soap:Client``; ``fault`` is zeep's ``Fault`` so a connector can
    read structured codes from ``fault.detail``. Neither the fault message nor the detail is
    part of ``str(error)``.
    """

    def __init__(self, partner: str, operation: str, fault: zeep_errors.Fault) -> None:
        code = str(fault.code or "fault")
        super().__init__(partner, operation, "soap_fault", f"fault code {code}")
        self.fault_code = code
        self.fault = fault


class ResilientTransport(Transport):
    """A zeep transport whose operation calls use the current attempt's timeout.

    The timeout and the last HTTP status are kept per thread, so one client can serve the
    worker threads of a connector without one call's timeout leaking into another's.
    """

    def __init__(
        self,
        caller: ResilientCaller,
        *,
        session: requests.Session | None = None,
        wsdl_timeout: float | None = None,
    ) -> None:
        super().__init__(  # type: ignore[no-untyped-call]  # zeep has no type hints
            timeout=wsdl_timeout if wsdl_timeout is not None else caller.timeout,
            operation_timeout=caller.timeout,
            session=session,
        )
        self.caller = caller
        watch_session(self.session)
        self._local = threading.local()

    @contextmanager
    def attempt(self, timeout: float) -> Iterator[None]:
        self._local.timeout = timeout
        self._local.status = None
        self._local.retry_after = None
        try:
            yield
        finally:
            self._local.timeout = None

    def _timeouts(self) -> tuple[float, float]:
        read = getattr(self._local, "timeout", None) or self.operation_timeout
        return (min(self.caller.connect_timeout, read), read)

    @property
    def last_status(self) -> int | None:
        return getattr(self._local, "status", None)

    @property
    def last_retry_after(self) -> float | None:
        return getattr(self._local, "retry_after", None)

    def post(self, address: str, message: Any, headers: Any) -> requests.Response:
        timeouts = self._timeouts()
        # The whole exchange within the attempt's time, however slowly the partner sends
        # (requests' read timeout restarts with every byte): connectors.base.watchdog.
        with total_deadline(timeouts[1]) as watch:
            try:
                response = self.session.post(
                    address, data=message, headers=headers, timeout=timeouts
                )
            except requests.RequestException:
                if watch.fired:
                    raise requests.Timeout("the answer took longer than allowed") from None
                raise
        if watch.fired:
            raise requests.Timeout("the answer took longer than allowed")
        self._local.status = response.status_code
        self._local.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return response

    def get(self, address: str, params: Any, headers: Any) -> requests.Response:
        response = self.session.get(
            address, params=params, headers=headers, timeout=self._timeouts()
        )
        self._local.status = response.status_code
        return response

    def _load_remote_data(self, url: str) -> bytes:
        # WSDL/XSD documents: the same timeout discipline; errors are mapped by the caller.
        response = self.session.get(url, timeout=self._timeouts())
        self._local.status = response.status_code
        with response:
            response.raise_for_status()
            return response.content


class SoapService:
    """The operations of one SOAP partner, called with resilience and mapped errors."""

    def __init__(
        self,
        wsdl_url: str,
        caller: ResilientCaller,
        *,
        wsse: Any = None,
        session: requests.Session | None = None,
        service_name: str | None = None,
        port_name: str | None = None,
    ) -> None:
        self.wsdl_url = wsdl_url
        self.caller = caller
        self.transport = ResilientTransport(caller, session=session)
        self._wsse = wsse
        self._service_name = service_name
        self._port_name = port_name
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._service: Any = None

    @property
    def partner(self) -> str:
        return self.caller.partner

    def _ensure_client(self) -> Any:
        with self._lock:
            if self._service is None:
                client = Client(  # type: ignore[no-untyped-call]  # zeep has no type hints
                    self.wsdl_url,
                    transport=self.transport,
                    wsse=self._wsse,
                    settings=SAFE_SETTINGS,
                )
                if self._service_name and self._port_name:
                    self._service = client.bind(self._service_name, self._port_name)
                else:
                    self._service = client.service
                self._client = client
            return self._service

    @property
    def client(self) -> Client:
        """The zeep client (built on first use), e.g. for ``client.get_type``."""
        if self._client is None:
            self.call_with_retry(self._ensure_client, "load WSDL")
        assert self._client is not None
        return self._client

    def call(self, operation: str, *, deadline: Deadline | None = None, **kwargs: Any) -> Any:
        """``service.<operation>(**kwargs)`` with timeout, retries, breaker and rate limit."""

        def run() -> Any:
            service = self._ensure_client()
            return getattr(service, operation)(**kwargs)

        return self.call_with_retry(run, f"SOAP {operation}", deadline)

    def call_with_retry(self, run: Any, operation: str, deadline: Deadline | None = None) -> Any:
        def attempt(timeout: float) -> Any:
            with self.transport.attempt(timeout):
                return self._mapped(run, operation)

        return self.caller.call(attempt, operation=operation, deadline=deadline)

    def _mapped(self, run: Callable[[], Any], operation: str) -> Any:
        partner = self.partner
        try:
            return run()
        except requests.Timeout:
            raise PartnerTimeout(partner, operation, "timeout") from None
        except requests.ConnectionError:
            raise PartnerConnectionError(partner, operation, "unreachable") from None
        except requests.HTTPError as exc:  # WSDL/XSD download
            status = exc.response.status_code if exc.response is not None else 0
            raise self._status_error(operation, status) from None
        except zeep_errors.Fault as fault:
            status = self.transport.last_status
            if status in TRANSIENT_STATUSES:
                raise PartnerBusy(
                    partner, operation, status, self.transport.last_retry_after, "SOAP fault"
                ) from fault
            raise PartnerFault(partner, operation, fault) from None
        except zeep_errors.TransportError as exc:
            raise self._status_error(operation, int(exc.status_code or 0)) from None
        except (
            zeep_errors.XMLSyntaxError,
            zeep_errors.XMLParseError,
            zeep_errors.DTDForbidden,
            zeep_errors.EntitiesForbidden,
            zeep_errors.ExternalReferenceForbidden,
            zeep_errors.WsdlSyntaxError,
        ) as exc:
            raise PartnerProtocolError(
                partner, operation, "bad_xml", f"unusable answer ({type(exc).__name__})"
            ) from None

    def _status_error(self, operation: str, status: int) -> Exception:
        if status in TRANSIENT_STATUSES:
            return PartnerBusy(self.partner, operation, status, self.transport.last_retry_after)
        return PartnerRejected(self.partner, operation, status)
