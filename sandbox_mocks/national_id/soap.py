"""SOAP 1.1 plumbing of the mock: safe parsing, WS-Security check, envelopes and faults.

Why hand-written instead of a SOAP server framework: the mock must behave like a strict partner
(XSD validation, WS-Security, standard fault codes) and be readable in one sitting; the protocol
surface needed is small. Parsing is hardened: no DTDs, no entity expansion, no network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS = "urn:sandbox:national-id:v1"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = _PROFILE + "#PasswordText"
PASSWORD_DIGEST = _PROFILE + "#PasswordDigest"

DATA_DIR = Path(__file__).parent  # data files sit beside the code (package data)
WSDL_PATH = DATA_DIR / "national-id.wsdl"
XSD_PATH = DATA_DIR / "national-id.xsd"
WSDL_PLACEHOLDER_ADDRESS = "http://127.0.0.1:8101/soap/national-id"

_NSMAP = {"soap": SOAP11, "nid": NS, "wsse": WSSE}


def safe_parser() -> etree.XMLParser:
    """A parser that refuses what XML attacks need: DTDs, entities, network, huge trees."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_blank_text=True,
    )


def load_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_PATH), safe_parser()))


@dataclass
class SoapFault(Exception):
    """A fault that renders itself. ``code`` is a QName: ``soap:Client``, ``wsse:...``."""

    code: str
    message: str
    errors: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @classmethod
    def client(cls, message: str, error_code: str | None = None) -> SoapFault:
        return cls("soap:Client", message, [(error_code, message)] if error_code else [])

    def to_xml(self) -> bytes:
        envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap=_NSMAP)
        body = etree.SubElement(envelope, f"{{{SOAP11}}}Body")
        fault = etree.SubElement(body, f"{{{SOAP11}}}Fault")
        # SOAP 1.1: faultcode/faultstring/detail are unqualified.
        etree.SubElement(fault, "faultcode").text = self.code
        etree.SubElement(fault, "faultstring").text = self.message
        if self.errors:
            detail = etree.SubElement(fault, "detail")
            service_fault = etree.SubElement(detail, f"{{{NS}}}ServiceFault")
            service_fault.append(errors_element(self.errors))
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def errors_element(errors: list[tuple[str, str]]) -> etree._Element:
    element = etree.Element(f"{{{NS}}}errors")
    for code, message in errors:
        error = etree.SubElement(element, f"{{{NS}}}error")
        etree.SubElement(error, f"{{{NS}}}errorCode").text = code
        etree.SubElement(error, f"{{{NS}}}errorMessage").text = message
    return element


def envelope(payload: etree._Element) -> bytes:
    root = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11, "nid": NS})
    etree.SubElement(root, f"{{{SOAP11}}}Body").append(payload)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@dataclass(frozen=True)
class ParsedRequest:
    header: etree._Element | None
    payload: etree._Element


def parse_request(data: bytes) -> ParsedRequest:
    """Parse an envelope; anything that is not one SOAP 1.1 body element is a Client fault."""
    if not data.strip():
        raise SoapFault.client("Malformed request: empty body", "IDA-MLC-006")
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault.client(
            f"Malformed request: not well-formed XML ({exc.msg})", "IDA-MLC-009"
        ) from None
    if root.getroottree().docinfo.doctype:
        raise SoapFault.client(
            "Malformed request: DTDs and entities are not allowed", "IDA-MLC-009"
        )
    if root.tag == f"{{{SOAP12}}}Envelope":
        raise SoapFault("soap:VersionMismatch", "Only SOAP 1.1 envelopes are accepted")
    if root.tag != f"{{{SOAP11}}}Envelope":
        raise SoapFault.client(
            "Malformed request: the root element is not a SOAP 1.1 Envelope", "IDA-MLC-009"
        )
    body = root.find(f"{{{SOAP11}}}Body")
    if body is None:
        raise SoapFault.client("Malformed request: the envelope has no Body", "IDA-MLC-009")
    children = [child for child in body if isinstance(child.tag, str)]
    if len(children) != 1:
        raise SoapFault.client(
            "Malformed request: the Body must hold exactly one element", "IDA-MLC-009"
        )
    return ParsedRequest(root.find(f"{{{SOAP11}}}Header"), children[0])


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_username_token(header: etree._Element | None, username: str, password: str) -> str:
    """Verify the WS-Security UsernameToken; return the authenticated user name.

    PasswordText is compared in constant time; PasswordDigest
    (Base64(SHA-1(nonce + created + password))) is accepted too. Faults use the WS-Security
    codes: ``wsse:InvalidSecurity`` when the header is missing or unreadable,
    ``wsse:FailedAuthentication`` when the credentials are wrong.
    """
    security = header.find(f"{{{WSSE}}}Security") if header is not None else None
    token = security.find(f"{{{WSSE}}}UsernameToken") if security is not None else None
    if token is None:
        raise SoapFault(
            "wsse:InvalidSecurity", "A WS-Security header with a UsernameToken is required"
        )
    given_user = token.findtext(f"{{{WSSE}}}Username") or ""
    password_el = token.find(f"{{{WSSE}}}Password")
    if password_el is None:
        raise SoapFault("wsse:InvalidSecurity", "The UsernameToken has no Password")
    kind = password_el.get("Type", PASSWORD_TEXT)
    given_password = password_el.text or ""
    if kind == PASSWORD_TEXT:
        expected = password
    elif kind == PASSWORD_DIGEST:
        nonce = token.findtext(f"{{{WSSE}}}Nonce") or ""
        created = token.findtext(f"{{{WSU}}}Created") or ""
        try:
            raw_nonce = base64.b64decode(nonce, validate=True)
        except ValueError:
            raise SoapFault("wsse:InvalidSecurity", "The Nonce is not Base64") from None
        digest = hashlib.sha1(raw_nonce + created.encode() + password.encode()).digest()  # noqa: S324 - the profile's algorithm
        expected = base64.b64encode(digest).decode()
    else:
        raise SoapFault("wsse:UnsupportedSecurityToken", "Unsupported password type")
    user_ok = _same(given_user, username)
    password_ok = _same(given_password, expected)
    if not (user_ok and password_ok):
        raise SoapFault(
            "wsse:FailedAuthentication",
            "The security token could not be authenticated or authorized",
        )
    return given_user
