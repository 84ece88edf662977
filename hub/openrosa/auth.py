"""Who is calling ``/openrosa``: HTTP Digest, HTTP Basic or a hub bearer token.

The OpenRosa Authentication API (docs.getodk.org/openrosa-authentication) asks a server for
Basic or the "OpenRosa Restricted Digest", with one or more challenges in its 401. What the
hub offers follows what ODK Collect actually does (getodk/collect,
``OkHttpOpenRosaServerClientProvider``): Collect registers a Digest authenticator always and a
Basic one only for ``https`` server URLs, and answers the first challenge of a scheme it
knows. So every 401 carries, in this order:

1. ``Digest … algorithm=MD5, qop="auth"`` — what the OpenRosa page allows a server to name and
   what Collect and KoboCollect compute;
2. ``Digest … algorithm=SHA-256, qop="auth"`` — RFC 7616's stronger choice for clients that
   pick among challenges;
3. ``Basic realm=…`` — only where Basic is allowed: over HTTPS, from a loopback client, or
   with ``openrosa.allow_basic_over_http`` (the page: "Basic Authentication MUST NOT be
   performed over a non-secure (HTTP) connection").

``Authorization: Bearer <hub JWT>`` is accepted too (the offline web page holds a device token
from ``POST /openrosa/session``). Only field users (field_worker, supervisor) have OpenRosa
credentials; a disabled user is refused even with the right password, and a device token of a
user disabled since is refused on its next request. Failed logins are throttled per user name
and client address. Every refusal is an OpenRosa response the app can show; nothing secret is
logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from dataclasses import dataclass, field

from flask import Response, current_app, request
from flask.sansio.app import App
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from hub.auth.flask_auth import AuthState
from hub.auth.roles import Principal
from hub.auth.tokens import TokenError
from hub.openrosa import digest
from hub.openrosa.credentials import (
    FIELD_ROLES,
    FailedLogins,
    FieldUser,
    VerifiedPasswords,
    open_digest_secret,
)
from hub.openrosa.documents import openrosa_response
from hub.settings.openrosa import OpenRosaSettings

log = logging.getLogger(__name__)

STATE_KEY = "srhub_openrosa_auth"
XML_MIME = "text/xml; charset=utf-8"
# Compared against when a user is unknown, so an unknown name costs what a known one does.
_DUMMY_HA1 = "0" * 64


@dataclass
class OpenRosaAuthState:
    """Per-app state of device authentication: nonce key, used nonce counts, the Basic
    verification memory and the failed-login counts (all in memory, per process)."""

    settings: OpenRosaSettings
    nonces: digest.NonceSigner
    counts: digest.NonceCounts
    failures: FailedLogins
    verified: VerifiedPasswords = field(default_factory=VerifiedPasswords)


def auth_state(app: App | None = None) -> OpenRosaAuthState:
    """The app's device-authentication state, made on first use from the hub's settings."""
    from hub.api.context import EXTENSION_KEY, hub_runtime
    from hub.ratelimit.flask_limits import make_storage

    target = app or current_app
    found = target.extensions.get(STATE_KEY)
    if isinstance(found, OpenRosaAuthState):
        return found
    runtime = target.extensions[EXTENSION_KEY] if app is not None else hub_runtime()
    settings = runtime.settings.openrosa
    state = OpenRosaAuthState(
        settings=settings,
        nonces=digest.NonceSigner.from_secret(runtime.keys.jwt_secret, settings.nonce_ttl_seconds),
        counts=digest.NonceCounts(settings.nonce_ttl_seconds),
        failures=FailedLogins(
            settings.max_failed_logins,
            settings.failed_login_window_seconds,
            make_storage(runtime.settings, runtime.engine),
        ),
    )
    target.extensions[STATE_KEY] = state
    return state


def xml_answer(status: int, message: str, nature: str = "error") -> Response:
    return Response(openrosa_response(message, nature), status=status, content_type=XML_MIME)


class _Unauthenticated(Exception):
    def __init__(self, reason: str, *, stale: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stale = stale


class OpenRosaAuthenticator:
    """The ``ViewAuthenticator`` of the OpenRosa blueprint (see ``hub.auth.flask_auth``)."""

    def forbidden(self, detail: str) -> Response:
        return xml_answer(403, detail)

    def authenticate(self, state: AuthState) -> Principal | Response:
        own = auth_state()
        try:
            return self._authenticate(state, own)
        except _Unauthenticated as refused:
            log.info("openrosa 401 on %s: %s", request.endpoint, refused.reason)
            return self.challenge(own, stale=refused.stale)
        except _Throttled as throttled:
            log.warning("openrosa login throttled on %s for a client", request.endpoint)
            answer = xml_answer(
                429,
                "Too many failed logins for this user from this device. Wait "
                f"{throttled.seconds} seconds, then check the user name and password.",
            )
            answer.headers["Retry-After"] = str(throttled.seconds)
            return answer
        except _Disabled:
            return xml_answer(403, "This account is disabled. Ask your supervisor.")
        except SQLAlchemyError:
            log.exception("user store unavailable while authenticating on %s", request.endpoint)
            return xml_answer(503, "The server cannot check logins right now; try again later.")

    # --- the challenge ----------------------------------------------------------------------

    def challenge(self, own: OpenRosaAuthState, *, stale: bool = False) -> Response:
        answer = xml_answer(401, "Log in with your field user name and password.")
        realm = own.settings.realm
        nonce = own.nonces.issue()
        domain = request.script_root + "/openrosa"
        for algorithm in digest.ALGORITHMS:
            answer.headers.add(
                "WWW-Authenticate", digest.challenge(realm, nonce, algorithm, domain, stale)
            )
        if _basic_allowed(own):
            answer.headers.add("WWW-Authenticate", f'Basic realm="{realm}", charset="UTF-8"')
        return answer

    # --- schemes ------------------------------------------------------------------------------

    def _authenticate(self, state: AuthState, own: OpenRosaAuthState) -> Principal:
        header = request.headers.get("Authorization", "").strip()
        if not header:
            raise _Unauthenticated("missing")
        scheme = header.partition(" ")[0].lower()
        if scheme == "bearer":
            return self._bearer(state, header.partition(" ")[2].strip())
        if scheme == "digest":
            return self._digest(own)
        if scheme == "basic":
            return self._basic(own)
        raise _Unauthenticated("unsupported_scheme")

    def _bearer(self, state: AuthState, token: str) -> Principal:
        try:
            principal = state.signer.verify(token)
        except TokenError as exc:
            raise _Unauthenticated(f"token_{exc.reason}") from None
        user = _load_user(principal.subject)
        if user is not None and not user.active:
            raise _Disabled()
        return principal

    def _basic(self, own: OpenRosaAuthState) -> Principal:
        if not _basic_allowed(own):
            raise _Unauthenticated("basic_over_http")
        credentials = request.authorization
        username = (credentials.username or "") if credentials else ""
        password = (credentials.password or "") if credentials else ""
        if not username or len(username) > 64 or len(password) > 1024:
            raise _Unauthenticated("basic_malformed")
        address = request.remote_addr or ""
        _check_throttle(own, username, address)
        user = _load_user(username)
        if user is None or not _is_field_user(user):
            from hub.ui.passwords import burn_time

            burn_time(password)
            own.failures.failed(username, address)
            raise _Unauthenticated("basic_unknown_user")
        if not own.verified.known(user.username, password, user.password_hash):
            from hub.ui.passwords import verify_password

            if not verify_password(password, user.password_hash):
                own.failures.failed(username, address)
                raise _Unauthenticated("basic_wrong_password")
            own.verified.remember(user.username, password, user.password_hash)
        own.failures.succeeded(username, address)
        if not user.active:
            raise _Disabled()
        return user.principal()

    def _digest(self, own: OpenRosaAuthState) -> Principal:
        credentials = request.authorization
        try:
            sent = digest.parse_credentials(credentials.parameters if credentials else {})
        except digest.MalformedDigest as exc:
            raise _Unauthenticated(f"digest_malformed: {exc}") from None
        if sent.realm != own.settings.realm:
            raise _Unauthenticated("digest_other_realm")
        if not _uri_matches(sent.uri):
            raise _Unauthenticated("digest_uri_mismatch")
        nonce_state = own.nonces.check(sent.nonce)
        if nonce_state == "invalid":
            raise _Unauthenticated("digest_bad_nonce")
        address = request.remote_addr or ""
        _check_throttle(own, sent.username, address)
        user = _load_user(sent.username)
        ha1 = None
        if user is not None and _is_field_user(user) and user.digest_sealed:
            from hub.api.context import hub_runtime

            ha1 = open_digest_secret(
                hub_runtime().cipher,
                own.settings.realm,
                user.username,
                user.digest_sealed,
                sent.algorithm,
            )
        wanted = digest.expected_response(
            sent.algorithm,
            ha1 or _DUMMY_HA1,
            nonce=sent.nonce,
            nc=sent.nc,
            cnonce=sent.cnonce,
            qop=sent.qop,
            method=request.method,
            uri=sent.uri,
        )
        if not hmac.compare_digest(wanted.encode(), sent.response.encode()) or ha1 is None:
            own.failures.failed(sent.username, address)
            raise _Unauthenticated("digest_wrong_response")
        if nonce_state == "stale":
            raise _Unauthenticated("digest_stale_nonce", stale=True)
        if not own.counts.first_use(sent.nonce, sent.nc_value):
            raise _Unauthenticated("digest_replayed_nc", stale=True)
        own.failures.succeeded(sent.username, address)
        assert user is not None
        if not user.active:
            raise _Disabled()
        return user.principal()


class _Throttled(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class _Disabled(Exception):
    pass


def _check_throttle(own: OpenRosaAuthState, username: str, address: str) -> None:
    wait = own.failures.retry_after(username, address)
    if wait:
        raise _Throttled(wait)


def _basic_allowed(own: OpenRosaAuthState) -> bool:
    if request.is_secure or own.settings.allow_basic_over_http:
        return True
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _uri_matches(uri: str) -> bool:
    """The Digest ``uri`` must name this request (RFC 7616 §3.4.6): its path and query, as
    okhttp-digest and browsers send it, or the absolute URL."""
    path = request.path
    query = request.query_string.decode("latin-1")
    candidates = {path + ("?" + query if query else "")}
    candidates.add(request.url)
    if not query:
        candidates.add(path + "?")
    return uri in candidates


def _is_field_user(user: FieldUser) -> bool:
    return any(role.value == user.role for role in FIELD_ROLES)


def _load_user(username: str) -> FieldUser | None:
    from hub.api.context import hub_runtime
    from hub.ui.tables import UiUser

    name = username.strip()
    if not name or len(name) > 64:
        return None
    with hub_runtime().sessions() as session:
        row = session.execute(select(UiUser).where(UiUser.username == name)).scalar_one_or_none()
        if row is None:
            return None
        return FieldUser(
            username=row.username,
            role=row.role,
            areas=row.area_codes,
            active=bool(row.active),
            password_hash=row.password_hash,
            digest_sealed=row.digest_ha1,
        )


DEVICE_AUTH = OpenRosaAuthenticator()
