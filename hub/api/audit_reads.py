"""Recording reads of personal data made through the HTTP routes (``hub.readaudit``).

A view that returns households or persons calls ``record_read`` with what it returns, just
before it returns it: the caller comes from the request's principal (or the dashboard's
staff user), the route from the URL rule (never the URL: no query values), the purpose from
``X-Purpose-Of-Use`` or ``?purpose=`` (else the program's subscription purpose, else
``unspecified``). The row is written before the answer leaves; if it cannot be written the
answer is an error, not an unrecorded read.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Response, current_app, request

from hub.api.context import hub_runtime
from hub.api.problems import BadRequest
from hub.auth.flask_auth import current_principal
from hub.auth.roles import Principal
from hub.readaudit.log import ReadAuditLog
from hub.readaudit.records import InvalidPurpose, ReadEntry, ReadRecords, clean_purpose
from hub.subscriptions.purpose import subscription_purpose

PURPOSE_HEADER = "X-Purpose-Of-Use"
PURPOSE_PARAM = "purpose"


EXTENSION_KEY = "srhub_read_audit"
_build_lock = threading.Lock()


def read_audit_log() -> ReadAuditLog:
    """The app's one ReadAuditLog (built on first use), so concurrent requests' rows share
    commits (``hub.readaudit.log.GroupCommit``)."""
    log = current_app.extensions.get(EXTENSION_KEY)
    if isinstance(log, ReadAuditLog):
        return log
    with _build_lock:
        log = current_app.extensions.get(EXTENSION_KEY)
        if not isinstance(log, ReadAuditLog):
            log = ReadAuditLog(hub_runtime().sessions)
            current_app.extensions[EXTENSION_KEY] = log
    return log


def requested_purpose() -> str | None:
    """The purpose the request names (header first), checked; 400 when it is not a code."""
    raw = request.headers.get(PURPOSE_HEADER) or request.args.get(PURPOSE_PARAM)
    try:
        return clean_purpose(raw)
    except InvalidPurpose as error:
        raise BadRequest(str(error)) from None


def program_purpose(program: str) -> str | None:
    """The purpose of ``program``'s subscriptions when they all name one."""
    with hub_runtime().sessions() as session:
        return subscription_purpose(session, program)


def purpose_of_use(principal: Principal) -> str | None:
    purpose = requested_purpose()
    if purpose is None and principal.program:
        purpose = program_purpose(principal.program)
    return purpose


def route_of_request() -> str:
    rule = request.url_rule.rule if request.url_rule is not None else "?"
    return f"{request.method} {rule}"


def record_read(
    records: ReadRecords,
    channel: str,
    *,
    principal: Principal | None = None,
    query_kind: str = "",
) -> None:
    """Append one read-audit row for this request's read of ``records``."""
    who = principal or current_principal()
    entry = ReadEntry.by(who, channel, route_of_request(), records, purpose_of_use(who), query_kind)
    read_audit_log().append(entry)


F = TypeVar("F", bound=Callable[..., Any])
PATH_IDS = frozenset({"household_id", "person_id"})


def audited_read(channel: str = "api", query_kind: str = "") -> Callable[[F], F]:
    """Record what a view's JSON answer names (``ReadRecords.found_in``) as a read, before
    the answer leaves. Placed right above the view function, under the route and role
    decorators, so only an allowed, successful read is recorded. An answer naming nobody
    records nothing."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def audited(*args: Any, **kwargs: Any) -> Response:
            answer = current_app.make_response(view(*args, **kwargs))
            if answer.status_code == 200 and answer.is_json:
                # The household or person the path names is read too (its consents, its
                # change requests), even when the answer's items do not repeat its id.
                named = {k: str(v) for k, v in kwargs.items() if k in PATH_IDS}
                records = ReadRecords.found_in([named, answer.get_json(silent=True)])
                if records:
                    record_read(records, channel, query_kind=query_kind)
            return answer

        return cast(F, audited)

    return wrap
