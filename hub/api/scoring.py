"""Scoring models and program eligibility rules: versions, activation, re-scoring.

- ``GET /api/v1/scoring/models``: every version of every model (``?code=`` one model).
- ``POST /api/v1/scoring/models/<code>/versions``: a new version (draft), checked at upload:
  JSON Schema, declared variables, every CEL expression compiled (422 naming the expression,
  line and column).
- ``GET /api/v1/scoring/models/<code>/versions/<version>``: one version.
- ``POST /api/v1/scoring/models/<code>/versions/<version>/activate``: make it the active one
  and (unless ``{"rescore": false}``) re-score the registry under it at once.
- ``POST /api/v1/scoring/rescore``: re-score under every active model (``{"model": code}``:
  one), then decide the programs again.
- ``GET|POST /api/v1/programs/<program>/eligibility-rules`` and
  ``POST .../eligibility-rules/<version>/activate``: a program's rule versions.

Only admins change anything; registry staff and auditors read; a program system reads its own
program's rules. docs/policy.md.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from hub.api.context import hub_registry
from hub.api.problems import BadRequest
from hub.api.requests import json_object
from hub.auth.flask_auth import current_principal, require_program, requires
from hub.auth.roles import Role
from registry_core.errors import BusinessRuleViolation

bp = Blueprint("scoring", __name__, url_prefix="/api/v1")

CHANGERS = (Role.admin,)
READERS = (Role.admin, Role.registry_staff, Role.auditor)
RULE_READERS = (*READERS, Role.program)
MAX_CODE = 64


def _code(value: str, what: str) -> str:
    if not value or len(value) > MAX_CODE:
        raise BadRequest(f"{what} must be 1 to {MAX_CODE} characters")
    return value


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


@bp.get("/scoring/models")
@requires(*READERS)
def list_models() -> Response:
    code = request.args.get("code") or None
    return jsonify({"items": hub_registry().scoring.list_models(code)})


@bp.post("/scoring/models/<code>/versions")
@requires(*CHANGERS)
def add_model_version(code: str) -> Response:
    body = json_object()
    view = hub_registry().scoring.add_model_version(
        _code(code, "model code"), body, current_principal().subject
    )
    response = jsonify(view)
    response.status_code = 201
    response.headers["Location"] = url_for(".get_model", code=code, version=view["version"])
    return response


@bp.get("/scoring/models/<code>/versions/<int:version>")
@requires(*READERS)
def get_model(code: str, version: int) -> Response:
    return jsonify(hub_registry().scoring.get_model(_code(code, "model code"), version))


@bp.post("/scoring/models/<code>/versions/<int:version>/activate")
@requires(*CHANGERS)
def activate_model(code: str, version: int) -> Response:
    body = json_object() if request.get_data() else {}
    rescore = _flag(body, "rescore", True)
    scoring = hub_registry().scoring
    view = scoring.activate_model(_code(code, "model code"), version)
    if rescore:
        try:
            view["rescore"] = scoring.rescore_all(code).as_dict()
        except BusinessRuleViolation as exc:  # e.g. valid from a later date: active, not used
            view["rescore_skipped"] = str(exc)
    return jsonify(view)


@bp.post("/scoring/rescore")
@requires(*CHANGERS)
def rescore() -> Response:
    body = json_object() if request.get_data() else {}
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("model must be a model code")
    return jsonify(hub_registry().scoring.rescore_all(model).as_dict())


@bp.get("/programs/<program>/eligibility-rules")
@requires(*RULE_READERS)
def list_rules(program: str) -> Response:
    if not current_principal().has_any(READERS):
        require_program(program)
    return jsonify({"items": hub_registry().scoring.list_rules(_code(program, "program code"))})


@bp.post("/programs/<program>/eligibility-rules")
@requires(*CHANGERS)
def add_rule_version(program: str) -> Response:
    body = json_object()
    view = hub_registry().scoring.add_rule_version(
        _code(program, "program code"), body, current_principal().subject
    )
    response = jsonify(view)
    response.status_code = 201
    return response


@bp.post("/programs/<program>/eligibility-rules/<int:version>/activate")
@requires(*CHANGERS)
def activate_rule(program: str, version: int) -> Response:
    body = json_object() if request.get_data() else {}
    decide = _flag(body, "decide", True)
    view = hub_registry().scoring.activate_rule(
        _code(program, "program code"), version, decide=decide
    )
    return jsonify(view)
