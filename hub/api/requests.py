"""Reading request input at the edge: JSON bodies, paging, versions, who is asking."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from hub.api.problems import BadRequest, UnprocessableRecord
from hub.auth.flask_auth import current_principal
from hub.auth.roles import Role
from registry_core.service import Source
from standards.hygiene import hygiene_problems

MAX_PAGE_SIZE = 200
# A record's version fits in 18 digits; a longer If-Match is refused before int() is asked to
# read it (5,000 digits made int() raise, a 500).
MAX_VERSION_DIGITS = 18


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what was wrong with it.

    Values no record may hold (NaN, Infinity, lone surrogates, NUL and other control
    characters, bidirectional overrides, blank names: ``standards.hygiene``) are a 422 listing
    each one's path, before any view sees the body. NaN and Infinity are parsed here (they are
    not JSON) only so that the answer can say where they are.
    """
    if not request.is_json:
        raise BadRequest("send the body as JSON with 'Content-Type: application/json'")
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadRequest("the body nests too deeply to be a record") from None
    except ValueError:  # also UnicodeDecodeError and integers past Python's digit limit
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    refuse_unhygienic(body)
    return body


def refuse_unhygienic(body: Any) -> None:
    """A 422 naming every value of ``body`` that no record may hold (``standards.hygiene``)."""
    problems = [
        {"path": path, "rule": rule, "message": reason}
        for path, rule, reason in hygiene_problems(body)
    ]
    if problems:
        raise UnprocessableRecord(
            f"the body holds {len(problems)} value(s) no record may hold, listed in 'errors'",
            errors=problems[:100],
        )


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
        if not (text.isascii() and text.isdigit()) or len(text) > MAX_VERSION_DIGITS:
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
