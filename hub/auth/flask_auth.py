"""Deny-by-default authentication and authorisation for the hub's Flask app.

Every view states who may call it, with ``@requires(Role.x, ...)`` or ``@public``. A
``before_request`` hook reads that declaration for the matched endpoint and:

- refuses with 403 any view that declares nothing, so a forgotten decorator closes a route
  instead of opening it (``undeclared_endpoints(app)`` lets a test prove there are none);
- answers 401 (``WWW-Authenticate: Bearer``) when credentials are missing or invalid, with one
  generic text whatever the internal reason, so callers cannot probe why a token failed;
- answers 403 when the caller is authenticated but holds none of the admitted roles.

Errors are RFC 9457 problem documents (``application/problem+json``). Credentials are
``Authorization: Bearer <jwt>``, ``X-API-Key: srk_...`` or ``Authorization: ApiKey srk_...``.
Tokens and keys are never logged; only the internal refusal reason and the credential id are.

A protocol whose clients authenticate another way (OpenRosa devices: HTTP Basic or Digest with
a challenge of their own) still declares its roles with ``@requires``; it names its
``ViewAuthenticator`` with ``@authenticated_by(...)``, and the hook asks that authenticator for
the principal (or its 401 challenge) and for the 403 answer in its protocol's format. The role
check itself stays here, so no view can skip it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from hub.auth.api_keys import ApiKeyError, authenticate_api_key
from hub.auth.revocations import RevocationList
from hub.auth.roles import Principal, Role
from hub.auth.tokens import TokenError, TokenSigner
from hub.settings import Settings

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

ACCESS_ATTRIBUTE = "__srhub_access__"
AUTHENTICATOR_ATTRIBUTE = "__srhub_authenticator__"
PUBLIC = "public"
EXTENSION_KEY = "srhub_auth"
PROBLEM_MIME = "application/problem+json"
REALM = "srhub"
# Endpoints Flask itself may add; static assets carry no registry data.
DEFAULT_PUBLIC_ENDPOINTS: tuple[str, ...] = ("static",)


# --- declarations -------------------------------------------------------------------------


def requires(*roles: Role) -> Callable[[F], F]:
    """Admit callers holding any of ``roles`` to the decorated view."""
    if not roles:
        raise TypeError("requires() needs at least one Role; use @public for open views")
    for role in roles:
        if not isinstance(role, Role):
            raise TypeError(f"requires() takes Role members, not {role!r}")
    admitted = frozenset(roles)

    def mark(view: F) -> F:
        setattr(view, ACCESS_ATTRIBUTE, admitted)
        return view

    return mark


def public(view: F) -> F:
    """Admit anyone, without credentials (health checks, public metadata)."""
    setattr(view, ACCESS_ATTRIBUTE, PUBLIC)
    return view


class ViewAuthenticator(Protocol):
    """How the callers of some views prove who they are, when it is not a bearer token or an
    API key (``hub.openrosa.auth``: HTTP Basic, Digest and bearer, with OpenRosa answers)."""

    def authenticate(self, state: AuthState) -> Principal | Response:
        """The caller, or the response to send instead (a 401 challenge, a 429, ...)."""
        ...

    def forbidden(self, detail: str) -> Response:
        """The 403 answer in this protocol's format."""
        ...


def authenticated_by(authenticator: ViewAuthenticator) -> Callable[[F], F]:
    """Authenticate callers of the decorated view with ``authenticator``; the view must still
    declare its roles with ``@requires`` (an authenticator grants nothing by itself)."""

    def mark(view: F) -> F:
        setattr(view, AUTHENTICATOR_ATTRIBUTE, authenticator)
        return view

    return mark


def declared_access(view: Callable[..., Any]) -> frozenset[Role] | str | None:
    """The declaration of ``view``: a set of roles, ``PUBLIC``, or None when undeclared.

    Class-based views (``MethodView.as_view``) carry it on the generated function when the
    class lists the decorator in ``decorators``, or on the class itself.
    """
    found = getattr(view, ACCESS_ATTRIBUTE, None)
    if found is None:
        view_class = getattr(view, "view_class", None)
        found = getattr(view_class, ACCESS_ATTRIBUTE, None) if view_class else None
    return found


# --- problem responses -----------------------------------------------------------------------


def problem_response(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """An RFC 9457 problem document. ``type`` is about:blank: the status says it all."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIME)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _unauthorized(detail: str, invalid: bool) -> Response:
    challenge = f'Bearer realm="{REALM}"'
    if invalid:
        challenge += ', error="invalid_token"'
    return problem_response(401, "Unauthorized", detail, {"WWW-Authenticate": challenge})


def _forbidden(detail: str) -> Response:
    return problem_response(403, "Forbidden", detail)


class AccessDenied(HTTPException):
    """Raised by views (e.g. through ``require_area``) to answer 403 as a problem document."""

    code = 403

    def __init__(self, detail: str) -> None:
        super().__init__(description=detail, response=_forbidden(detail))


# --- the hook ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthState:
    signer: TokenSigner
    session_factory: sessionmaker[Session] | None
    public_endpoints: frozenset[str]


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def init_app(
    app: Flask,
    settings: Settings,
    session_factory: sessionmaker[Session] | None,
    *,
    public_endpoints: Iterable[str] = DEFAULT_PUBLIC_ENDPOINTS,
) -> AuthState:
    """Install deny-by-default access control on ``app``.

    ``session_factory`` is where API keys are looked up; with None, only bearer tokens work.
    """
    revocations = RevocationList(session_factory) if session_factory is not None else None
    state = AuthState(
        signer=TokenSigner.from_settings(settings, is_revoked=revocations),
        session_factory=session_factory,
        public_endpoints=frozenset(public_endpoints),
    )
    app.extensions[EXTENSION_KEY] = state
    app.before_request(_enforce)
    return state


def _state() -> AuthState:
    state = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AuthState):
        raise RuntimeError("hub.auth.flask_auth.init_app(app, ...) was not called")
    return state


def _enforce() -> Response | None:
    g.principal = None
    endpoint = request.endpoint
    if endpoint is None:
        return None  # no route matched: Flask answers 404/405 without running any view
    state = _state()
    view = current_app.view_functions.get(endpoint)
    access = declared_access(view) if view is not None else None
    if access is None and endpoint in state.public_endpoints:
        access = PUBLIC
    if access is None:
        log.warning("refused request to endpoint %s: it declares no access rule", endpoint)
        return _forbidden("This endpoint declares no access rule, so it is closed to everyone.")
    if access == PUBLIC:
        return None
    assert isinstance(access, frozenset)
    custom: ViewAuthenticator | None = getattr(view, AUTHENTICATOR_ATTRIBUTE, None)
    if custom is not None:
        return _enforce_with(custom, state, endpoint, access)
    try:
        principal = _authenticate(state)
    except _Refused as refused:
        log.info("401 on %s: %s", endpoint, refused.reason)
        missing = refused.reason == "missing"
        detail = (
            "This endpoint needs credentials: send 'Authorization: Bearer <token>' or "
            "'X-API-Key: <key>'."
            if missing
            else "The credentials sent are not valid (unknown, expired, revoked or malformed)."
        )
        return _unauthorized(detail, invalid=not missing)
    except SQLAlchemyError:
        log.exception("API key store unavailable while authenticating on %s", endpoint)
        return problem_response(
            503, "Service Unavailable", "Credentials cannot be checked right now; retry later."
        )
    if not principal.has_any(access):
        log.info(
            "403 on %s for %s %s: roles %s, needs one of %s",
            endpoint,
            principal.kind,
            principal.token_id,
            sorted(principal.roles),
            sorted(access),
        )
        needed = ", ".join(sorted(r.value for r in access))
        return _forbidden(f"Your roles do not allow this; it needs one of: {needed}.")
    g.principal = principal
    return None


def _enforce_with(
    authenticator: ViewAuthenticator, state: AuthState, endpoint: str, access: frozenset[Role]
) -> Response | None:
    """The same rule for a view with its own authenticator: it finds the caller, the roles
    are checked here."""
    found = authenticator.authenticate(state)
    if isinstance(found, Response):
        return found
    if not found.has_any(access):
        log.info(
            "403 on %s for %s %s: roles %s",
            endpoint,
            found.kind,
            found.token_id,
            sorted(found.roles),
        )
        needed = ", ".join(sorted(r.value for r in access))
        return authenticator.forbidden(f"Your role does not allow this; it needs one of: {needed}.")
    g.principal = found
    return None


def _credentials() -> tuple[str, str] | None:
    """The (kind, value) of the one credential sent, None if none; refuse ambiguity."""
    found: list[tuple[str, str]] = []
    authorization = request.headers.get("Authorization", "").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        scheme_lower = scheme.lower()
        if scheme_lower == "bearer":
            found.append(("token", value.strip()))
        elif scheme_lower == "apikey":
            found.append(("api_key", value.strip()))
        else:
            raise _Refused("unsupported_scheme")
    header_key = request.headers.get("X-API-Key", "").strip()
    if header_key:
        found.append(("api_key", header_key))
    if len(found) > 1:
        raise _Refused("several_credentials")
    if not found:
        return None
    if not found[0][1]:
        raise _Refused("empty_credential")
    return found[0]


def _authenticate(state: AuthState) -> Principal:
    credential = _credentials()
    if credential is None:
        raise _Refused("missing")
    kind, value = credential
    if kind == "token":
        try:
            return state.signer.verify(value)
        except TokenError as exc:
            raise _Refused(f"token_{exc.reason}") from None
    if state.session_factory is None:
        raise _Refused("api_keys_disabled")
    try:
        with state.session_factory() as session, session.begin():
            return authenticate_api_key(session, value)
    except ApiKeyError as exc:
        raise _Refused(f"api_key_{exc.reason}") from None


# --- helpers for views and tests ------------------------------------------------------------


def optional_principal() -> Principal | None:
    """The caller of a *public* view when it sent valid credentials, else None (never an
    error: a public view answers everyone, and may show more to a known caller)."""
    try:
        return _authenticate(_state())
    except (_Refused, SQLAlchemyError):
        return None


def current_principal() -> Principal:
    """The authenticated caller of this request; only valid inside a non-public view."""
    principal = g.get("principal")
    if principal is None:
        raise LookupError("no authenticated principal: the view is public or outside a request")
    return principal


def require_area(admin_area_code: str | None) -> None:
    """Refuse (403) unless the caller may touch a household in ``admin_area_code``."""
    if not current_principal().may_touch_area(admin_area_code):
        raise AccessDenied("This household is outside the administrative areas you cover.")


def require_program(program_code: str | None) -> None:
    """Refuse (403) unless the caller may act for ``program_code``."""
    if not current_principal().may_act_for_program(program_code):
        raise AccessDenied("This belongs to another program.")


def undeclared_endpoints(app: Flask) -> list[str]:
    """Endpoints whose view declares no access rule (each of them answers 403 to everyone)."""
    state = app.extensions.get(EXTENSION_KEY)
    allowed_public = state.public_endpoints if isinstance(state, AuthState) else frozenset()
    return sorted(
        endpoint
        for endpoint, view in app.view_functions.items()
        if declared_access(view) is None and endpoint not in allowed_public
    )


def access_table(app: Flask) -> dict[str, str]:
    """endpoint -> "public" or the comma-separated admitted roles; for docs and reviews."""
    state = app.extensions.get(EXTENSION_KEY)
    allowed_public = state.public_endpoints if isinstance(state, AuthState) else frozenset()
    table: dict[str, str] = {}
    for endpoint, view in sorted(app.view_functions.items()):
        access = declared_access(view)
        if access is None and endpoint in allowed_public:
            access = PUBLIC
        if access is None:
            table[endpoint] = "undeclared (closed)"
        elif access == PUBLIC:
            table[endpoint] = PUBLIC
        else:
            assert isinstance(access, frozenset)
            table[endpoint] = ", ".join(sorted(r.value for r in access))
    return table
