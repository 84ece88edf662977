"""Errors as RFC 9457 problem documents, handled in one place.

Views raise; they never build error responses. Registry errors map to their HTTP status here,
schema violations list every problem with its JSON path, and anything unexpected becomes a
500 problem whose log line carries an id but no request body (it may hold personal data).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from flask import Flask, Response
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from registry_core.errors import (
    BusinessRuleViolation,
    ConflictError,
    InvalidRecord,
    NotFound,
)
from standards.validation import SchemaViolation

log = logging.getLogger(__name__)

PROBLEM_MIME = "application/problem+json"
PROBLEM_BASE = "https://schemas.socialregistry.example/problems/"


class ApiProblem(Exception):
    """An error that knows its status and renders itself."""

    status = 400
    title = "Bad Request"
    kind = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequest(ApiProblem):
    pass


class PreconditionRequired(ApiProblem):
    """A change without the version it was based on would risk a lost update."""

    status = 428
    title = "Precondition Required"
    kind = "precondition-required"


class UnprocessableRecord(ApiProblem):
    status = 422
    title = "Unprocessable Content"
    kind = "invalid-record"


def problem(
    status: int, title: str, detail: str, kind: str | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIME)
    response.headers["Cache-Control"] = "no-store"
    return response


def _violations(items: list[Any]) -> list[dict[str, str]]:
    return [v.as_dict() for v in items]


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiProblem)
    def _api_problem(error: ApiProblem) -> Response:
        return problem(error.status, error.title, error.detail, error.kind, **error.extra)

    @app.errorhandler(SchemaViolation)
    def _schema(error: SchemaViolation) -> Response:
        return problem(
            422,
            "Unprocessable Content",
            f"The record does not match the {error.schema} schema: "
            f"{len(error.violations)} problem(s), listed in 'errors'.",
            "schema-violation",
            errors=_violations(error.violations),
        )

    @app.errorhandler(InvalidRecord)
    def _invalid(error: InvalidRecord) -> Response:
        return problem(
            422,
            "Unprocessable Content",
            str(error),
            "invalid-record",
            errors=_violations(error.violations),
        )

    @app.errorhandler(NotFound)
    def _not_found(error: NotFound) -> Response:
        return problem(404, "Not Found", str(error), "not-found")

    @app.errorhandler(ConflictError)
    def _conflict(error: ConflictError) -> Response:
        extra = {} if error.current_version is None else {"current_version": error.current_version}
        return problem(409, "Conflict", str(error), "conflict", **extra)

    @app.errorhandler(BusinessRuleViolation)
    def _rule(error: BusinessRuleViolation) -> Response:
        return problem(422, "Unprocessable Content", str(error), "business-rule")

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> ResponseReturnValue:
        if error.response is not None and error.response.mimetype == PROBLEM_MIME:
            return error.response
        status = error.code or 500
        response = problem(status, error.name, error.description or error.name)
        if status == 405 and error.get_headers():
            for name, value in error.get_headers():
                if name.lower() == "allow":
                    response.headers["Allow"] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        incident = uuid.uuid4().hex[:12]
        log.error("unhandled %s (incident %s)", type(error).__name__, incident, exc_info=error)
        return problem(
            500,
            "Internal Server Error",
            f"Something went wrong on our side; quote incident {incident} to the operators.",
            "internal",
            incident=incident,
        )
