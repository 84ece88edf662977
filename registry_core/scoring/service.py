"""Scoring and eligibility as a registry use case: versions, activation, re-scoring, reads.

- Model and rule versions are added (never edited), checked at upload
  (``definitions.parse_model`` / ``parse_rule``), and activated one at a time per code or
  program; activation retires the version before it.
- ``rescore_all`` re-scores every household under the active models: a linear model as one
  set-based statement (``sql.rescore_statement``), a formula model row by row in Python; then
  every program whose rule uses a re-scored model is decided again (``eligibility``), with
  its events, in the same transaction.
- ``rescore_household`` does the same for one household (the scoring worker, after an event
  about it): its facts are read through the ORM (``facts``) and scored in Python.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Uuid, bindparam, case, delete, func, select, text
from sqlalchemy.orm import Session

from registry_core.db import UTCDateTime
from registry_core.errors import BusinessRuleViolation, InvalidRecord, NotFound
from registry_core.models import Household
from registry_core.scoring import eligibility
from registry_core.scoring.definitions import (
    CODE,
    ModelDefinition,
    RuleDefinition,
    parse_model,
    parse_rule,
)
from registry_core.scoring.evaluate import ScoreResult, score
from registry_core.scoring.facts import raw_values
from registry_core.scoring.sql import (
    COLUMNS,
    prepare_for_bulk,
    rescore_statement,
    upsert_tail,
    variables_select,
)
from registry_core.scoring.tables import (
    EligibilityRule,
    HouseholdEligibility,
    HouseholdScore,
    ScoringModel,
)
from registry_core.services.base import Workspace
from standards.timeutil import iso, rfc3339, utcnow

log = logging.getLogger(__name__)

PYTHON_WRITE_BATCH = 2000


@dataclass(frozen=True)
class ActiveModel:
    code: str
    version: int
    model: ModelDefinition


@dataclass
class RescoreReport:
    """What a re-score did: households per model, seconds, eligibility per program."""

    scored: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    eligibility: list[eligibility.EligibilityReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scored": dict(self.scored),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "eligibility": [vars(e) for e in self.eligibility],
        }


def model_view(row: ScoringModel) -> dict[str, Any]:
    return {
        "code": row.code,
        "version": row.version,
        "status": row.status,
        "form": "linear" if "weights" in row.definition else "formula",
        "definition": row.definition,
        "valid_from": iso(row.valid_from) if row.valid_from else None,
        "valid_to": iso(row.valid_to) if row.valid_to else None,
        "created_by": row.created_by,
        "created_at": rfc3339(row.created_at),
        "activated_at": rfc3339(row.activated_at) if row.activated_at else None,
    }


def rule_view(row: EligibilityRule) -> dict[str, Any]:
    return {
        "program_code": row.program_code,
        "version": row.version,
        "status": row.status,
        "model_code": row.model_code,
        "definition": row.definition,
        "created_by": row.created_by,
        "created_at": rfc3339(row.created_at),
        "activated_at": rfc3339(row.activated_at) if row.activated_at else None,
    }


def _check_code(code: str, what: str) -> None:
    if not re.fullmatch(CODE, code):
        raise BusinessRuleViolation(
            f"{what} {code[:70]!r} must be 2-64 of a-z, 0-9, _ and -, starting with a letter"
            " or digit"
        )


@lru_cache(maxsize=128)
def _parsed_model(document: str) -> ModelDefinition:
    """A stored definition parsed once per process (checking and compiling it again for every
    household the worker re-scores cost more than scoring it). Keyed by its JSON text:
    versions are never edited, so the text names the definition."""
    return parse_model(json.loads(document))


@lru_cache(maxsize=128)
def _parsed_rule(document: str, model: str) -> RuleDefinition:
    return parse_rule(json.loads(document), _parsed_model(model))


def stored_model(definition: Mapping[str, Any]) -> ModelDefinition:
    return _parsed_model(json.dumps(definition, sort_keys=True))


def active_models(session: Session, code: str | None = None) -> list[ActiveModel]:
    query = select(ScoringModel).where(ScoringModel.status == "active")
    if code is not None:
        query = query.where(ScoringModel.code == code)
    return [
        ActiveModel(row.code, row.version, stored_model(row.definition))
        for row in session.scalars(query.order_by(ScoringModel.code))
    ]


def active_rules(session: Session, model_codes: Sequence[str]) -> list[eligibility.ActiveRule]:
    rules = []
    query = select(EligibilityRule).where(
        EligibilityRule.status == "active", EligibilityRule.model_code.in_(list(model_codes))
    )
    for row in session.scalars(query.order_by(EligibilityRule.program_code)):
        model = _model_row(session, row.model_code)
        if model is None:
            continue  # refused at upload; a model cannot be deleted
        try:
            rule = _parsed_rule(
                json.dumps(row.definition, sort_keys=True),
                json.dumps(model.definition, sort_keys=True),
            )
        except InvalidRecord as exc:
            # A newer model version dropped a variable the rule reads: the program's decisions
            # stay as they are until a rule version that fits is activated.
            log.warning(
                "eligibility rule of %s v%s does not fit model %s v%s, not applied: %s",
                row.program_code,
                row.version,
                model.code,
                model.version,
                exc,
            )
            continue
        rules.append(eligibility.ActiveRule(row.program_code, row.version, rule))
    return rules


def _model_row(session: Session, code: str) -> ScoringModel | None:
    """The model version a rule decides with: the active one, else the newest."""
    return session.scalar(
        select(ScoringModel)
        .where(ScoringModel.code == code)
        .order_by(case((ScoringModel.status == "active", 0), else_=1), ScoringModel.version.desc())
        .limit(1)
    )


def _model_definition(session: Session, code: str) -> ModelDefinition | None:
    row = _model_row(session, code)
    return stored_model(row.definition) if row is not None else None


def _valid_on(model: ModelDefinition, day: date) -> bool:
    return (model.valid_from is None or model.valid_from <= day) and (
        model.valid_to is None or day <= model.valid_to
    )


class Scoring:
    """Scoring models, eligibility rules and the scores and decisions they give."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    # ------------------------------------------------------------------ versions

    def add_model_version(self, code: str, document: Any, created_by: str) -> dict[str, Any]:
        """Check ``document`` and store it as the next version of ``code`` (a draft)."""
        _check_code(code, "model code")
        model = parse_model(document)
        with self._ws.transaction() as session:
            latest = session.scalar(
                select(func.max(ScoringModel.version)).where(ScoringModel.code == code)
            )
            row = ScoringModel(
                code=code,
                version=(latest or 0) + 1,
                status="draft",
                definition=dict(document),
                valid_from=model.valid_from,
                valid_to=model.valid_to,
                created_by=created_by[:200],
            )
            session.add(row)
            session.flush()
            return model_view(row)

    def list_models(self, code: str | None = None) -> list[dict[str, Any]]:
        def work(session: Session) -> list[dict[str, Any]]:
            query = select(ScoringModel).order_by(ScoringModel.code, ScoringModel.version)
            if code is not None:
                query = query.where(ScoringModel.code == code)
            return [model_view(row) for row in session.scalars(query)]

        return self._ws.read(work)

    def get_model(self, code: str, version: int) -> dict[str, Any]:
        return self._ws.read(lambda s: model_view(self._model_row(s, code, version)))

    @staticmethod
    def _model_row(session: Session, code: str, version: int) -> ScoringModel:
        row = session.scalar(
            select(ScoringModel).where(ScoringModel.code == code, ScoringModel.version == version)
        )
        if row is None:
            raise NotFound("scoring model version", f"{code} v{version}")
        return row

    def activate_model(self, code: str, version: int) -> dict[str, Any]:
        """Make ``version`` the active one of ``code`` (the one before is retired). Scores
        change only when the registry is re-scored (``rescore_all``)."""
        with self._ws.transaction() as session:
            row = self._model_row(session, code, version)
            model = parse_model(row.definition)
            today = utcnow().date()
            if model.valid_to is not None and model.valid_to < today:
                raise BusinessRuleViolation(
                    f"version {version} of {code!r} was valid until {iso(model.valid_to)}"
                )
            for other in session.scalars(
                select(ScoringModel).where(
                    ScoringModel.code == code, ScoringModel.status == "active"
                )
            ):
                other.status = "retired"
            row.status, row.activated_at = "active", utcnow()
            session.flush()
            return model_view(row)

    def add_rule_version(self, program: str, document: Any, created_by: str) -> dict[str, Any]:
        """Check a program's rule against its model and store it as the next version."""
        with self._ws.transaction() as session:
            code = document.get("model_code") if isinstance(document, Mapping) else None
            model = _model_definition(session, code) if isinstance(code, str) else None
            parse_rule(document, model)
            latest = session.scalar(
                select(func.max(EligibilityRule.version)).where(
                    EligibilityRule.program_code == program
                )
            )
            row = EligibilityRule(
                program_code=program,
                version=(latest or 0) + 1,
                status="draft",
                model_code=document["model_code"],
                definition=dict(document),
                created_by=created_by[:200],
            )
            session.add(row)
            session.flush()
            return rule_view(row)

    def list_rules(self, program: str) -> list[dict[str, Any]]:
        def work(session: Session) -> list[dict[str, Any]]:
            query = (
                select(EligibilityRule)
                .where(EligibilityRule.program_code == program)
                .order_by(EligibilityRule.version)
            )
            return [rule_view(row) for row in session.scalars(query)]

        return self._ws.read(work)

    def activate_rule(self, program: str, version: int, *, decide: bool = True) -> dict[str, Any]:
        """Make ``version`` the program's active rule and (``decide``) decide every scored
        household by it at once, with its events."""
        with self._ws.transaction() as session:
            row = session.scalar(
                select(EligibilityRule).where(
                    EligibilityRule.program_code == program, EligibilityRule.version == version
                )
            )
            if row is None:
                raise NotFound("eligibility rule version", f"{program} v{version}")
            rule = parse_rule(row.definition, _model_definition(session, row.model_code))
            for other in session.scalars(
                select(EligibilityRule).where(
                    EligibilityRule.program_code == program, EligibilityRule.status == "active"
                )
            ):
                other.status = "retired"
            row.status, row.activated_at = "active", utcnow()
            session.flush()
            view = rule_view(row)
            if decide:
                active = eligibility.ActiveRule(program, version, rule)
                view["decided"] = vars(eligibility.recompute(session, active, utcnow()))
            return view

    # ------------------------------------------------------------------ scoring

    def rescore_all(self, code: str | None = None, as_of: date | None = None) -> RescoreReport:
        """Re-score every household under the active models (or ``code``'s), then decide
        the programs whose rules use them; one transaction."""
        day = as_of or utcnow().date()
        report = RescoreReport()
        with self._ws.transaction() as session:
            models = active_models(session, code)
            if code is not None and not models:
                raise NotFound("active scoring model", code)
            for active in models:
                if not _valid_on(active.model, day):
                    raise BusinessRuleViolation(
                        f"the active version {active.version} of {active.code!r} is not valid"
                        f" on {iso(day)}: activate a version that is"
                    )
                started = time.perf_counter()
                report.scored[active.code] = self._score_everyone(session, active, day)
                report.seconds[active.code] = time.perf_counter() - started
            now = utcnow()
            for rule in active_rules(session, [m.code for m in models]):
                report.eligibility.append(eligibility.recompute(session, rule, now))
        return report

    def _score_everyone(self, session: Session, active: ActiveModel, day: date) -> int:
        dialect = session.get_bind().dialect.name
        session.execute(
            delete(HouseholdScore).where(
                HouseholdScore.model_code == active.code,
                HouseholdScore.household_id.in_(
                    select(Household.id).where(Household.status == "dissolved")
                ),
            )
        )
        prepare_for_bulk(session, dialect)
        if active.model.linear:
            statement = rescore_statement(
                active.model, active.code, active.version, dialect, day, utcnow()
            ).statement
            result = session.execute(statement)
            return int(getattr(result, "rowcount", 0) or 0)
        return self._score_in_python(session, active, day, dialect)

    def _score_in_python(
        self, session: Session, active: ActiveModel, day: date, dialect: str
    ) -> int:
        """A formula model: the variables set-based in SQL, the CEL formula per household."""
        names = active.model.names()
        now = utcnow()
        insert = text(
            f"INSERT INTO household_scores ({COLUMNS}) VALUES (:household_id, :model_code,"  # noqa: S608
            " :model_version, :score, :scorable, :inputs, :contributions, :computed_at)"
            + upsert_tail(dialect)
        )
        insert = insert.bindparams(
            bindparam("household_id", type_=Uuid()),
            bindparam("inputs", type_=JSON()),
            bindparam("contributions", type_=JSON()),
            bindparam("computed_at", type_=UTCDateTime()),
        )
        batch: list[dict[str, Any]] = []
        count = 0
        rows = session.execute(variables_select(active.model, dialect, day).statement)
        for row in rows.mappings().fetchall():
            raw = {name: _float(row[f"v_{name}"]) for name in names}
            result = score(active.model, raw)
            household_id = uuid.UUID(str(row["household_id"]))
            batch.append(_score_row(household_id, active, result, now))
            if len(batch) >= PYTHON_WRITE_BATCH:
                session.execute(insert, batch)
                count += len(batch)
                batch = []
        if batch:
            session.execute(insert, batch)
            count += len(batch)
        return count

    def rescore_household(self, household_id: uuid.UUID | str, as_of: date | None = None) -> int:
        """Re-score one household under every active model and decide its programs again;
        returns how many eligibility events were written."""
        day = as_of or utcnow().date()
        key = uuid.UUID(str(household_id))
        with self._ws.transaction() as session:
            household = session.get(Household, key)
            if household is None:
                raise NotFound("household", key)
            models = [m for m in active_models(session) if _valid_on(m.model, day)]
            now = utcnow()
            for active in models:
                self._score_one(session, household, active, day, now)
            session.flush()
            changed = 0
            for rule in active_rules(session, [m.code for m in models]):
                if rule.rule.quota is not None:
                    continue  # a ranking over every household: decided by full runs only
                changed += eligibility.recompute(session, rule, now, [key]).changed
            return changed

    def _score_one(
        self, session: Session, household: Household, active: ActiveModel, day: date, now: Any
    ) -> None:
        row = session.get(HouseholdScore, (household.id, active.code))
        if household.status == "dissolved":
            if row is not None:
                session.delete(row)
            return
        result = score(active.model, raw_values(session, household.id, active.model, day))
        values = _score_row(household.id, active, result, now)
        if row is None:
            session.add(HouseholdScore(**values))
            return
        if row.score != result.score or row.model_version != active.version:
            row.previous_score, row.previous_model_version = row.score, row.model_version
            row.previous_contributions = row.contributions
        for name, value in values.items():
            setattr(row, name, value)

    # ------------------------------------------------------------------ reads

    def household_policy(self, household_id: uuid.UUID | str) -> dict[str, Any]:
        """A household's current scores (with what moved them) and eligibility per program."""
        key = uuid.UUID(str(household_id))

        def work(session: Session) -> dict[str, Any]:
            scores = session.scalars(
                select(HouseholdScore)
                .where(HouseholdScore.household_id == key)
                .order_by(HouseholdScore.model_code)
            )
            decisions = session.scalars(
                select(HouseholdEligibility)
                .where(HouseholdEligibility.household_id == key)
                .order_by(HouseholdEligibility.program_code)
            )
            return {
                "scores": [score_view(row) for row in scores],
                "eligibility": [eligibility_view(row) for row in decisions],
            }

        return self._ws.read(work)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _score_row(
    household_id: uuid.UUID, active: ActiveModel, result: ScoreResult, now: Any
) -> dict[str, Any]:
    return {
        "household_id": household_id,
        "model_code": active.code,
        "model_version": active.version,
        "score": result.score,
        "scorable": result.scorable,
        "inputs": dict(result.inputs),
        "contributions": dict(result.contributions),
        "computed_at": now,
    }


def moved_by(row: HouseholdScore) -> dict[str, float]:
    """Each variable's change of contribution since the previous score (largest first)."""
    before = row.previous_contributions or {}
    now = row.contributions or {}
    moves = {
        name: float(now.get(name, 0.0)) - float(before.get(name, 0.0))
        for name in sorted(set(now) | set(before))
    }
    return dict(sorted(((k, v) for k, v in moves.items() if v), key=lambda kv: -abs(kv[1])))


def score_view(row: HouseholdScore) -> dict[str, Any]:
    return {
        "model": row.model_code,
        "model_version": row.model_version,
        "score": row.score,
        "scorable": bool(row.scorable),
        "inputs": row.inputs,
        "contributions": row.contributions,
        "previous_score": row.previous_score,
        "previous_model_version": row.previous_model_version,
        "moved_by": moved_by(row) if row.previous_contributions is not None else {},
        "computed_at": rfc3339(row.computed_at),
    }


def eligibility_view(row: HouseholdEligibility) -> dict[str, Any]:
    return {
        "program_code": row.program_code,
        "eligible": bool(row.eligible),
        "rule_version": row.rule_version,
        "model": row.model_code,
        "model_version": row.model_version,
        "score": row.score,
        "reasons": row.reasons,
        "decided_at": rfc3339(row.decided_at),
        "changed_at": rfc3339(row.changed_at),
    }


__all__ = ["RescoreReport", "RuleDefinition", "Scoring"]
