"""``/ui/audit/reads``: the audit of reads for auditors and admins (``hub.readaudit``).

The same rows and filters as ``GET /api/v1/audit/reads``, newest first, with keyset pages; a
button verifies the chain (a walk over every row: on demand, not on every page load).
Registry staff do not see it: the log says what each of them looked at.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort, g, render_template, request

from hub.api.audit_reads import read_audit_log
from hub.readaudit.log import ReadFilters
from hub.readaudit.records import PURPOSE_PATTERN
from hub.ui.views import _int_arg, _text_arg, admits_auditors, bp, staff_page

READERS = ("auditor", "admin")


def _uuid_arg(name: str) -> str | None:
    raw = _text_arg(name, 64)
    if raw is None:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        abort(400, description=f"'{name}' must be a registry id (a UUID)")


@bp.route("/ui/audit/reads")
@staff_page
@admits_auditors
def read_audit() -> Any:
    if g.staff.role not in READERS:
        abort(403, description="Only auditors and administrators read the audit of reads.")
    purpose = _text_arg("purpose", 64)
    if purpose is not None and not PURPOSE_PATTERN.fullmatch(purpose):
        abort(400, description="'purpose' is a code: letters, digits and . _ : / -")
    subject = _text_arg("subject", 200)
    filters = ReadFilters(
        subject=subject,
        household_id=_uuid_arg("household_id"),
        person_id=_uuid_arg("person_id"),
        purpose=purpose,
    )
    log = read_audit_log()
    page = log.page(filters, before=_int_arg("before"))
    verdict = log.verify().as_dict() if request.args.get("verify") == "1" else None
    given = {
        "subject": subject,
        "household_id": filters.household_id,
        "person_id": filters.person_id,
        "purpose": purpose,
    }
    kept = {name: value for name, value in given.items() if value}
    return render_template("ui/read_audit.html", page=page, filters=kept, verdict=verdict)
