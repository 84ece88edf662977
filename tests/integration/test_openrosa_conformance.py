"""A conformance probe of the hub's OpenRosa server, written from the docs.getodk.org pages
(HTTP Requests and Responses, Authentication API, Form List API, Form Submission API) and
from what ODK Collect does (HEAD before POST expecting 204; Digest over http; 201/202 success).

It talks HTTP to a real server (werkzeug on loopback) running the hub's app. The intake core
behind the protocol comes from the ``intake_backend`` fixture, parametrised: ``memory`` is the
in-memory double of tests/openrosa_support.py (written from the contract alone), ``core`` the
real intake core exactly as ``create_app`` installs it (``hub.intake.service.IntakeService``
over the hub's database, SQLite and PostgreSQL), serving the sample household form
(``hub/intake/sample_forms``, with its repeat of members) uploaded through the service with one
media file. ``probe_form`` describes whichever form is served.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from lxml import etree
from requests.auth import HTTPBasicAuth, HTTPDigestAuth
from werkzeug.serving import make_server

from hub.api import create_app
from hub.auth.roles import Principal, Role
from hub.auth.tokens import TokenSigner
from hub.cli import main
from hub.intake.contract import INTAKE_EXTENSION_KEY, MediaFile
from hub.intake.service import IntakeService
from hub.intake.setup import SAMPLE_FORM, sample_form_bytes
from hub.runtime import HubRuntime
from hub.settings import Settings, load_settings
from tests.openrosa_support import (
    LOGO_PNG,
    SAFE_PARSER,
    DigestClient,
    InMemoryIntake,
    add_user,
    build_instance,
    parse_challenges,
)

PASSWORD = "correct horse battery staple"
MAX_BYTES = 200_000
OR = {"X-OpenRosa-Version": "1.0"}
LIST_NS = "{http://openrosa.org/xforms/xformsList}"
MANIFEST_NS = "{http://openrosa.org/xforms/xformsManifest}"
RESPONSE_NS = "{http://openrosa.org/http/response}"
STAFF = Principal("probe-reader", frozenset({Role.registry_staff}))


@dataclass(frozen=True)
class ProbeForm:
    """What the probe needs to know of the form it fills: which field carries the household's
    area, and values that make a valid submission inside and outside the field worker's area."""

    area_field: str
    inside_area: str
    outside_area: str
    values: dict[str, str]
    changed_field: str  # a key of ``values`` whose text the probe changes for a 409


@dataclass(frozen=True)
class Stored:
    """What the intake core kept of one submission."""

    submitted_by: str
    device_id: str | None
    attachments: frozenset[str]


@dataclass
class Hub:
    url: str
    settings: Settings
    backend: Any

    @property
    def base(self) -> str:
        return f"{self.url}/openrosa"

    def stored(self, instance_id: str) -> Stored:
        """Read back from whichever intake core the hub runs."""
        if isinstance(self.backend, InMemoryIntake):
            kept = self.backend.received[instance_id]
            submitter, device = self.backend.calls[-1]
            return Stored(submitter, device, frozenset(kept.attachments))
        row = self.backend.get_submission(instance_id, STAFF)
        names = frozenset(a["name"] for a in row["attachments"])
        return Stored(row["submitted_by"], row["device_id"], names)


REAL_CORE = None  # ``intake_backend`` value: keep the core ``create_app`` installs


@pytest.fixture(params=["memory", "core"])
def intake_backend(request: pytest.FixtureRequest) -> Any:
    """The intake core the probe runs against: the double, or the real one (REAL_CORE)."""
    return InMemoryIntake() if request.param == "memory" else REAL_CORE


@pytest.fixture
def probe_form(intake_backend: Any) -> ProbeForm:
    if intake_backend is REAL_CORE:  # the sample household form
        return ProbeForm(
            area_field="admin_area_code",
            inside_area="KE-30-01",
            outside_area="KE-47-02",
            values={
                "consent_national_id_check": "yes",
                "given_name": "Wanjiru",
                "family_name": "Kamau",
                "sex": "female",
                "birth_date": "1984-03-02",
                "relationship": "head",
                "roof_material": "metal",
                "rooms": "2",
            },
            changed_field="given_name",
        )
    return ProbeForm(
        area_field="admin_area",
        inside_area="KE-30-01",
        outside_area="KE-47-02",
        values={"household_name": "Wanjiru", "members": "4"},
        changed_field="household_name",
    )


def _add_user(settings: Settings, name: str, role: str, *areas: str) -> None:
    add_user(settings, name, role, PASSWORD, *areas)


@pytest.fixture
def hub(db_url: str, tmp_path: Path, intake_backend: Any) -> Iterator[Hub]:
    settings = load_settings(
        env={},
        data_dir=tmp_path,
        database_url=db_url,
        sandbox=False,
        intake={"max_submission_bytes": MAX_BYTES},
        openrosa={"max_failed_logins": 3, "nonce_ttl_seconds": 60},
    )
    _add_user(settings, "enumerator1", "field_worker", "KE-30")
    _add_user(settings, "supervisor1", "supervisor", "KE-30", "KE-31")
    _add_user(settings, "clerk1", "registry_staff")
    _add_user(settings, "gone1", "field_worker", "KE-30")
    result = CliRunner().invoke(
        main,
        ["users", "disable", "gone1"],
        env={"SRHUB_DATABASE_URL": db_url, "SRHUB_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    runtime = HubRuntime(settings)
    app = create_app(settings, runtime)
    if intake_backend is not REAL_CORE:
        app.extensions[INTAKE_EXTENSION_KEY] = intake_backend
    backend = app.extensions[INTAKE_EXTENSION_KEY]
    if isinstance(backend, IntakeService):
        logo = MediaFile("logo.png", "image/png", LOGO_PNG)
        backend.upload_form(sample_form_bytes(), SAMPLE_FORM, "probe", media=[logo])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Hub(f"http://127.0.0.1:{server.port}", settings, backend)
    finally:
        server.shutdown()
        thread.join(10)
        runtime.close()


def basic(name: str = "enumerator1", password: str = PASSWORD) -> HTTPBasicAuth:
    return HTTPBasicAuth(name, password)


def _assert_openrosa_headers(answer: requests.Response) -> None:
    """HTTP Requests and Responses: X-OpenRosa-Version and Date on every response; the
    submission page: X-OpenRosa-Accept-Content-Length (every response here, errors too)."""
    assert answer.headers["X-OpenRosa-Version"] == "1.0"
    assert parsedate_to_datetime(answer.headers["Date"]).tzinfo is not None
    assert answer.raw.headers.getlist("Date") == [answer.headers["Date"]]
    assert answer.headers["X-OpenRosa-Accept-Content-Length"] == str(MAX_BYTES)


def _message(answer: requests.Response) -> tuple[str | None, str]:
    """(nature, text) of an OpenRosaResponse envelope."""
    assert answer.headers["Content-Type"].startswith("text/xml"), answer.headers
    root = etree.fromstring(answer.content, SAFE_PARSER)
    assert root.tag == f"{RESPONSE_NS}OpenRosaResponse", answer.text
    message = root.find(f"{RESPONSE_NS}message")
    assert message is not None, answer.text
    return message.get("nature"), message.text or ""


def _form_list(hub: Hub, auth: Any = None, **params: str) -> etree._Element:
    answer = requests.get(
        f"{hub.base}/formList", params=params, headers=OR, auth=auth or basic(), timeout=10
    )
    assert answer.status_code == 200, answer.text
    _assert_openrosa_headers(answer)
    assert answer.headers["Content-Type"] == "text/xml; charset=utf-8"
    return etree.fromstring(answer.content, SAFE_PARSER)


def _download_form(hub: Hub) -> tuple[etree._Element, bytes]:
    listing = _form_list(hub)
    xform = listing.find(f"{LIST_NS}xform")
    assert xform is not None
    answer = requests.get(xform.findtext(f"{LIST_NS}downloadUrl"), auth=basic(), timeout=10)
    assert answer.status_code == 200
    return xform, answer.content


def _submit(
    hub: Hub,
    xml: bytes,
    *,
    auth: Any = None,
    media: dict[str, bytes] | None = None,
    incomplete: bool = False,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    files: list[tuple[str, tuple[str, bytes, str]]] = [
        ("xml_submission_file", ("submission.xml", xml, "text/xml"))
    ]
    for name, content in (media or {}).items():
        files.append((name, (name, content, "image/jpeg")))
    data = {"*isIncomplete*": "yes"} if incomplete else None
    return requests.post(
        f"{hub.base}/submission",
        params={"deviceID": "collect:probe"},
        files=files,
        data=data,
        headers=OR if headers is None else headers,
        auth=None if headers and "Authorization" in headers else (auth or basic()),
        timeout=20,
    )


def _instance(hub: Hub, form: ProbeForm, area: str | None = None, **extra: str) -> bytes:
    _, xform = _download_form(hub)
    values = {**form.values, form.area_field: area or form.inside_area, **extra}
    return build_instance(xform, values)


# --- Form List API ---------------------------------------------------------------------------


def test_form_list_is_an_xforms_list_with_the_required_elements(hub: Hub) -> None:
    root = _form_list(hub)
    assert root.tag == f"{LIST_NS}xforms"
    forms = root.findall(f"{LIST_NS}xform")
    assert forms, "a field worker sees at least the active form"
    for xform in forms:
        for required in ("formID", "name", "version", "hash", "downloadUrl"):
            assert len(xform.findall(f"{LIST_NS}{required}")) == 1, required
        assert xform.findtext(f"{LIST_NS}hash", "").startswith("md5:")
        assert xform.find(f"{LIST_NS}descriptionText") is None, "only with verbose=true"
        for optional in ("descriptionText", "descriptionUrl", "manifestUrl"):
            assert len(xform.findall(f"{LIST_NS}{optional}")) <= 1
        for url in ("downloadUrl", "manifestUrl"):
            text = xform.findtext(f"{LIST_NS}{url}")
            assert text is None or text.startswith(hub.base + "/"), text
    verbose = _form_list(hub, verbose="true").find(f"{LIST_NS}xform")
    assert verbose is not None and verbose.findtext(f"{LIST_NS}descriptionText")


def test_form_list_filters_by_form_id_and_head_answers_like_get(hub: Hub) -> None:
    form_id = _form_list(hub).findtext(f"{LIST_NS}xform/{LIST_NS}formID")
    assert form_id
    only = _form_list(hub, formID=form_id).findall(f"{LIST_NS}xform")
    assert [x.findtext(f"{LIST_NS}formID") for x in only] == [form_id]
    assert _form_list(hub, formID="no-such-form").findall(f"{LIST_NS}xform") == []
    head = requests.head(f"{hub.base}/formList", headers=OR, auth=basic(), timeout=10)
    assert head.status_code == 200 and not head.content
    _assert_openrosa_headers(head)


def test_download_matches_the_listed_hash_and_the_manifest_lists_media(hub: Hub) -> None:
    xform, content = _download_form(hub)
    assert xform.findtext(f"{LIST_NS}hash") == "md5:" + hashlib.md5(content).hexdigest()
    document = etree.fromstring(content, SAFE_PARSER)
    assert etree.QName(document).localname == "html"
    manifest_url = xform.findtext(f"{LIST_NS}manifestUrl")
    assert manifest_url, "a form with media has a manifestUrl"
    answer = requests.get(manifest_url, headers=OR, auth=basic(), timeout=10)
    assert answer.status_code == 200
    _assert_openrosa_headers(answer)
    manifest = etree.fromstring(answer.content, SAFE_PARSER)
    assert manifest.tag == f"{MANIFEST_NS}manifest"
    files = manifest.findall(f"{MANIFEST_NS}mediaFile")
    assert files
    for media in files:
        for required in ("filename", "hash", "downloadUrl"):
            assert len(media.findall(f"{MANIFEST_NS}{required}")) == 1
        name = media.findtext(f"{MANIFEST_NS}filename", "")
        assert not name.startswith("/") and ".." not in name.split("/")
        got = requests.get(media.findtext(f"{MANIFEST_NS}downloadUrl"), auth=basic(), timeout=10)
        assert got.status_code == 200
        assert media.findtext(f"{MANIFEST_NS}hash") == "md5:" + hashlib.md5(got.content).hexdigest()


def test_api_requests_without_the_openrosa_version_header_are_refused(hub: Hub) -> None:
    answer = requests.get(f"{hub.base}/formList", auth=basic(), timeout=10)
    assert answer.status_code == 400
    _assert_openrosa_headers(answer)
    assert "X-OpenRosa-Version" in _message(answer)[1]


def test_the_form_list_is_for_field_roles_only(hub: Hub) -> None:
    signer = TokenSigner.from_settings(hub.settings)
    staff = signer.issue(subject="officer", roles=["registry_staff"])
    answer = requests.get(
        f"{hub.base}/formList",
        headers={**OR, "Authorization": f"Bearer {staff}"},
        timeout=10,
    )
    assert answer.status_code == 403
    _assert_openrosa_headers(answer)
    # A staff password user has no OpenRosa credentials at all.
    clerk = requests.get(f"{hub.base}/formList", headers=OR, auth=basic("clerk1"), timeout=10)
    assert clerk.status_code == 401
    supervisor = _form_list(hub, auth=basic("supervisor1"))
    assert supervisor.findall(f"{LIST_NS}xform")


# --- Form Submission API -------------------------------------------------------------------


def test_head_submission_answers_204_with_the_accepted_length(hub: Hub) -> None:
    answer = requests.head(f"{hub.base}/submission", headers=OR, auth=basic(), timeout=10)
    assert answer.status_code == 204
    _assert_openrosa_headers(answer)


def test_submission_is_201_then_a_resend_is_already_received_and_a_changed_body_is_409(
    hub: Hub, probe_form: ProbeForm
) -> None:
    xml = _instance(hub, probe_form)
    first = _submit(hub, xml, media={"photo.jpg": b"\xff\xd8 fake jpeg"})
    assert first.status_code == 201, first.text
    _assert_openrosa_headers(first)
    assert _message(first)[0] == "submit_success"

    again = _submit(hub, xml)
    assert again.status_code in (201, 202), again.text
    nature, text = _message(again)
    assert nature == "submit_success" and text

    changed = xml.replace(probe_form.values[probe_form.changed_field].encode(), b"Someone else")
    assert changed != xml
    conflict = _submit(hub, changed)
    assert conflict.status_code == 409, conflict.text
    _assert_openrosa_headers(conflict)
    assert _message(conflict)[1]


def test_a_split_submission_sends_the_same_xml_with_more_media(
    hub: Hub, probe_form: ProbeForm
) -> None:
    xml = _instance(hub, probe_form)
    instance_id = etree.fromstring(xml, SAFE_PARSER).findtext("meta/instanceID")
    first = _submit(hub, xml, media={"a.jpg": b"\xff\xd8 one"}, incomplete=True)
    last = _submit(hub, xml, media={"b.jpg": b"\xff\xd8 two"})
    assert first.status_code == 201, first.text
    assert last.status_code in (201, 202), last.text
    # The later part's media are kept with the instance the first part created.
    assert hub.stored(instance_id) == Stored(
        "enumerator1", "collect:probe", frozenset({"a.jpg", "b.jpg"})
    )
    # A resend of a part already received adds nothing twice.
    again = _submit(hub, xml, media={"b.jpg": b"\xff\xd8 two"})
    assert again.status_code in (201, 202), again.text
    assert hub.stored(instance_id).attachments == {"a.jpg", "b.jpg"}


def test_a_household_outside_the_workers_areas_is_refused_403(
    hub: Hub, probe_form: ProbeForm
) -> None:
    answer = _submit(hub, _instance(hub, probe_form, area=probe_form.outside_area))
    assert answer.status_code == 403, answer.text
    _assert_openrosa_headers(answer)
    nature, text = _message(answer)
    assert nature == "error" and text


def test_too_large_is_413_and_no_xml_part_is_400(hub: Hub, probe_form: ProbeForm) -> None:
    xml = _instance(hub, probe_form)
    large = _submit(hub, xml, media={"video.jpg": b"\0" * (MAX_BYTES + 100_000)})
    assert large.status_code == 413
    _assert_openrosa_headers(large)
    assert _message(large)[1]
    missing = requests.post(
        f"{hub.base}/submission",
        files={"some_other_part": ("x.xml", xml, "text/xml")},
        headers=OR,
        auth=basic(),
        timeout=10,
    )
    assert missing.status_code == 400
    assert "xml_submission_file" in _message(missing)[1]


# --- Authentication API ---------------------------------------------------------------------


def _challenges(answer: requests.Response) -> list[tuple[str, dict[str, str]]]:
    return parse_challenges(answer.raw.headers.getlist("WWW-Authenticate"))


def test_no_credentials_get_a_401_with_digest_first_then_basic(hub: Hub) -> None:
    answer = requests.head(f"{hub.base}/submission", headers=OR, timeout=10)
    assert answer.status_code == 401
    _assert_openrosa_headers(answer)
    challenges = _challenges(answer)
    schemes = [scheme for scheme, _ in challenges]
    assert schemes[0] == "digest", "ODK Collect answers the first Digest challenge"
    first = challenges[0][1]
    assert first.get("algorithm", "MD5") == "MD5", "OpenRosa Restricted Digest: MD5 or omitted"
    assert first["qop"] == "auth" and first["realm"] and first["nonce"] and first["domain"]
    assert {p.get("algorithm") for s, p in challenges if s == "digest"} == {"MD5", "SHA-256"}
    assert "basic" in schemes, "loopback clients may use Basic"


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_logins_with_md5_and_sha256_and_replays_are_refused(
    hub: Hub, probe_form: ProbeForm, algorithm: str
) -> None:
    refused = requests.head(f"{hub.base}/submission", headers=OR, timeout=10)
    challenge = next(
        params
        for scheme, params in _challenges(refused)
        if scheme == "digest" and params.get("algorithm") == algorithm
    )
    client = DigestClient("enumerator1", PASSWORD, challenge)
    uri = "/openrosa/submission?deviceID=collect%3Aprobe"
    head = requests.head(
        f"{hub.url}{uri}",
        headers={**OR, "Authorization": client.header("HEAD", uri)},
        timeout=10,
    )
    assert head.status_code == 204, head.text
    xml = _instance(hub, probe_form)
    post_header = client.header("POST", uri)
    files = {"xml_submission_file": ("submission.xml", xml, "text/xml")}
    posted = requests.post(
        f"{hub.url}{uri}", files=files, headers={**OR, "Authorization": post_header}, timeout=10
    )
    assert posted.status_code == 201, posted.text
    # The same nonce count again is a replay: refused, with stale=true so an honest device
    # retries without prompting.
    replay = requests.head(
        f"{hub.url}{uri}",
        headers={**OR, "Authorization": client.header("HEAD", uri, nc=1)},
        timeout=10,
    )
    assert replay.status_code == 401
    assert any(p.get("stale") == "true" for _, p in _challenges(replay))
    wrong = DigestClient("enumerator1", "not the password at all", challenge)
    bad = requests.head(
        f"{hub.url}{uri}", headers={**OR, "Authorization": wrong.header("HEAD", uri)}, timeout=10
    )
    assert bad.status_code == 401
    assert all(p.get("stale") != "true" for _, p in _challenges(bad))


def test_a_stock_digest_client_logs_in(hub: Hub) -> None:
    answer = requests.get(
        f"{hub.base}/formList",
        headers=OR,
        auth=HTTPDigestAuth("enumerator1", PASSWORD),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_an_expired_nonce_is_answered_stale(hub: Hub) -> None:
    from hub.openrosa.digest import NonceSigner

    keys_secret = HubRuntime(hub.settings).keys.jwt_secret
    old = NonceSigner.from_secret(keys_secret, 60).issue(now=1_000_000.0)
    challenge = {"realm": hub.settings.openrosa.realm, "nonce": old, "algorithm": "MD5"}
    client = DigestClient("enumerator1", PASSWORD, challenge)
    uri = "/openrosa/submission"
    answer = requests.head(
        f"{hub.url}{uri}", headers={**OR, "Authorization": client.header("HEAD", uri)}, timeout=10
    )
    assert answer.status_code == 401
    assert [p.get("stale") for s, p in _challenges(answer) if s == "digest"] == ["true", "true"]


def test_wrong_password_is_401_and_repeated_failures_are_throttled(hub: Hub) -> None:
    for _ in range(3):
        wrong = requests.head(
            f"{hub.base}/submission", headers=OR, auth=basic(password="wrong guess 123"), timeout=10
        )
        assert wrong.status_code == 401
        assert _challenges(wrong)[0][0] == "digest"
    throttled = requests.head(f"{hub.base}/submission", headers=OR, auth=basic(), timeout=10)
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    # Another user from the same address is not locked out.
    other = requests.head(
        f"{hub.base}/submission", headers=OR, auth=basic("supervisor1"), timeout=10
    )
    assert other.status_code == 204


def test_a_disabled_user_is_refused_even_with_the_right_password(hub: Hub) -> None:
    answer = requests.get(f"{hub.base}/formList", headers=OR, auth=basic("gone1"), timeout=10)
    assert answer.status_code == 403
    assert "disabled" in _message(answer)[1]


def test_device_session_token_works_as_bearer_and_cannot_mint_another(
    hub: Hub, probe_form: ProbeForm
) -> None:
    answer = requests.post(f"{hub.base}/session", headers=OR, auth=basic(), timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["roles"] == ["field_worker"] and body["areas"] == ["KE-30"]
    assert body["expires_in"] == hub.settings.openrosa.device_token_ttl_seconds
    bearer = {**OR, "Authorization": f"Bearer {body['token']}"}
    listed = requests.get(f"{hub.base}/formList", headers=bearer, timeout=10)
    assert listed.status_code == 200
    xml = _instance(hub, probe_form, instance=str(uuid.uuid4()))
    posted = _submit(hub, xml, headers=bearer)
    assert posted.status_code == 201, posted.text
    again = requests.post(f"{hub.base}/session", headers=bearer, timeout=10)
    assert again.status_code == 403
