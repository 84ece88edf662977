"""The real hub as the offline page's browser tests see it (their ``CollectHub``).

``create_app`` with the real intake core, the sample household form loaded as ``srhub run``
loads it, a field worker created as ``srhub users add NAME --role field_worker --area A``
does, the app on a loopback HTTP server (werkzeug, threaded) and the real ingest worker
applying what is received (embedded queue on a SQLite file: the newcomer's ``make run``).

The test surface the fake offers is built from the real parts, not beside them: stored
instances are read from the intake tables, each submission POST is recorded by an
``after_request`` hook (with the status the hub answered), ``answer_next_submission`` is a
``before_request`` hook in front of ``/openrosa/submission`` that answers instead of the hub,
and ``expire_tokens`` rotates the token key, so every device token the hub issued ends at once.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from lxml import etree
from sqlalchemy import select

from hub.api import create_app
from hub.assembly import build_worker
from hub.auth.flask_auth import EXTENSION_KEY as AUTH_KEY
from hub.auth.roles import Principal, Role
from hub.auth.signing_keys import Keyring
from hub.auth.tokens import TokenSigner
from hub.dbschema import upgrade_to_head
from hub.intake.contract import INTAKE_EXTENSION_KEY
from hub.intake.service import IntakeService
from hub.intake.setup import load_sample_form
from hub.intake.tables import SEAL_XML, IntakeSubmission
from hub.openrosa.auth import xml_answer
from hub.runtime import HubRuntime
from hub.settings import load_settings
from tests.openrosa_support import add_user
from tests.support.fake_openrosa import Post

SAMPLE_FORM_ID = "household_registration"
SAMPLE_FORM_VERSION = "2026120501"
AREAS = ("PK-01", "PK-02")
STAFF = Principal("browser-test", frozenset({Role.registry_staff}))
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
SUBMISSION_PATH = "/openrosa/submission"


@dataclass
class RealCollectHub:
    """The real hub's ``CollectHub`` (see the module doc)."""

    url: str
    username: str
    password: str
    app: Flask
    runtime: HubRuntime
    form_id: str = SAMPLE_FORM_ID
    form_version: str = SAMPLE_FORM_VERSION
    _posts: list[Post] = field(default_factory=list)
    _requests: list[str] = field(default_factory=list)
    _scripted: deque[tuple[int, str]] = field(default_factory=deque)
    # "METHOD /path: what was wrong" for /openrosa requests the page sent without what the
    # OpenRosa server requires (X-OpenRosa-Version: 1.0; a Bearer token, Basic for /session)
    _slips: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def service(self) -> IntakeService:
        found = self.app.extensions[INTAKE_EXTENSION_KEY]
        assert isinstance(found, IntakeService)
        return found

    # --- CollectHub ---------------------------------------------------------------------------

    def stored_instance_ids(self) -> list[str]:
        with self.runtime.sessions() as session:
            return sorted(session.scalars(select(IntakeSubmission.instance_id)))

    def stored_xml(self, instance_id: str) -> bytes:
        with self.runtime.sessions() as session:
            sealed = session.scalars(
                select(IntakeSubmission.xml_sealed).where(
                    IntakeSubmission.instance_id == instance_id
                )
            ).one()
        return self.runtime.cipher.unseal(SEAL_XML, sealed)

    def posts(self) -> list[Post]:
        with self._lock:
            return list(self._posts)

    def requests_seen(self) -> list[str]:
        with self._lock:
            return list(self._requests)

    def protocol_slips(self) -> list[str]:
        with self._lock:
            return list(self._slips)

    def answer_next_submission(self, status: int, message: str) -> None:
        with self._lock:
            self._scripted.append((status, message))

    def expire_tokens(self) -> None:
        state = self.app.extensions[AUTH_KEY]
        rotated = TokenSigner.with_keyring(
            Keyring.generate(),
            issuer=state.signer.issuer,
            default_ttl_seconds=state.signer.default_ttl_seconds,
        )
        self.app.extensions[AUTH_KEY] = dataclasses.replace(state, signer=rotated)

    # --- the registry side ------------------------------------------------------------------

    def applied(self, instance_ids: list[str], timeout: float = 20.0) -> list[dict[str, Any]]:
        """The submissions once the ingest worker has handled each (status no longer
        ``received``)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = [self.service.get_submission(i, STAFF) for i in instance_ids]
            if all(r["status"] != "received" for r in rows):
                return rows
            assert time.monotonic() < deadline, "the ingest worker did not apply them in time"
            time.sleep(0.1)

    # --- hooks ------------------------------------------------------------------------------

    def install_hooks(self) -> None:
        app = self.app

        @app.before_request
        def _seen() -> Response | None:
            slip = _slip()
            with self._lock:
                self._requests.append(f"{request.method} {request.path}")
                if slip:
                    self._slips.append(f"{request.method} {request.path}: {slip}")
                scripted = (
                    self._scripted.popleft()
                    if self._scripted
                    and request.method == "POST"
                    and request.path == SUBMISSION_PATH
                    else None
                )
            if scripted is None:
                return None
            request.files.get("xml_submission_file")  # read as the hub would
            return xml_answer(*scripted)

        @app.after_request
        def _record(response: Response) -> Response:
            # A 401 is a refusal at the door (nothing was taken), as the fake does not count.
            submitted = request.method == "POST" and request.path == SUBMISSION_PATH
            if submitted and response.status_code != 401:
                with self._lock:
                    self._posts.append(Post(_instance_id(), response.status_code))
            return response

        # Run first, before the blueprints' own hooks (the auth check among them).
        app.before_request_funcs[None].insert(0, app.before_request_funcs[None].pop())


def _slip() -> str | None:
    """What an /openrosa request of the page lacks, if anything."""
    if not request.path.startswith("/openrosa/"):
        return None
    if request.headers.get("X-OpenRosa-Version") != "1.0":
        return "no X-OpenRosa-Version: 1.0"
    wanted = "Basic " if request.path == "/openrosa/session" else "Bearer "
    if not request.headers.get("Authorization", "").startswith(wanted):
        return f"no {wanted.strip()} authorization"
    return None


def _instance_id() -> str | None:
    part = request.files.get("xml_submission_file")
    if part is None:
        return None
    part.stream.seek(0)
    try:
        root = etree.fromstring(part.stream.read(), _PARSER)
    except etree.XMLSyntaxError:
        return None
    found = root.xpath("./*[local-name()='meta']/*[local-name()='instanceID']")
    return (found[0].text or "").strip() or None if found else None


class InnerHost:
    """What a reverse proxy without forwarded-header handling does: the app sees the inner
    host name, so the absolute URLs it prints (form list ``downloadUrl``) are not the origin
    the browser used."""

    def __init__(self, app: Any, host: str) -> None:
        self.app, self.host = app, host

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        environ["HTTP_HOST"] = self.host
        return self.app(environ, start_response)


@contextmanager
def running_real_hub(
    tmp_path: Path,
    username: str = "enumerator",
    password: str = "field-pass-1",  # noqa: S107 - a test account
    *,
    inner_host: str | None = None,
) -> Iterator[RealCollectHub]:
    """The real hub over loopback; ``inner_host``: as seen through a proxy (``InnerHost``)."""
    from werkzeug.serving import make_server

    database_url = f"sqlite:///{(tmp_path / 'hub.db').as_posix()}"
    upgrade_to_head(database_url)
    settings = load_settings(
        env={}, database_url=database_url, data_dir=tmp_path / "var", sandbox=False
    )
    add_user(settings, username, "field_worker", password, *AREAS)
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()
    app = create_app(settings, runtime)
    hub = RealCollectHub("", username, password, app, runtime)
    assert load_sample_form(hub.service)
    hub.install_hooks()
    ingest = build_worker("ingest", runtime, routes={})
    served: Any = InnerHost(app, inner_host) if inner_host else app
    server = make_server("127.0.0.1", 0, served, threaded=True)
    hub.url = f"http://127.0.0.1:{server.port}"
    threads = [
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True),
        threading.Thread(target=ingest.run, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        ingest.stop()
        for thread in threads:
            thread.join(20)
        runtime.close()
