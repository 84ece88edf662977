"""Flask app of the national ID authority mock: SOAP 1.1 at ``/soap/national-id``.

Routes
    ``GET  /soap/national-id?wsdl``  the WSDL (its address points back at this server)
    ``GET  /soap/national-id.xsd``   the schema the WSDL imports (also ``?xsd``)
    ``POST /soap/national-id``       the operations; WS-Security UsernameToken required
    ``GET  /health``                 liveness, for the hub's health page
    ``/_admin/faults``               fault injection (``sandbox_mocks.common.faults``)

Every request goes: safe parse -> UsernameToken -> XSD validation of the body -> operation.
Failures at any step are SOAP faults (HTTP 500), never stack traces.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from sandbox_mocks.common.faults import install_faults
from sandbox_mocks.national_id.config import NationalIdConfig
from sandbox_mocks.national_id.service import NationalIdService
from sandbox_mocks.national_id.soap import (
    NS,
    WSDL_PATH,
    WSDL_PLACEHOLDER_ADDRESS,
    XSD_PATH,
    SoapFault,
    check_username_token,
    envelope,
    load_schema,
    parse_request,
)
from sandbox_mocks.national_id.store import IdentityStore
from sandbox_mocks.population.ids import sandbox_profile
from standards.identifiers import load_profile

log = logging.getLogger(__name__)

SOAP_PATH = "/soap/national-id"
EXTENSION_KEY = "national_id"
MAX_REQUEST_BYTES = 256 * 1024
XML = "text/xml; charset=utf-8"


def fault_response(fault: SoapFault, status: int = 500) -> Response:
    return Response(fault.to_xml(), status=status, content_type=XML)


def render_injected_fault(status: int, reason: str) -> Response:
    """Fault-injection errors as SOAP faults, so a SOAP client sees what a real outage gives."""
    return fault_response(SoapFault("soap:Server", reason), status)


def create_app(config: NationalIdConfig | None = None) -> Flask:
    config = config or NationalIdConfig()
    app = Flask("sandbox_national_id")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    profile = (
        load_profile(config.identifier_profile)
        if config.identifier_profile is not None
        else sandbox_profile()
    )
    service = NationalIdService(IdentityStore.build(config), config.token_secret, profile)
    app.extensions[EXTENSION_KEY] = service
    schema = load_schema()
    # One validator, many server threads: lxml keeps the error log on the validator, so
    # validation and reading its error are done under one lock.
    schema_lock = threading.Lock()
    wsdl_template = WSDL_PATH.read_text(encoding="utf-8")
    xsd_bytes = XSD_PATH.read_bytes()
    operations = {
        f"{{{NS}}}VerifyIdentityRequest": service.verify_identity,
        f"{{{NS}}}GetPersonRequest": service.get_person,
    }
    install_faults(app, config.faults, error_renderer=render_injected_fault)

    @app.get(SOAP_PATH)
    def describe() -> Response:
        if "wsdl" in request.args:
            address = (config.public_url or request.host_url.rstrip("/")) + SOAP_PATH
            body = wsdl_template.replace(WSDL_PLACEHOLDER_ADDRESS, address)
            return Response(body, content_type=XML)
        if "xsd" in request.args:
            return Response(xsd_bytes, content_type=XML)
        return Response(
            "SOAP endpoint: POST a SOAP 1.1 envelope, or GET ?wsdl\n",
            status=400,
            content_type="text/plain",
        )

    @app.get(SOAP_PATH + ".xsd")
    def xsd() -> Response:
        return Response(xsd_bytes, content_type=XML)

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "service": "national-id", "identities": len(service.store)}

    @app.post(SOAP_PATH)
    def soap() -> Response:
        try:
            try:
                data = request.get_data(cache=False)
            except RequestEntityTooLarge:
                raise SoapFault.client(
                    f"Malformed request: larger than {MAX_REQUEST_BYTES} bytes", "IDA-MLC-009"
                ) from None
            parsed = parse_request(data)
            partner = check_username_token(parsed.header, config.username, config.password)
            handler = operations.get(parsed.payload.tag)
            if handler is None:
                raise SoapFault.client(
                    "Malformed request: unknown operation element", "IDA-MLC-009"
                )
            with schema_lock:
                valid = schema.validate(parsed.payload)
                error = None if valid else schema.error_log.last_error
            if not valid:
                reason = error.message if error is not None else "schema violation"
                raise SoapFault.client(f"Malformed request: {reason}", "IDA-MLC-009")
            answer = handler(parsed.payload, partner)
        except SoapFault as fault:
            log.info("national-id request refused: %s", fault.code)
            return fault_response(fault)
        except Exception:  # never a stack trace to the caller; the log keeps it
            log.exception("national-id request failed")
            return fault_response(SoapFault("soap:Server", "Internal error"))
        return Response(envelope(answer), content_type=XML)

    return app
