"""The intake core's own errors, each with the HTTP status the API answers with."""

from __future__ import annotations


class IntakeError(Exception):
    status = 400
    kind = "bad-request"
    title = "Bad Request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class FormRefused(IntakeError):
    """An upload that is not a usable XLSForm (the reason names the sheet and row)."""

    status = 400
    kind = "invalid-xlsform"


class FormVersionExists(IntakeError):
    status = 409
    kind = "form-version-exists"
    title = "Conflict"


class IntakeNotFound(IntakeError):
    status = 404
    kind = "not-found"
    title = "Not Found"


class NotAConflict(IntakeError):
    status = 409
    kind = "not-a-conflict"
    title = "Conflict"


class OutsideAreas(IntakeError):
    status = 403
    kind = "forbidden"
    title = "Forbidden"
