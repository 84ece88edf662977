"""The two operations, VerifyIdentity and GetPerson, on parsed and validated requests.

Error model (MOSIP-like codes): a request the authority cannot act on at all (unknown or
invalid ID, no demographics) is a SOAP fault with ``errors`` in the detail; a request it can
answer but not approve (mismatching demographics, no consent, holder deceased) is a normal answer
with ``authStatus``/``kycStatus`` false and ``errors`` saying why.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, date, datetime

from lxml import etree

from sandbox_mocks.national_id import matching
from sandbox_mocks.national_id.soap import NS, SoapFault, errors_element
from sandbox_mocks.national_id.store import IdentityRecord, IdentityStore
from standards.identifiers import IdentifierProfile

Matcher = Callable[[str, IdentityRecord], bool]
_FIELDS: tuple[tuple[str, Matcher], ...] = (
    ("name", matching.match_name),
    ("dob", lambda v, r: matching.match_dob(date.fromisoformat(v[:10]), r)),
    ("gender", matching.match_gender),
    ("phone", matching.match_phone),
    ("address", matching.match_address),
)


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _q(name))
    if text is not None:
        element.text = text
    return element


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bool(text: str | None) -> bool:
    return (text or "").strip() in ("true", "1")


class NationalIdService:
    """Answers the operations from an ``IdentityStore``.

    ``profile`` is the country's identifier profile: its ``national_id`` and ``virtual_id``
    rules (pattern, check digit) decide which numbers are well-formed, as the hub's do.
    """

    def __init__(self, store: IdentityStore, token_secret: str, profile: IdentifierProfile) -> None:
        self.store = store
        self.profile = profile
        self._token_key = token_secret.encode()

    def token(self, partner: str, uin: str) -> str:
        """A per-partner stand-in for the UIN (as MOSIP returns): stable, not reversible."""
        digest = hmac.new(self._token_key, f"{partner}:{uin}".encode(), hashlib.sha256)
        return str(int.from_bytes(digest.digest()[:16], "big") % 10**36).zfill(36)

    def _lookup(self, request: etree._Element) -> IdentityRecord:
        id_type = request.findtext(_q("individualIdType"))
        value = request.findtext(_q("individualId")) or ""
        system, message, code = (
            ("virtual_id", "Invalid VID", "IDA-MLC-004")
            if id_type == "VID"
            else ("national_id", "Invalid UIN", "IDA-MLC-002")
        )
        if self.profile.problem(system, value) is not None:
            raise SoapFault.client(message, code)
        number = self.profile.normalise(system, value)
        record = self.store.by_vid(number) if id_type == "VID" else self.store.by_uin(number)
        if record is None:
            raise SoapFault.client(f"{id_type} not available in database", "IDA-MLC-018")
        return record

    def verify_identity(self, request: etree._Element, partner: str) -> etree._Element:
        demographics = request.find(_q("demographics"))
        given = (
            {}
            if demographics is None
            else {
                name: demographics.findtext(_q(name))
                for name, _ in _FIELDS
                if demographics.find(_q(name)) is not None
            }
        )
        if not given:
            raise SoapFault.client("Missing Input Parameter - demographics", "IDA-MLC-006")
        record = self._lookup(request)
        errors: list[tuple[str, str]] = []
        matches: list[tuple[str, bool]] = []
        for name, matcher in _FIELDS:
            if name in given:
                ok = matcher(given[name] or "", record)
                matches.append((name, ok))
                if not ok:
                    errors.append(("IDA-DEA-001", f"Demographic data {name} did not match"))
        if not _bool(request.findtext(_q("consentObtained"))):
            errors.insert(0, ("IDA-MLC-009", "Invalid Input Parameter - consentObtained"))
        if record.deceased:
            errors.insert(0, ("IDA-MLC-003", "UIN has been deactivated: the holder is deceased"))
        response = etree.Element(_q("VerifyIdentityResponse"), nsmap={"nid": NS})
        _sub(response, "transactionID", request.findtext(_q("transactionID")))
        _sub(response, "responseTime", _now())
        _sub(response, "authStatus", "false" if errors else "true")
        _sub(response, "token", self.token(partner, record.uin))
        _sub(response, "personStatus", "DECEASED" if record.deceased else "ALIVE")
        if record.death_date:
            _sub(response, "deathDate", record.death_date.isoformat())
        field_matches = _sub(response, "fieldMatches")
        for name, ok in matches:
            item = _sub(field_matches, "fieldMatch")
            _sub(item, "field", name)
            _sub(item, "match", "true" if ok else "false")
        response.append(errors_element(errors))
        return response

    def get_person(self, request: etree._Element, partner: str) -> etree._Element:
        record = self._lookup(request)
        consent = _bool(request.findtext(_q("consentObtained")))
        response = etree.Element(_q("GetPersonResponse"), nsmap={"nid": NS})
        _sub(response, "transactionID", request.findtext(_q("transactionID")))
        _sub(response, "responseTime", _now())
        _sub(response, "kycStatus", "true" if consent else "false")
        _sub(response, "token", self.token(partner, record.uin))
        if not consent:
            response.append(
                errors_element([("IDA-MLC-009", "Invalid Input Parameter - consentObtained")])
            )
            return response
        identity = _sub(response, "identity")
        _sub(identity, "individualId", record.uin)
        _sub(identity, "vid", record.vid)
        _sub(identity, "fullName", f"{record.given_name} {record.family_name}")
        _sub(identity, "givenName", record.given_name)
        _sub(identity, "familyName", record.family_name)
        _sub(identity, "dob", record.birth_date.isoformat())
        _sub(identity, "gender", record.sex.capitalize())
        if record.phone:
            _sub(identity, "phone", record.phone)
        address = _sub(identity, "address")
        _sub(address, "line1", record.address_line)
        _sub(address, "locality", record.locality)
        _sub(address, "localityCode", record.locality_code)
        _sub(address, "district", record.district)
        _sub(address, "region", record.region)
        _sub(identity, "personStatus", "DECEASED" if record.deceased else "ALIVE")
        if record.death_date:
            _sub(identity, "deathDate", record.death_date.isoformat())
        response.append(errors_element([]))
        return response
