"""Reading request input at the edge: JSON bodies, paging, versions, who is asking."""

from __future__ import annotations

from typing import Any

from flask import request

from hub.api.problems import BadRequest
from hub.auth.flask_auth import current_principal
from hub.auth.roles import Role
from registry_core.service import Source

MAX_PAGE_SIZE = 200


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what was wrong with it."""
    if not request.is_json:
        raise BadRequest("send the body as JSON with 'Content-Type: application/json'")
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest("the body nests too deeply to be a record") from None
    if body is None:
        raise BadRequest("the body is not valid JSON")
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be an integer") from None
    if not minimum <= value <= maximum:
        raise BadRequest(f"query parameter {name} must be between {minimum} and {maximum}")
    return value


def expected_version(body: dict[str, Any] | None = None) -> int | None:
    """The version the caller last read: ``If-Match: "3"`` or ``"version": 3`` in the body."""
    header = request.headers.get("If-Match")
    if header:
        text = header.strip().removeprefix("W/").strip('"')
        if not text.isdigit():
            raise BadRequest('If-Match must be the version you read, e.g. If-Match: "3"')
        return int(text)
    if body is not None and "version" in body:
        version = body["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise BadRequest("version must be a positive integer")
        return version
    return None


def caller_source() -> Source:
    """Provenance for a change made through the API: field surveys versus staff corrections."""
    principal = current_principal()
    system = "registry_staff"
    if Role.field_worker in principal.roles and not principal.has_any(
        (Role.admin, Role.registry_staff)
    ):
        system = "field_survey"
    return Source(system, f"api:{principal.kind}:{principal.token_id}")
