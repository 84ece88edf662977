"""Recording a program enrolment (the programs connector's beneficiary records)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.reports.tables import ENROLMENT_STATES, ProgramEnrolment
from standards.timeutil import utcnow


def program_key(code: str) -> str:
    """Programs are compared without case: the MIS writes ``CCT``, a rule may say ``cct``."""
    return code.strip().upper()


def record_enrolment(
    session: Session,
    *,
    program_code: str,
    beneficiary_number: str,
    person_id: uuid.UUID,
    status: str,
    source_system: str,
    enrolled_on: date | None = None,
    exited_on: date | None = None,
) -> bool:
    """Insert or update the enrolment; True when something changed (a redelivered record
    changes nothing). An exit keeps the row with ``status`` exited: the history stays."""
    if status not in ENROLMENT_STATES:
        raise ValueError(f"enrolment status must be one of {', '.join(ENROLMENT_STATES)}")
    code = program_key(program_code)
    row = session.scalars(
        select(ProgramEnrolment).where(
            ProgramEnrolment.program_code == code,
            ProgramEnrolment.beneficiary_number == beneficiary_number,
        )
    ).one_or_none()
    wanted = (person_id, status, enrolled_on, exited_on)
    if row is not None and (row.person_id, row.status, row.enrolled_on, row.exited_on) == wanted:
        return False
    if row is None:
        row = ProgramEnrolment(program_code=code, beneficiary_number=beneficiary_number)
        session.add(row)
    row.person_id, row.status, row.enrolled_on, row.exited_on = wanted
    row.source_system = source_system
    row.updated_at = utcnow()
    session.flush()
    return True
