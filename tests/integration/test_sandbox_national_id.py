"""The national ID mock over real HTTP, driven by zeep with the WSDL fetched from the server."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from lxml import etree
from zeep import Client
from zeep.exceptions import Fault
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from sandbox_mocks.common.server import MockServer
from sandbox_mocks.national_id import SOAP_PATH, NationalIdConfig, create_app
from sandbox_mocks.national_id.soap import NS, SOAP11, load_schema, safe_parser
from sandbox_mocks.national_id.store import IdentityRecord, IdentityStore
from sandbox_mocks.population import national_id_check_digit

USER, PASSWORD = "registry-hub", "s3cret-for-tests"
REQUEST_TIME = "2025-03-01T10:00:00Z"


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    config = NationalIdConfig(seed=7, people=2000, noise_rate=0.0, username=USER, password=PASSWORD)
    with MockServer(create_app(config)) as running:
        yield running


@pytest.fixture(scope="module")
def store(server: MockServer) -> IdentityStore:
    return server.app.extensions["national_id"].store


def make_client(
    server: MockServer, user: str = USER, password: str = PASSWORD, digest: bool = False
) -> Client:
    transport = Transport(timeout=5, operation_timeout=5)
    return Client(
        server.url + SOAP_PATH + "?wsdl",
        transport=transport,
        wsse=UsernameToken(user, password, use_digest=digest),
    )


@pytest.fixture(scope="module")
def client(server: MockServer) -> Client:
    return make_client(server)


@pytest.fixture(scope="module")
def alive(store: IdentityStore) -> IdentityRecord:
    return next(r for r in store.records() if not r.deceased and r.phone)


def verify(
    client: Client,
    record_id: str,
    id_type: str = "UIN",
    consent: bool = True,
    **demographics: object,
):
    return client.service.VerifyIdentity(
        transactionID="txn-1",
        individualId=record_id,
        individualIdType=id_type,
        consentObtained=consent,
        requestTime=REQUEST_TIME,
        demographics=demographics,
    )


def matches(answer) -> dict[str, bool]:
    return {m.field: m.match for m in answer.fieldMatches.fieldMatch}


def error_codes(errors) -> list[str]:
    return [e.errorCode for e in (errors.error if errors is not None else [])]


def fault_codes(fault: Fault) -> list[str]:
    assert fault.detail is not None
    return [e.text for e in fault.detail.iter(f"{{{NS}}}errorCode")]


def test_wsdl_and_xsd_are_served_with_the_live_address(server: MockServer) -> None:
    wsdl = requests.get(server.url + SOAP_PATH + "?wsdl", timeout=5)
    assert wsdl.status_code == 200
    assert f'location="{server.url}{SOAP_PATH}"' in wsdl.text
    xsd = requests.get(server.url + SOAP_PATH + ".xsd", timeout=5)
    assert xsd.status_code == 200
    etree.XMLSchema(etree.fromstring(xsd.content, safe_parser()))


def test_verify_identity_all_fields_match(client: Client, alive: IdentityRecord) -> None:
    answer = verify(
        client,
        alive.uin,
        name=f"{alive.family_name} {alive.given_name}",
        dob=alive.birth_date,
        gender=alive.sex.upper()[0],
        phone=alive.phone,
        address=alive.address_line,
    )
    assert answer.transactionID == "txn-1"
    assert answer.authStatus is True
    assert answer.personStatus == "ALIVE"
    assert matches(answer) == dict.fromkeys(["name", "dob", "gender", "phone", "address"], True)
    assert len(answer.token) == 36 and alive.uin not in answer.token
    assert error_codes(answer.errors) == []


def test_verify_identity_reports_each_mismatch(client: Client, alive: IdentityRecord) -> None:
    answer = verify(
        client,
        alive.uin,
        name=f"{alive.given_name} {alive.family_name}",
        dob=alive.birth_date + timedelta(days=1),
    )
    assert answer.authStatus is False
    assert matches(answer) == {"name": True, "dob": False}
    assert error_codes(answer.errors) == ["IDA-DEA-001"]


def test_verify_by_vid_and_without_consent(client: Client, alive: IdentityRecord) -> None:
    by_vid = verify(client, alive.vid, "VID", name=f"{alive.given_name} {alive.family_name}")
    assert by_vid.authStatus is True
    no_consent = verify(client, alive.uin, consent=False, gender=alive.sex)
    assert no_consent.authStatus is False
    assert "IDA-MLC-009" in error_codes(no_consent.errors)


def test_deceased_holder_is_reported(client: Client, store: IdentityStore) -> None:
    dead = next(r for r in store.records() if r.deceased)
    answer = verify(client, dead.uin, dob=dead.birth_date)
    assert answer.personStatus == "DECEASED"
    assert answer.deathDate == dead.death_date
    assert answer.authStatus is False
    assert "IDA-MLC-003" in error_codes(answer.errors)


def test_get_person_returns_the_ekyc_record(client: Client, alive: IdentityRecord) -> None:
    answer = client.service.GetPerson(
        transactionID="kyc-9",
        individualId=alive.vid,
        individualIdType="VID",
        consentObtained=True,
        requestTime=REQUEST_TIME,
    )
    assert answer.kycStatus is True
    identity = answer.identity
    assert identity.individualId == alive.uin
    assert (identity.givenName, identity.familyName) == (alive.given_name, alive.family_name)
    assert identity.dob == alive.birth_date
    assert identity.gender.lower() == alive.sex
    assert identity.address.localityCode == alive.locality_code
    assert identity.personStatus == "ALIVE"
    refused = client.service.GetPerson(
        transactionID="kyc-10",
        individualId=alive.uin,
        individualIdType="UIN",
        consentObtained=False,
        requestTime=REQUEST_TIME,
    )
    assert refused.kycStatus is False and refused.identity is None


def _unknown_uin(store: IdentityStore) -> str:
    rng = random.Random(5)
    while True:
        body = str(rng.randrange(10**8, 10**9))
        uin = body + national_id_check_digit(body)
        if store.by_uin(uin) is None:
            return uin


def test_unknown_id_is_a_fault(client: Client, store: IdentityStore) -> None:
    with pytest.raises(Fault) as caught:
        verify(client, _unknown_uin(store), name="Nobody Here")
    assert caught.value.code == "soap:Client"
    assert fault_codes(caught.value) == ["IDA-MLC-018"]
    with pytest.raises(Fault) as caught:
        client.service.GetPerson(
            transactionID="t",
            individualId=_unknown_uin(store),
            individualIdType="UIN",
            consentObtained=True,
            requestTime=REQUEST_TIME,
        )
    assert fault_codes(caught.value) == ["IDA-MLC-018"]


def test_id_with_bad_check_digit_is_a_fault(client: Client, alive: IdentityRecord) -> None:
    wrong = alive.uin[:-1] + str((int(alive.uin[-1]) + 1) % 10)
    with pytest.raises(Fault) as caught:
        verify(client, wrong, gender="male")
    assert fault_codes(caught.value) == ["IDA-MLC-002"]


def test_bad_credentials_are_a_fault(server: MockServer, alive: IdentityRecord) -> None:
    for user, password in ((USER, "wrong"), ("intruder", PASSWORD)):
        with pytest.raises(Fault) as caught:
            verify(make_client(server, user, password), alive.uin, gender=alive.sex)
        assert caught.value.code == "wsse:FailedAuthentication"


def test_password_digest_is_accepted(server: MockServer, alive: IdentityRecord) -> None:
    answer = verify(make_client(server, digest=True), alive.uin, gender=alive.sex)
    assert answer.authStatus is True
    with pytest.raises(Fault) as caught:
        verify(make_client(server, password="nope", digest=True), alive.uin, gender=alive.sex)
    assert caught.value.code == "wsse:FailedAuthentication"


def test_request_breaking_the_schema_is_a_fault(client: Client, alive: IdentityRecord) -> None:
    with pytest.raises(Fault) as caught:
        verify(client, "12AB567890", name="Somebody")
    assert caught.value.code == "soap:Client"
    assert "individualId" in caught.value.message
    assert fault_codes(caught.value) == ["IDA-MLC-009"]
    with pytest.raises(Fault) as caught:
        verify(client, alive.uin)  # no demographics at all
    assert fault_codes(caught.value) == ["IDA-MLC-006"]


def _post(server: MockServer, body: bytes) -> requests.Response:
    return requests.post(
        server.url + SOAP_PATH,
        data=body,
        timeout=5,
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )


def _fault_of(response: requests.Response) -> tuple[str, str]:
    root = etree.fromstring(response.content, safe_parser())
    fault = root.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    assert fault is not None
    return fault.findtext("faultcode") or "", fault.findtext("faultstring") or ""


def _envelope(payload: str, security: bool = True) -> bytes:
    header = ""
    if security:
        header = (
            "<soap:Header><wsse:Security xmlns:wsse='http://docs.oasis-open.org/wss/2004/01/"
            "oasis-200401-wss-wssecurity-secext-1.0.xsd'><wsse:UsernameToken>"
            f"<wsse:Username>{USER}</wsse:Username><wsse:Password>{PASSWORD}</wsse:Password>"
            "</wsse:UsernameToken></wsse:Security></soap:Header>"
        )
    return (
        f"<soap:Envelope xmlns:soap='{SOAP11}' xmlns:nid='{NS}'>{header}"
        f"<soap:Body>{payload}</soap:Body></soap:Envelope>"
    ).encode()


def test_raw_malformed_requests_get_faults_not_crashes(server: MockServer) -> None:
    not_xml = _post(server, b"this is not <xml")
    assert not_xml.status_code == 500
    assert _fault_of(not_xml)[0] == "soap:Client"
    xxe = (
        b"<?xml version='1.0'?><!DOCTYPE e [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
        + _envelope("<nid:GetPersonRequest>&x;</nid:GetPersonRequest>")
    )
    refused = _post(server, xxe)
    code, message = _fault_of(refused)
    assert code == "soap:Client" and "DTD" in message
    assert b"root:" not in refused.content
    soap12 = _post(
        server,
        b"<e:Envelope xmlns:e='http://www.w3.org/2003/05/soap-envelope'><e:Body/></e:Envelope>",
    )
    assert _fault_of(soap12)[0] == "soap:VersionMismatch"
    no_security = _post(server, _envelope("<nid:GetPersonRequest/>", security=False))
    assert _fault_of(no_security)[0] == "wsse:InvalidSecurity"
    unknown_op = _post(server, _envelope("<nid:DeletePersonRequest/>"))
    assert "unknown operation" in _fault_of(unknown_op)[1]
    huge = _post(
        server, _envelope("<nid:GetPersonRequest>" + "x" * 300_000 + "</nid:GetPersonRequest>")
    )
    assert _fault_of(huge)[0] == "soap:Client"


def test_answers_validate_against_the_published_schema(
    server: MockServer, alive: IdentityRecord
) -> None:
    schema = load_schema()
    payloads = [
        "<nid:VerifyIdentityRequest><nid:transactionID>x1</nid:transactionID>"
        f"<nid:individualId>{alive.uin}</nid:individualId>"
        "<nid:individualIdType>UIN</nid:individualIdType>"
        "<nid:consentObtained>true</nid:consentObtained>"
        f"<nid:requestTime>{REQUEST_TIME}</nid:requestTime>"
        f"<nid:demographics><nid:gender>{alive.sex}</nid:gender></nid:demographics>"
        "</nid:VerifyIdentityRequest>",
        "<nid:GetPersonRequest><nid:transactionID>x2</nid:transactionID>"
        f"<nid:individualId>{alive.uin}</nid:individualId>"
        "<nid:individualIdType>UIN</nid:individualIdType>"
        "<nid:consentObtained>true</nid:consentObtained>"
        f"<nid:requestTime>{REQUEST_TIME}</nid:requestTime></nid:GetPersonRequest>",
    ]
    for payload in payloads:
        response = _post(server, _envelope(payload))
        assert response.status_code == 200
        root = etree.fromstring(response.content, safe_parser())
        body = root.find(f"{{{SOAP11}}}Body")
        assert body is not None
        schema.assertValid(body[0])


def test_injected_outage_reaches_zeep_as_a_server_fault(
    server: MockServer, alive: IdentityRecord
) -> None:
    broken = make_client(server)  # the WSDL loads first; the outage hits the call only
    broken.transport.session.headers["X-Mock-Fault"] = "error=503"
    with pytest.raises(Fault) as caught:
        verify(broken, alive.uin, gender=alive.sex)
    assert caught.value.code == "soap:Server"


def test_authority_holds_noisy_copies_when_asked() -> None:
    clean = IdentityStore.build(NationalIdConfig(seed=7, people=2000, noise_rate=0.0))
    noisy = IdentityStore.build(NationalIdConfig(seed=7, people=2000, noise_rate=0.3))
    assert len(clean) == len(noisy)
    differ = sum(clean.by_uin(r.uin) != r for r in noisy.records())
    assert 0.15 * len(noisy) < differ < 0.45 * len(noisy)
