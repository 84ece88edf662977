"""DCI Social Registry endpoints under ``/dci/registry/...`` (the protocol lives in hub.dci).

Callers authenticate with a bearer token (roles partner, program or admin); the body is a DCI
envelope. What a search may show is the caller's ``ReadScope`` (``hub.api.visibility``): an
admin reads everything, a program what its consents cover, a partner nothing personal.
Refusals by the hub's auth layer (401/403, problem documents elsewhere in the API) are
rewritten here into the spec's ``HttpErrorResponse`` (``{"errors": [{code, message}]}``), kept
with the problem members, and on the async endpoints with an ``ERR`` ack too, so DCI clients
and generic HTTP clients find a DCI error code in every answer of these routes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from sqlalchemy.orm import Session, sessionmaker

from hub.api.audit_reads import read_audit_log
from hub.api.context import hub_runtime
from hub.api.visibility import read_scope
from hub.auth.flask_auth import current_principal, requires
from hub.auth.roles import Role
from hub.dci.config import load_signing_key
from hub.dci.server import DciServer
from hub.workers.egress import EgressPolicy
from standards.dci import codes
from standards.dci.envelope import ack, http_errors, new_id, problem_fields

bp = Blueprint("dci", __name__, url_prefix="/dci")

EXTENSION_KEY = "srhub_dci"
_build_lock = threading.Lock()
_AUTH_CODES = {
    401: codes.ERR_UNAUTHORIZED,
    403: codes.ERR_FORBIDDEN,
    404: codes.ERR_NOT_FOUND,
    405: codes.ERR_REQUEST_BAD,
    413: codes.ERR_REQUEST_BAD,
    500: codes.ERR_UNAVAILABLE,
}
CALLERS = (Role.partner, Role.program, Role.admin)


def dci_server() -> DciServer:
    """The app's DciServer, built on first use from the hub runtime."""
    server = current_app.extensions.get(EXTENSION_KEY)
    if isinstance(server, DciServer):
        return server
    with _build_lock:
        server = current_app.extensions.get(EXTENSION_KEY)
        if not isinstance(server, DciServer):
            runtime = hub_runtime()
            config = runtime.settings.dci
            server = DciServer(
                runtime.sessions,
                runtime.cipher,
                config,
                load_signing_key(runtime.settings, config),
                egress=EgressPolicy.from_settings(runtime.settings),
                program_purpose=_program_purpose(runtime.sessions),
                read_audit=read_audit_log(),
            )
            current_app.extensions[EXTENSION_KEY] = server
    return server


def _program_purpose(sessions: sessionmaker[Session]) -> Callable[[str], str | None]:
    """The DCI server's look-up of a program's subscription purpose (``hub.dci`` may not
    import ``hub.subscriptions``, which imports it)."""
    from hub.subscriptions.purpose import subscription_purpose

    def purpose(program: str) -> str | None:
        with sessions() as session:
            return subscription_purpose(session, program)

    return purpose


def close_app(app: Flask, *, wait: bool = True) -> None:
    """Stop the app's DCI callback workers (waiting for queued callbacks when ``wait``).

    ``HubRuntime.close()`` does not know about them: the DciServer lives in
    ``app.extensions``, built on first use. Call this when the app shuts down, before the
    runtime is closed (the workers still use its database). Safe to call twice, or when no
    DCI request ever came (then there is nothing to stop).
    """
    with _build_lock:
        server = app.extensions.pop(EXTENSION_KEY, None)
    if isinstance(server, DciServer):
        server.close(wait=wait)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _body() -> Any:
    """The request's JSON, or None when it is not JSON (the envelope check then says so).

    Parsed here rather than by ``request.get_json``: that lets a deeply nested document raise
    RecursionError (a 500), and admits NaN/Infinity, which are not JSON.
    """
    raw = request.get_data(cache=False)
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None


def _answer(name: str) -> Response:
    body = _body()
    principal = current_principal()
    reply = dci_server().handle(name, body, read_scope(principal), principal)
    response = Response(json.dumps(reply.body), status=reply.status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/registry/search")
@requires(*CALLERS)
def search() -> Response:
    return _answer("search")


@bp.post("/registry/sync/search")
@requires(*CALLERS)
def sync_search() -> Response:
    return _answer("sync/search")


@bp.post("/registry/subscribe")
@requires(*CALLERS)
def subscribe() -> Response:
    return _answer("subscribe")


@bp.post("/registry/unsubscribe")
@requires(*CALLERS)
def unsubscribe() -> Response:
    return _answer("unsubscribe")


@bp.post("/registry/txn/status")
@requires(*CALLERS)
def txn_status() -> Response:
    return _answer("txn/status")


@bp.post("/registry/sync/txn/status")
@requires(*CALLERS)
def sync_txn_status() -> Response:
    return _answer("sync/txn/status")


@bp.post("/registry/<path:unknown>")
@requires(*CALLERS)
def unknown_endpoint(unknown: str) -> Response:
    return _answer("unknown:" + unknown[:50])


SYNC_PREFIX = "/registry/sync/"


@bp.after_app_request
def _dci_errors(response: Response) -> Response:
    """Give refusals on /dci/ made outside our views (auth layer, routing, body too large) the
    spec's error body and codes. App-wide hook: routing errors never reach the blueprint."""
    prefix = str(bp.url_prefix)
    if (
        response.mimetype == "application/problem+json"
        and response.status_code in _AUTH_CODES
        and request.path.startswith(prefix + "/")
    ):
        try:
            detail = json.loads(response.get_data(as_text=True)).get("detail", "")
        except ValueError:
            detail = ""
        code = _AUTH_CODES[response.status_code]
        text = str(detail) or response.status
        if request.path.startswith(prefix + SYNC_PREFIX):
            body = http_errors(code, text, response.status_code)
        else:  # async endpoints answer with an acknowledgement: an ERR one here
            body = {
                **problem_fields(code, text, response.status_code),
                **ack(codes.ERR, new_id(), (code, text)),
            }
        response.set_data(json.dumps(body))
        response.mimetype = "application/json"
    return response
