"""All SOAP plumbing of the national ID connector: documents, transport, client, faults.

Why this module exists: zeep is safe only when configured so. Here, in one place:

- **documents**: the WSDL and the schemas it imports are fetched by the connector itself,
  through the connector's ``requests.Session`` with a timeout and a size cap, from the
  partner's own origin only, and handed to zeep as local files. zeep's own
  ``forbid_external`` then stays on, so no document can make zeep fetch anything else.
- **transport**: every operation gets the time its attempt may take (zeep's default is to wait
  forever), taken per call and per thread, so concurrent look-ups on one shared client do
  not change each other's timeouts; bodies are never logged (they hold personal data).
- **faults**: zeep and requests exceptions become the connectors' error tree where they enter,
  carrying the fault code and the partner's error codes but never a body.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from lxml import etree
from zeep import Client, Settings
from zeep import exceptions as zeep_errors
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from connectors.base.errors import (
    PartnerBusy,
    PartnerConnectionError,
    PartnerError,
    PartnerProtocolError,
    PartnerRejected,
    PartnerTimeout,
    PermanentPartnerError,
    TransientPartnerError,
)
from connectors.base.watchdog import total_deadline, watch_session

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024  # a WSDL or schema larger than this is refused
MAX_DOCUMENTS = 16  # the WSDL plus the schemas it pulls in
MAX_ANSWER_BYTES = 4 * 1024 * 1024
XSD = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
USER_AGENT = "srhub-connector/1 (national_id)"

# Partner error codes (MOSIP-like, in the fault detail) that say the person is not known.
NOT_FOUND_CODES = frozenset({"IDA-MLC-018"})
INVALID_ID_CODES = frozenset({"IDA-MLC-002", "IDA-MLC-004"})
AUTH_FAULTS = frozenset(
    {"FailedAuthentication", "InvalidSecurity", "InvalidSecurityToken", "FailedCheck"}
)


def zeep_settings() -> Settings:
    """Strict parsing; no huge trees, entities, DTDs or transitive fetches."""
    return Settings(
        strict=True,
        xml_huge_tree=False,
        forbid_entities=True,
        forbid_dtd=True,
        forbid_external=True,
    )


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class NotFoundError(PermanentPartnerError):
    """The authority does not know this ID. Permanent: asking again gives the same answer."""


class CredentialsRejected(PermanentPartnerError):
    """The authority refused the hub's WS-Security credentials: an operator must fix them."""


# --- documents -------------------------------------------------------------------------------


def _imports(document: etree._Element) -> list[str]:
    """schemaLocation / location of the xsd:import, xsd:include and wsdl:import elements."""
    found: list[str] = []
    for tag, attribute in (
        (f"{{{XSD}}}import", "schemaLocation"),
        (f"{{{XSD}}}include", "schemaLocation"),
        (f"{{{WSDL}}}import", "location"),
    ):
        for element in document.iter(tag):
            location = element.get(attribute)
            if location:
                found.append(location)
    return found


def _local_name(base_dir: str, url: str) -> PurePosixPath:
    """Where ``url`` goes under the download folder: its path below the WSDL's folder."""
    path = urlsplit(url).path
    if not path.startswith(base_dir):
        raise ValueError("an imported document lies outside the WSDL's folder")
    relative = PurePosixPath(path[len(base_dir) :] or "index")
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError("an imported document path climbs out of the WSDL's folder")
    return relative


def download_service_description(
    session: requests.Session, wsdl_url: str, timeout: float, folder: Path
) -> Path:
    """Fetch the WSDL and every schema it imports (same origin only) into ``folder``.

    Returns the local WSDL path. Raises ``PartnerError`` subclasses (an unreachable partner is
    transient) or ``PartnerProtocolError`` for documents that are too big, unparseable, or
    point elsewhere.
    """
    origin = urlsplit(wsdl_url)
    base_dir = origin.path.rsplit("/", 1)[0] + "/"
    wsdl_path = folder / "service.wsdl"
    queue: list[tuple[str, Path]] = [(wsdl_url, wsdl_path)]
    seen: set[str] = set()
    while queue:
        url, target = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        if len(seen) > MAX_DOCUMENTS:
            raise PartnerProtocolError(
                "national_id",
                "GET wsdl",
                "too_many_documents",
                f"the WSDL pulls in more than {MAX_DOCUMENTS} documents",
            )
        content = _get_document(session, url, timeout)
        try:
            document = etree.fromstring(content, safe_parser())
        except etree.XMLSyntaxError:
            raise PartnerProtocolError(
                "national_id", "GET wsdl", "bad_xml", "a service description is not XML"
            ) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        for location in _imports(document):
            absolute = urljoin(url, location)
            parts = urlsplit(absolute)
            if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
                raise PartnerProtocolError(
                    "national_id",
                    "GET wsdl",
                    "foreign_import",
                    "the WSDL imports a document from another host; refused",
                )
            try:
                relative = _local_name(base_dir, absolute)
            except ValueError as problem:
                raise PartnerProtocolError(
                    "national_id", "GET wsdl", "foreign_import", str(problem)
                ) from None
            # The local copy must be found where the relative location points from ``target``.
            local = (target.parent / location.split("?", 1)[0]).resolve()
            if not local.is_relative_to(folder.resolve()):
                raise PartnerProtocolError(
                    "national_id",
                    "GET wsdl",
                    "foreign_import",
                    f"import {relative} leaves the download folder",
                )
            queue.append((absolute, local))
    return wsdl_path


def _get_document(session: requests.Session, url: str, timeout: float) -> bytes:
    operation = "GET wsdl"
    try:
        response = session.get(url, timeout=(min(timeout, 5.0), timeout), stream=True)
    except requests.Timeout:
        raise PartnerTimeout(
            "national_id", operation, "timeout", f"no answer within {timeout:.1f}s"
        ) from None
    except requests.RequestException:
        raise PartnerConnectionError(
            "national_id", operation, "unreachable", "connection failed"
        ) from None
    with response:
        if response.status_code in (408, 429, 502, 503, 504):
            raise PartnerBusy("national_id", operation, response.status_code)
        if response.status_code != 200:
            raise PartnerRejected(
                "national_id",
                operation,
                response.status_code,
                "the service description could not be fetched",
            )
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_DOCUMENT_BYTES:
                    raise PartnerProtocolError("national_id", operation, "body_too_large")
                chunks.append(chunk)
        except requests.RequestException:
            raise PartnerConnectionError("national_id", operation, "body_interrupted") from None
    return b"".join(chunks)


# --- transport ---------------------------------------------------------------------------------


class CallTimeoutTransport(Transport):
    """A zeep transport whose operation timeout is set per call (and per thread).

    zeep's ``Transport.settings(timeout=...)`` changes the shared transport, so two threads
    using one client would change each other's timeouts; here each thread carries its own.
    Bodies are never logged: zeep's own ``post`` logs them at DEBUG level.
    """

    def __init__(self, session: requests.Session, load_timeout: float, default_timeout: float):
        super().__init__(timeout=load_timeout, operation_timeout=default_timeout, session=session)
        watch_session(self.session)
        self.session.headers["User-Agent"] = USER_AGENT
        self._local = threading.local()
        self.last_status: int | None = None

    @contextmanager
    def call_timeout(self, seconds: float) -> Iterator[None]:
        previous = getattr(self._local, "timeout", None)
        self._local.timeout = seconds
        try:
            yield
        finally:
            self._local.timeout = previous

    def _timeout(self) -> tuple[float, float]:
        seconds = getattr(self._local, "timeout", None) or self.operation_timeout
        return (min(seconds, 5.0), seconds)

    def post(self, address: str, message: Any, headers: Any) -> requests.Response:
        connect, seconds = self._timeout()
        # The whole exchange within ``seconds``: requests' read timeout restarts with every
        # byte, so a partner dripping its answer is cut off on the socket (base.watchdog).
        late = PartnerTimeout(
            "national_id", "POST soap", "timeout", f"answer took over {seconds:.1f}s"
        )
        with total_deadline(seconds) as watch:
            try:
                response = self._post(address, message, headers, connect, seconds)
            except (requests.RequestException, PartnerProtocolError):
                if watch.fired:
                    raise late from None
                raise
        if watch.fired:  # a body without a length ends "normally" when its socket is shut
            raise late
        return response

    def _post(
        self, address: str, message: Any, headers: Any, connect: float, seconds: float
    ) -> requests.Response:
        response = self.session.post(
            address,
            data=message,
            headers=headers,
            timeout=(connect, seconds),
            allow_redirects=False,
            stream=True,
        )
        with response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                raise PartnerProtocolError("national_id", "POST soap", "body_too_large")
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise PartnerProtocolError("national_id", "POST soap", "body_too_large")
                chunks.append(chunk)
        response._content = b"".join(chunks)  # what zeep reads as .content
        response._content_consumed = True  # type: ignore[union-attr]
        return response

    def get(self, address: str, params: Any, headers: Any) -> requests.Response:
        return self.session.get(address, params=params, headers=headers, timeout=self._timeout())


def build_client(
    wsdl_url: str,
    username: str,
    password: str,
    *,
    session: requests.Session,
    load_timeout: float,
    operation_timeout: float,
    endpoint_url: str | None = None,
) -> tuple[Client, CallTimeoutTransport, Any]:
    """Fetch the service description once and build the one zeep client of a connector.

    Returns ``(client, transport, service)``; ``service`` is bound to ``endpoint_url`` when
    given (the configured address wins over the one written in the WSDL).
    """
    transport = CallTimeoutTransport(session, load_timeout, operation_timeout)
    folder = Path(tempfile.mkdtemp(prefix="srhub-wsdl-"))
    try:
        local_wsdl = download_service_description(session, wsdl_url, load_timeout, folder)
        try:
            client = Client(
                str(local_wsdl),
                transport=transport,
                wsse=UsernameToken(username, password),
                settings=zeep_settings(),
            )
        except (zeep_errors.Error, etree.XMLSyntaxError, ValueError, KeyError) as exc:
            raise PartnerProtocolError(
                "national_id",
                "GET wsdl",
                "bad_wsdl",
                f"the service description cannot be used ({type(exc).__name__})",
            ) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # zeep holds the parsed documents now
    if endpoint_url:
        binding = next(iter(client.wsdl.bindings))
        service = client.create_service(binding, endpoint_url)
    else:
        service = client.service
    return client, transport, service


# --- faults ------------------------------------------------------------------------------------


def fault_error_codes(fault: zeep_errors.Fault) -> list[str]:
    """The partner's ``errorCode`` values from a fault's detail (no messages: they may echo)."""
    detail = fault.detail
    if detail is None:
        return []
    return [
        (element.text or "").strip()[:64]
        for element in detail.iter()
        if isinstance(element.tag, str) and etree.QName(element).localname == "errorCode"
    ]


def translate(error: Exception, operation: str) -> PartnerError:
    """The connectors' error for what zeep or requests raised during ``operation``."""
    partner = "national_id"
    if isinstance(error, PartnerError):
        return error
    if isinstance(error, requests.Timeout):
        return PartnerTimeout(partner, operation, "timeout", "no answer in time")
    if isinstance(error, requests.RequestException):
        return PartnerConnectionError(partner, operation, "unreachable", "connection failed")
    if isinstance(error, zeep_errors.Fault):
        code = str(error.code or "")
        local = code.rsplit(":", 1)[-1]
        errors = fault_error_codes(error)
        listed = ",".join(errors) or "none"
        if local in AUTH_FAULTS:
            return CredentialsRejected(
                partner,
                operation,
                "bad_credentials",
                f"the national ID authority refused the hub's WS-Security credentials "
                f"({code}); check username and password in [connectors.national_id]",
            )
        if local == "Server":
            return TransientPartnerError(
                partner, operation, "soap_server", "the authority reported a server fault"
            )
        if NOT_FOUND_CODES.intersection(errors):
            return NotFoundError(
                partner, operation, "not_found", f"the authority does not know this ID ({listed})"
            )
        if INVALID_ID_CODES.intersection(errors):
            return PermanentPartnerError(
                partner,
                operation,
                "invalid_id",
                f"the authority refused the ID as invalid ({listed})",
            )
        return PermanentPartnerError(
            partner, operation, "soap_fault", f"fault {code[:60]} with error codes {listed}"
        )
    if isinstance(error, zeep_errors.TransportError):
        status = int(getattr(error, "status_code", 0) or 0)
        if status in (408, 429, 502, 503, 504):
            return PartnerBusy(partner, operation, status)
        if status >= 500:
            return TransientPartnerError(
                partner, operation, f"http_{status}", "the authority answered with a server error"
            )
        return PartnerProtocolError(
            partner, operation, "bad_answer", f"the answer could not be read (HTTP {status})"
        )
    if isinstance(error, zeep_errors.XMLSyntaxError | etree.XMLSyntaxError):
        return PartnerProtocolError(partner, operation, "bad_xml", "the answer is not valid XML")
    if isinstance(error, zeep_errors.Error):
        return PartnerProtocolError(
            partner,
            operation,
            "bad_answer",
            f"the answer does not fit the WSDL ({type(error).__name__})",
        )
    return PartnerProtocolError(
        partner, operation, "unexpected", f"the call failed unexpectedly ({type(error).__name__})"
    )
