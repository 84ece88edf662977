"""A small OpenRosa server for developing and testing the offline intake page.

It serves the real ``/collect`` blueprint (the page under test) and fakes the rest of the hub's
field-collection surface over in-memory state: ``POST /openrosa/session`` (HTTP Basic -> bearer
token), ``GET /openrosa/formList`` (xformsList), the form download and ``POST
/openrosa/submission`` (multipart ``xml_submission_file``; 201 new, 202 already received, 409 a
different body under a known instanceID). It records every submission POST so a test can count
deliveries. The browser test takes any server with the same ``OpenRosaHub`` surface, so the
real hub can replace this one.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from xml.sax.saxutils import escape

from flask import Flask, Response, request
from lxml import etree
from werkzeug.serving import make_server

from hub.collect import bp as collect_bp
from tests.support.xlsform import FORM_ID, FORM_TITLE, FORM_VERSION, household_xform

OPENROSA_HEADERS = {"X-OpenRosa-Version": "1.0"}
ACCEPT_LENGTH = 10 * 1024 * 1024
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass
class Post:
    """One submission POST as the server saw it."""

    instance_id: str | None
    status: int


@dataclass
class FakeState:
    users: dict[str, tuple[str, tuple[str, ...]]]
    xform: bytes
    tokens: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    stored: dict[str, bytes] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # "METHOD /path" of every request
    scripted: deque[tuple[int, str]] = field(default_factory=deque)  # next answers to force
    lock: threading.Lock = field(default_factory=threading.Lock)


def _openrosa_response(status: int, message: str) -> Response:
    body = (
        '<OpenRosaResponse xmlns="http://openrosa.org/http/response">'
        f'<message nature="{"submit_success" if status < 300 else "error"}">'
        f"{escape(message)}</message></OpenRosaResponse>"
    )
    response = Response(body, status=status, mimetype="text/xml")
    response.headers.update(OPENROSA_HEADERS)
    response.headers["X-OpenRosa-Accept-Content-Length"] = str(ACCEPT_LENGTH)
    return response


def _instance_id(xml: bytes) -> str | None:
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError:
        return None
    for node in root.iter():
        if isinstance(node.tag, str) and etree.QName(node).localname == "instanceID":
            return (node.text or "").strip() or None
    return None


def build_app(state: FakeState) -> Flask:
    app = Flask("fake_openrosa")
    app.register_blueprint(collect_bp)

    @app.before_request
    def _record() -> None:
        with state.lock:
            state.requests.append(f"{request.method} {request.path}")

    def bearer_user() -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        with state.lock:
            found = state.tokens.get(header[7:])
        if found is None or found[1] <= datetime.now(UTC):
            return None
        return found[0]

    def challenge() -> Response:
        response = _openrosa_response(401, "Log in again.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="srhub"'
        return response

    @app.post("/openrosa/session")
    def session() -> Any:
        header = request.headers.get("Authorization", "")
        try:
            raw = base64.b64decode(header.removeprefix("Basic "), validate=True).decode()
            username, _, password = raw.partition(":")
        except (ValueError, UnicodeDecodeError):
            username, password = "", ""
        user = state.users.get(username)
        if not header.startswith("Basic ") or user is None or user[0] != password:
            response = _openrosa_response(401, "Unknown user or wrong password.")
            response.headers["WWW-Authenticate"] = 'Basic realm="srhub"'
            return response
        token = secrets.token_urlsafe(24)
        expires = datetime.now(UTC) + timedelta(hours=8)
        with state.lock:
            state.tokens[token] = (username, expires)
        return {
            "token": token,
            "expires_at": expires.isoformat(),
            "username": username,
            "areas": list(user[1]),
        }

    @app.get("/openrosa/formList")
    def form_list() -> Any:
        if bearer_user() is None:
            return challenge()
        md5 = hashlib.md5(state.xform).hexdigest()
        base = request.host_url.rstrip("/")
        body = (
            '<xforms xmlns="http://openrosa.org/xforms/xformsList"><xform>'
            f"<formID>{FORM_ID}</formID><name>{escape(FORM_TITLE)}</name>"
            f"<version>{FORM_VERSION}</version><hash>md5:{md5}</hash>"
            f"<downloadUrl>{base}/openrosa/forms/{FORM_ID}/form.xml</downloadUrl>"
            "</xform></xforms>"
        )
        response = Response(body, mimetype="text/xml")
        response.headers.update(OPENROSA_HEADERS)
        return response

    @app.get("/openrosa/forms/<form_id>/form.xml")
    def form_download(form_id: str) -> Any:
        if bearer_user() is None:
            return challenge()
        if form_id != FORM_ID:
            return _openrosa_response(404, "No such form.")
        response = Response(state.xform, mimetype="text/xml")
        response.headers.update(OPENROSA_HEADERS)
        return response

    @app.route("/openrosa/submission", methods=["HEAD", "POST"])
    def submission() -> Any:
        if bearer_user() is None:
            return challenge()
        if request.method == "HEAD":
            return _openrosa_response(204, "")
        upload = request.files.get("xml_submission_file")
        xml = upload.read() if upload else b""
        instance_id = _instance_id(xml)
        with state.lock:
            if state.scripted:
                status, message = state.scripted.popleft()
            elif instance_id is None:
                status, message = 400, "The submission has no meta/instanceID."
            elif instance_id not in state.stored:
                state.stored[instance_id] = xml
                status, message = 201, "Household received."
            elif state.stored[instance_id] == xml:
                status, message = 202, "Already received."
            else:
                status, message = 409, "A different submission with this instanceID exists."
            state.posts.append(Post(instance_id, status))
        return _openrosa_response(status, message)

    return app


class CollectHub(Protocol):
    """What the offline page's browser tests need of a hub. The real hub implements it too
    (``tests.support.real_openrosa``: stored instances from the intake tables,
    ``answer_next_submission`` through a test hook in front of ``/openrosa/submission``,
    ``expire_tokens`` by rotating the token key). ``form_id``/``form_version``: the one form
    the hub serves, which the tests know how to fill."""

    url: str
    username: str
    password: str
    form_id: str
    form_version: str

    def stored_instance_ids(self) -> list[str]: ...
    def stored_xml(self, instance_id: str) -> bytes: ...
    def posts(self) -> list[Post]: ...
    def requests_seen(self) -> list[str]: ...
    def answer_next_submission(self, status: int, message: str) -> None: ...
    def expire_tokens(self) -> None: ...


@dataclass
class OpenRosaHub:
    """The fake's ``CollectHub``: its URL, a field account, and what it stored."""

    url: str
    username: str
    password: str
    state: FakeState
    form_id: str = FORM_ID
    form_version: str = FORM_VERSION

    def stored_instance_ids(self) -> list[str]:
        with self.state.lock:
            return sorted(self.state.stored)

    def stored_xml(self, instance_id: str) -> bytes:
        with self.state.lock:
            return self.state.stored[instance_id]

    def posts(self) -> list[Post]:
        with self.state.lock:
            return list(self.state.posts)

    def requests_seen(self) -> list[str]:
        with self.state.lock:
            return list(self.state.requests)

    def answer_next_submission(self, status: int, message: str) -> None:
        """Force the answer to the next submission POST (e.g. 409, 500), whatever it holds."""
        with self.state.lock:
            self.state.scripted.append((status, message))

    def expire_tokens(self) -> None:
        with self.state.lock:
            self.state.tokens.clear()


@contextmanager
def running_fake_openrosa(
    username: str = "enumerator",
    password: str = "field-pass-1",  # noqa: S107 - a test account of the fake server
) -> Iterator[OpenRosaHub]:
    """The fake served over loopback on a free port (http://127.0.0.1 is a secure context, so
    the page's service worker registers)."""
    state = FakeState(users={username: (password, ("PK-01",))}, xform=household_xform())
    server = make_server("127.0.0.1", 0, build_app(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield OpenRosaHub(f"http://127.0.0.1:{server.port}", username, password, state)
    finally:
        server.shutdown()
        thread.join(10)
