"""Program eligibility from the current scores: decided, stored, and announced on change.

For one program's active rule: every household scored under the rule's model is decided
(``evaluate.decide``: scorable, score threshold, CEL condition), then the quota keeps the
first ``max_households`` in score order. A household's row in ``household_eligibility`` is
written when anything of it moved (verdict, rule or model version, score, reasons), and
``household.eligibility_changed`` is written to the outbox, in the same transaction, only
when the verdict itself changed — a household decided for the first time counts as having
been not eligible, so a first run announces the eligible households and not the others.
Dispatch then applies each program's consent as for every household event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from registry_core.models import Household
from registry_core.scoring.definitions import RuleDefinition
from registry_core.scoring.evaluate import Decision, decide
from registry_core.scoring.explain import ModelVersions, named
from registry_core.scoring.tables import HouseholdEligibility, HouseholdScore
from registry_core.services.base import REGISTRY_SOURCE
from registry_core.services.events import EligibilityChanged, emit

WRITE_BATCH = 2000


@dataclass(frozen=True)
class ActiveRule:
    """A program's active rule version, parsed."""

    program_code: str
    version: int
    rule: RuleDefinition


@dataclass
class _Candidate:
    household_id: uuid.UUID
    area: str
    score: float | None
    model_version: int | None
    decision: Decision
    before: tuple[Any, ...] | None  # (eligible, rule_version, model_version, score, reasons)
    changed_at: datetime | None = None  # when the verdict last changed


def _apply_quota(rule: RuleDefinition, candidates: list[_Candidate]) -> None:
    if rule.quota is None:
        return
    passing = [c for c in candidates if c.decision.eligible]
    passing.sort(
        key=lambda c: (
            c.score if rule.quota_order == "score_asc" else -(c.score or 0.0),
            str(c.household_id),
        )
    )
    for rank, candidate in enumerate(passing, start=1):
        within = rank <= rule.quota
        candidate.decision.reasons.append(
            {"check": "quota", "passed": within, "rank": rank, "limit": rule.quota}
        )
        if not within:
            candidate.decision = Decision(False, candidate.decision.reasons)


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    build = pg_insert if dialect == "postgresql" else sqlite_insert
    for start in range(0, len(rows), WRITE_BATCH):
        statement = build(HouseholdEligibility)
        statement = statement.on_conflict_do_update(
            index_elements=["household_id", "program_code"],
            set_={
                name: statement.excluded[name]
                for name in (
                    "rule_version",
                    "eligible",
                    "model_code",
                    "model_version",
                    "score",
                    "reasons",
                    "decided_at",
                    "changed_at",
                )
            },
        )
        session.execute(statement, rows[start : start + WRITE_BATCH])


@dataclass(frozen=True)
class EligibilityReport:
    """What one program's recomputation did."""

    program_code: str
    decided: int
    eligible: int
    written: int
    changed: int


def recompute(
    session: Session,
    active: ActiveRule,
    now: datetime,
    household_ids: Iterable[uuid.UUID] | None = None,
) -> EligibilityReport:
    """Decide ``active``'s program for every scored household (``household_ids`` None) or
    the given ones (a rule with a quota is always decided over all households)."""
    rule = active.rule
    only = None if household_ids is None or rule.quota is not None else list(household_ids)
    query = (
        select(
            HouseholdScore.household_id,
            Household.admin_area_code,
            HouseholdScore.score,
            HouseholdScore.model_version,
            HouseholdScore.input_values,
            HouseholdScore.inputs,
            HouseholdEligibility.eligible,
            HouseholdEligibility.rule_version,
            HouseholdEligibility.model_version,
            HouseholdEligibility.score,
            HouseholdEligibility.reasons,
            HouseholdEligibility.changed_at,
        )
        .join(Household, Household.id == HouseholdScore.household_id)
        .outerjoin(
            HouseholdEligibility,
            (HouseholdEligibility.household_id == HouseholdScore.household_id)
            & (HouseholdEligibility.program_code == active.program_code),
        )
        .where(HouseholdScore.model_code == rule.model_code, Household.status != "dissolved")
    )
    if only is not None:
        query = query.where(HouseholdScore.household_id.in_(only))
    candidates = []
    versions = ModelVersions(session)
    for row in session.execute(query):
        if row[3] is None:
            inputs = row[5] or {}  # recorded from outside: its inputs by name
        else:
            inputs = named(versions.get(rule.model_code, row[3]), row[4])
        decision = decide(rule, row[2], inputs, row[1])
        before = None if row[6] is None else (row[6], row[7], row[8], row[9], row[10])
        candidates.append(_Candidate(row[0], row[1], row[2], row[3], decision, before, row[11]))
    _apply_quota(rule, candidates)
    seen = {c.household_id for c in candidates}
    candidates.extend(_no_longer_scored(session, active, seen, only))
    return _write(session, active, candidates, now)


def _no_longer_scored(
    session: Session,
    active: ActiveRule,
    seen: set[uuid.UUID],
    only: list[uuid.UUID] | None,
) -> list[_Candidate]:
    """Households decided before that have no score now (dissolved, or the model changed)."""
    query = select(
        HouseholdEligibility.household_id,
        Household.admin_area_code,
        HouseholdEligibility.eligible,
        HouseholdEligibility.rule_version,
        HouseholdEligibility.model_version,
        HouseholdEligibility.score,
        HouseholdEligibility.reasons,
        HouseholdEligibility.changed_at,
    ).join(Household, Household.id == HouseholdEligibility.household_id)
    query = query.where(HouseholdEligibility.program_code == active.program_code)
    if only is not None:
        query = query.where(HouseholdEligibility.household_id.in_(only))
    gone = []
    for row in session.execute(query):
        if row[0] in seen:
            continue
        decision = Decision(False, [{"check": "scored", "passed": False}])
        gone.append(_Candidate(row[0], row[1], None, None, decision, tuple(row[2:7]), row[7]))
    return gone


def _write(
    session: Session, active: ActiveRule, candidates: list[_Candidate], now: datetime
) -> EligibilityReport:
    rows: list[dict[str, Any]] = []
    changed = 0
    for c in candidates:
        after = (
            c.decision.eligible,
            active.version,
            c.model_version,
            c.score,
            c.decision.reasons,
        )
        if c.before == after:
            continue
        previous_eligible = None if c.before is None else bool(c.before[0])
        flipped = (previous_eligible or False) != c.decision.eligible
        rows.append(
            {
                "household_id": c.household_id,
                "program_code": active.program_code,
                "rule_version": active.version,
                "eligible": c.decision.eligible,
                "model_code": active.rule.model_code,
                "model_version": c.model_version,
                "score": c.score,
                "reasons": c.decision.reasons,
                "decided_at": now,
                "changed_at": now if flipped or c.changed_at is None else c.changed_at,
            }
        )
        if flipped:
            changed += 1
            emit(
                session,
                EligibilityChanged(
                    household_id=c.household_id,
                    program_code=active.program_code,
                    eligible=c.decision.eligible,
                    previous_eligible=previous_eligible,
                    rule_version=active.version,
                    model=active.rule.model_code,
                    model_version=c.model_version,
                    score=c.score,
                    previous_score=None if c.before is None else c.before[3],
                    admin_area_code=c.area,
                    source=REGISTRY_SOURCE,
                ),
            )
    _upsert(session, rows)
    return EligibilityReport(
        active.program_code,
        decided=len(candidates),
        eligible=sum(1 for c in candidates if c.decision.eligible),
        written=len(rows),
        changed=changed,
    )
