"""Who is using the dashboard: the session cookie, logins, CSRF tokens and the role check.

The dashboard is for people, so it uses a signed session cookie instead of bearer headers. The
cookie is signed with a key derived from the hub's JWT secret by HMAC under a fixed label:
rotating the JWT secret logs everyone out, and a cookie signature can never be replayed as a
token signature (or the other way round). The cookie is HttpOnly and SameSite=Lax; every POST
form also carries a per-session CSRF token compared in constant time.

A session stores who logged in and how (password user, token or API key) and when it ends. Each
request re-checks what can be revoked: a password user must still be active and an API key must
not be revoked, so locking someone out takes effect on their next click.

Supervisors (password users with areas) may log in too: their session carries their areas,
re-read from ``ui_users`` on every request like their role, and pages admit them only where a
view says so (``hub.ui.views.admits_supervisors``). Auditors (password users) likewise open
only the read-only pages that admit them (``admits_auditors``), and policymakers (password
users) only the policy pages of aggregates (``admits_policymakers``): never a household, a
person or a staff page. Field workers have no dashboard.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import abort, current_app, request, session
from flask.sansio.app import App

from hub.auth.roles import Principal, PrincipalKind, Role

STAFF_ROLES: frozenset[str] = frozenset({Role.registry_staff.value, Role.admin.value})
# Who may hold a dashboard session: staff, supervisors (their pages only, their areas),
# auditors (the read-only registry pages, identifiers masked) and policymakers (the policy
# pages of aggregates only).
DASHBOARD_ROLES: frozenset[str] = STAFF_ROLES | {
    Role.supervisor.value,
    Role.auditor.value,
    Role.policymaker.value,
}
SESSION_LABEL = b"srhub-ui-session-v1"
SESSION_TTL_SECONDS = 8 * 3600
CSRF_FIELD = "csrf_token"


def session_secret(jwt_secret: bytes) -> bytes:
    """The cookie-signing key: HMAC-SHA256(jwt_secret, label); never the raw JWT secret."""
    return hmac.new(jwt_secret, SESSION_LABEL, hashlib.sha256).digest()


def configure_app(app: App) -> None:
    """Give the app its cookie settings (called once when the blueprint is registered)."""
    from hub.api.context import EXTENSION_KEY
    from hub.runtime import HubRuntime

    runtime = app.extensions.get(EXTENSION_KEY)
    if not isinstance(runtime, HubRuntime):
        raise RuntimeError("the dashboard needs an app built by hub.api.create_app")
    app.secret_key = session_secret(runtime.keys.jwt_secret)
    app.config.update(
        SESSION_COOKIE_NAME="srhub_ui",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=runtime.settings.ui.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=SESSION_TTL_SECONDS),
    )


@dataclass(frozen=True)
class StaffUser:
    """The person behind this request: a display name for the audit trail and their role."""

    name: str
    role: str
    kind: str  # password | token | api_key
    areas: tuple[str, ...] = ()  # a supervisor's administrative areas; () for staff

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def principal(self) -> Principal:
        """The caller as the rest of the hub sees one (areas checked by ``may_touch_area``)."""
        kinds: dict[str, PrincipalKind] = {"token": "token", "api_key": "api_key"}
        return Principal(
            subject=self.name,
            roles=frozenset({Role(self.role)}),
            admin_areas=self.areas,
            kind=kinds.get(self.kind, "password"),
        )


# --- CSRF --------------------------------------------------------------------------------------


def csrf_token() -> str:
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def check_csrf() -> None:
    """Abort 400 unless the POSTed form carries this session's CSRF token."""
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(
            400,
            description="The form has expired or did not come from this dashboard; "
            "reload the page and try again.",
        )


# --- logins ------------------------------------------------------------------------------------


class LoginFailed(Exception):
    """Credentials refused; ``str()`` is safe to show (never says which part was wrong)."""


def _sessions() -> Any:
    from hub.api.context import hub_runtime

    return hub_runtime().sessions


def login_password(username: str, password: str) -> StaffUser:
    from hub.ui.passwords import burn_time, verify_password
    from hub.ui.tables import UiUser
    from standards.timeutil import utcnow

    with _sessions()() as db, db.begin():
        user = db.get(UiUser, username.strip()[:64]) if username.strip() else None
        if user is None:
            burn_time(password)
            raise LoginFailed("unknown user or wrong password")
        if not verify_password(password, user.password_hash) or not user.active:
            raise LoginFailed("unknown user or wrong password")
        if user.role not in DASHBOARD_ROLES:
            raise LoginFailed("this account has no dashboard role")
        user.last_login_at = utcnow()
        areas = user.area_codes if user.role == Role.supervisor.value else ()
        staff = StaffUser(user.username, user.role, "password", areas)
    _start_session(staff, credential_id=staff.name, expires=None)
    return staff


def login_token(credential: str) -> StaffUser:
    """Log in with a hub JWT or an API key (``srk_...``) that carries a staff role."""
    from hub.auth.api_keys import ApiKeyError, authenticate_api_key
    from hub.auth.flask_auth import EXTENSION_KEY as AUTH_KEY
    from hub.auth.tokens import TokenError

    credential = credential.strip()
    if not credential or len(credential) > 8192:
        raise LoginFailed("the token or key is not valid")
    try:
        if credential.startswith("srk_"):
            with _sessions()() as db, db.begin():
                principal = authenticate_api_key(db, credential)
            kind = "api_key"
        else:
            principal = current_app.extensions[AUTH_KEY].signer.verify(credential)
            kind = "token"
    except (TokenError, ApiKeyError):
        raise LoginFailed("the token or key is not valid (unknown, expired or revoked)") from None
    roles = {r.value for r in principal.roles} & STAFF_ROLES
    if not roles:
        raise LoginFailed("this token has no dashboard role (registry_staff or admin)")
    role = Role.admin.value if Role.admin.value in roles else Role.registry_staff.value
    staff = StaffUser(f"{kind}:{principal.subject}", role, kind)
    expires = principal.expires_at.timestamp() if principal.expires_at else None
    _start_session(staff, credential_id=principal.token_id, expires=expires)
    return staff


def _start_session(staff: StaffUser, *, credential_id: str, expires: float | None) -> None:
    session.clear()  # a new session id and CSRF token at each login (no session fixation)
    session.permanent = True
    ends = time.time() + SESSION_TTL_SECONDS
    session["ui"] = {
        "name": staff.name,
        "role": staff.role,
        "kind": staff.kind,
        "areas": list(staff.areas),
        "cred": credential_id,
        "exp": min(ends, expires) if expires else ends,
    }
    csrf_token()


def logout() -> None:
    session.clear()


def current_staff() -> StaffUser | None:
    """The logged-in staff member, or None (expired, revoked, locked or never logged in)."""
    data = session.get("ui")
    if not isinstance(data, dict):
        return None
    try:
        staff = StaffUser(str(data["name"]), str(data["role"]), str(data["kind"]))
        expires = float(data["exp"])
        credential_id = str(data["cred"])
    except (KeyError, TypeError, ValueError):
        return None
    current = (
        _still_valid(staff, credential_id)
        if time.time() < expires and staff.role in DASHBOARD_ROLES
        else None
    )
    if current is None:
        session.pop("ui", None)
        return None
    return current


def _still_valid(staff: StaffUser, credential_id: str) -> StaffUser | None:
    """The session's user as they are now (a supervisor's areas re-read), or None when the
    credential was revoked, the user disabled or moved to a role without a dashboard."""
    if staff.kind == "token":
        return staff  # JWTs cannot be revoked one by one; the session ends when the token does
    from hub.auth.tables import ApiKeyRow
    from hub.ui.tables import UiUser

    with _sessions()() as db:
        if staff.kind == "password":
            user = db.get(UiUser, credential_id)
            if user is None or not user.active or user.role not in DASHBOARD_ROLES:
                return None
            areas = user.area_codes if user.role == Role.supervisor.value else ()
            return StaffUser(staff.name, user.role, staff.kind, areas)
        if staff.kind == "api_key":
            row = db.get(ApiKeyRow, credential_id)
            return staff if row is not None and row.revoked_at is None else None
    return None
