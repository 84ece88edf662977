"""An OpenRosa client as a field device is one: list forms, download them, send submissions.

It speaks the OpenRosa 1.0 API the way ODK Collect does: every request carries
``X-OpenRosa-Version: 1.0``; credentials are sent after the server's 401 challenge (Digest when
offered, else Basic); a submission is ``multipart/form-data`` with the instance as
``xml_submission_file`` plus attachments; the answer is an ``OpenRosaResponse`` whose message
the app shows. A submission counts as delivered on 201 or 202; anything else stays on the
device.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import requests
from lxml import etree
from requests.auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth

OPENROSA_HEADERS = {"X-OpenRosa-Version": "1.0"}
XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
RESPONSE_NS = "http://openrosa.org/http/response"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


# One multipart part as requests takes it: (field name, (file name, content, content type)).
Part = tuple[str, tuple[str | None, bytes, str]]


class OpenRosaError(RuntimeError):
    """The server's answer is not what the OpenRosa API promises; the message says what."""


@dataclass(frozen=True)
class ListedForm:
    form_id: str
    name: str
    version: str
    hash: str
    download_url: str
    manifest_url: str | None


@dataclass(frozen=True)
class SubmitResult:
    status: int
    message: str

    @property
    def delivered(self) -> bool:
        """201 (stored) or 202 (already had it): the device may forget this instance."""
        return self.status in (201, 202)


class OpenRosaClient:
    """One device's connection to an OpenRosa server at ``server_url`` (…/openrosa)."""

    def __init__(
        self,
        server_url: str,
        username: str,
        password: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.update(OPENROSA_HEADERS)
        self.timeout = timeout
        self._username = username
        self._password = password
        self._auth: AuthBase | None = None

    def _request(self, method: str, url: str, files: list[Part] | None = None) -> requests.Response:
        response = self.session.request(
            method, url, auth=self._auth, timeout=self.timeout, files=files
        )
        if response.status_code == 401 and self._auth is None:
            self._auth = self._choose_auth(response.headers.get("WWW-Authenticate", ""))
            response = self.session.request(
                method, url, auth=self._auth, timeout=self.timeout, files=files
            )
        return response

    def _choose_auth(self, challenge: str) -> AuthBase:
        if "digest" in challenge.lower():
            return HTTPDigestAuth(self._username, self._password)
        return HTTPBasicAuth(self._username, self._password)

    def form_list(self) -> list[ListedForm]:
        response = self._request("GET", f"{self.server_url}/formList")
        if response.status_code != 200:
            raise OpenRosaError(f"formList answered {response.status_code}")
        root = etree.fromstring(response.content, _PARSER)
        forms = []
        for node in root.iter(f"{{{XFORMS_LIST_NS}}}xform"):

            def text(name: str, node: etree._Element = node) -> str:
                return (node.findtext(f"{{{XFORMS_LIST_NS}}}{name}") or "").strip()

            forms.append(
                ListedForm(
                    text("formID"),
                    text("name"),
                    text("version"),
                    text("hash"),
                    text("downloadUrl"),
                    text("manifestUrl") or None,
                )
            )
        return forms

    def download(self, form: ListedForm) -> bytes:
        """The XForm of ``form``, checked against the hash the list announced."""
        response = self._request("GET", form.download_url)
        if response.status_code != 200:
            raise OpenRosaError(f"form download answered {response.status_code}")
        digest = "md5:" + hashlib.md5(response.content, usedforsecurity=False).hexdigest()
        if form.hash and form.hash != digest:
            raise OpenRosaError(f"form {form.form_id} does not match its listed hash")
        return response.content

    def submit(
        self, instance: bytes, attachments: Sequence[tuple[str, str, bytes]] = ()
    ) -> SubmitResult:
        """Send one filled instance (and ``(name, content_type, bytes)`` attachments)."""
        files: list[Part] = [("xml_submission_file", ("submission.xml", instance, "text/xml"))]
        files += [(name, (name, content, kind)) for name, kind, content in attachments]
        response = self._request("POST", f"{self.server_url}/submission", files=files)
        return SubmitResult(response.status_code, response_message(response.content))


def response_message(body: bytes) -> str:
    """The ``<message>`` of an OpenRosaResponse, or the start of whatever came back."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError:
        return body[:200].decode("utf-8", "replace")
    found = root.find(f".//{{{RESPONSE_NS}}}message")
    if found is None:
        found = root.find(".//message")
    return (found.text or "").strip() if found is not None else ""
