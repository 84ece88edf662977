"""Token keys and revocations over HTTP.

- ``GET /.well-known/jwks.json`` (public): the public halves of the signing keys still
  trusted, so a gateway or a program can check a hub token offline (RFC 7517, OKP/Ed25519).
- ``POST /api/v1/tokens/revocations`` (admins): revoke one bearer token, given whole
  (``{"token": ..., "reason": ...}``: its id and expiry are read from it, once verified) or by
  its id (``{"jti": ..., "reason": ...}``: kept for the longest token lifetime). Every API
  process and dashboard session refuses it within seconds (``hub/auth/revocations.py``).
- ``GET /api/v1/tokens/revocations`` (admins, auditors): the revocations in force.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from jsonschema import Draft202012Validator

from hub.api.consents import validate
from hub.api.context import hub_runtime
from hub.api.problems import BadRequest
from hub.api.requests import json_object
from hub.auth import revocations
from hub.auth.flask_auth import EXTENSION_KEY, current_principal, public, requires
from hub.auth.roles import Role
from hub.auth.tokens import MAX_TTL_SECONDS, TokenError
from standards.timeutil import utcnow

bp = Blueprint("tokens", __name__)

REVOCATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "oneOf": [{"required": ["token"]}, {"required": ["jti"]}],
    "properties": {
        "token": {"type": "string", "minLength": 1, "maxLength": 8192},
        "jti": {"type": "string", "minLength": 1, "maxLength": revocations.MAX_JTI},
        "reason": {"type": "string", "minLength": 1, "maxLength": revocations.MAX_REASON},
    },
}
_REVOCATION = Draft202012Validator(REVOCATION_SCHEMA)


@bp.get("/.well-known/jwks.json")
@public
def jwks() -> Response:
    signer = current_app.extensions[EXTENSION_KEY].signer
    response = jsonify(signer.keys.current().jwks())
    response.headers["Cache-Control"] = "public, max-age=60"  # rotations show within a minute
    return response


@bp.post("/api/v1/tokens/revocations")
@requires(Role.admin)
def revoke_token() -> tuple[Response, int]:
    body = json_object()
    validate(_REVOCATION, body, "revocation")
    signer = current_app.extensions[EXTENSION_KEY].signer
    if "token" in body:
        try:
            principal = signer.verify(body["token"])
        except TokenError as exc:
            # an expired or already revoked token needs no revocation; a forged one cannot
            raise BadRequest(
                f"the token cannot be revoked: it is not valid ({exc.reason})"
            ) from None
        jti = principal.token_id
        expires_at = principal.expires_at or utcnow() + timedelta(seconds=MAX_TTL_SECONDS)
    else:
        jti = body["jti"]
        expires_at = utcnow() + timedelta(seconds=MAX_TTL_SECONDS)
    caller = current_principal()
    with hub_runtime().sessions.begin() as session:
        created = revocations.revoke(
            session,
            jti=jti,
            expires_at=expires_at,
            revoked_by=f"{caller.kind}:{caller.subject}",
            reason=body["reason"],
        )
    if signer.is_revoked is not None and hasattr(signer.is_revoked, "forget_cache"):
        signer.is_revoked.forget_cache()
    answer = {"jti": jti, "expires_at": expires_at.isoformat(), "revoked": True}
    return jsonify(answer), 201 if created else 200


@bp.get("/api/v1/tokens/revocations")
@requires(Role.admin, Role.auditor)
def list_revocations() -> Response:
    with hub_runtime().sessions() as session:
        return jsonify({"items": revocations.list_revoked(session)})
