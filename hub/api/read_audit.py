"""The audit of reads for auditors (``hub.readaudit``; docs/security.md, "Audit of reads").

- ``GET /api/v1/audit/reads``: who read which households and persons, newest first, filtered
  by ``subject``, ``household_id``, ``person_id``, ``from``/``to`` (ISO 8601 times, ``to``
  excluded), ``purpose``; keyset pages: ``before`` is the ``next_before`` of the last page.
- ``GET /api/v1/audit/reads/verify``: walks the hash chain from its anchor and says whether
  it is intact, or which row is the first broken one and why.

Only the ``auditor`` role and admins: the log says what every official looked at, which is
itself sensitive. Reading the log is not itself logged as a read: its rows hold registry
ids, never names or identifiers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from jsonschema import Draft202012Validator

from hub.api.audit_reads import read_audit_log
from hub.api.problems import BadRequest
from hub.auth.flask_auth import requires
from hub.auth.roles import MAX_SUBJECT_LENGTH, Role
from hub.readaudit.log import MAX_PAGE, ReadFilters
from hub.readaudit.records import PURPOSE_PATTERN

bp = Blueprint("read_audit", __name__, url_prefix="/api/v1/audit/reads")

AUDITORS = (Role.admin, Role.auditor)
_UUID = {"type": "string", "pattern": "^[0-9a-fA-F-]{32,36}$"}
_TIME = {"type": "string", "minLength": 10, "maxLength": 40}
_INT = {"type": "string", "pattern": "^[0-9]{1,18}$"}
QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "subject": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_SUBJECT_LENGTH,
            "pattern": "^[^\\x00-\\x1f\\x7f]+$",
        },
        "household_id": _UUID,
        "person_id": _UUID,
        "from": _TIME,
        "to": _TIME,
        "purpose": {"type": "string", "pattern": f"^{PURPOSE_PATTERN.pattern}$"},
        "before": _INT,
        "limit": _INT,
    },
}
_QUERY = Draft202012Validator(QUERY_SCHEMA)


def _query() -> dict[str, str]:
    found = {name: request.args.getlist(name)[-1] for name in request.args}
    for error in sorted(_QUERY.iter_errors(found), key=lambda e: list(e.path)):
        if error.validator == "additionalProperties":
            known = ", ".join(QUERY_SCHEMA["properties"])
            raise BadRequest(f"unknown query parameter; the parameters are: {known}")
        where = ".".join(str(p) for p in error.path) or "query"
        raise BadRequest(f"query parameter {where} is not valid: {error.validator} check failed")
    return found


def _uuid(query: dict[str, str], name: str) -> str | None:
    if name not in query:
        return None
    try:
        return str(uuid.UUID(query[name]))
    except ValueError:
        raise BadRequest(f"query parameter {name} must be a UUID") from None


def _time(query: dict[str, str], name: str) -> datetime | None:
    if name not in query:
        return None
    try:
        moment = datetime.fromisoformat(query[name].replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"query parameter {name} must be an ISO 8601 time, e.g. 2026-01-31T00:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@bp.get("")
@requires(*AUDITORS)
def list_reads() -> Response:
    query = _query()
    limit = int(query.get("limit", "50"))
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"query parameter limit must be between 1 and {MAX_PAGE}")
    filters = ReadFilters(
        subject=query.get("subject"),
        household_id=_uuid(query, "household_id"),
        person_id=_uuid(query, "person_id"),
        since=_time(query, "from"),
        until=_time(query, "to"),
        purpose=query.get("purpose"),
    )
    before = int(query["before"]) if "before" in query else None
    page = read_audit_log().page(filters, before=before, limit=limit)
    return jsonify({"items": page.items, "next_before": page.next_before, "limit": limit})


@bp.get("/verify")
@requires(*AUDITORS)
def verify_reads() -> Response:
    return jsonify(read_audit_log().verify().as_dict())
