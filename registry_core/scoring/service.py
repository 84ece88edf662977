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

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry_core.errors import BusinessRuleViolation, NotFound
from registry_core.models import Household
from registry_core.scoring import eligibility
from registry_core.scoring.active import (
    active_models,
    active_rules,
    model_definition,
    valid_on,
)
from registry_core.scoring.definitions import CODE, parse_model, parse_rule
from registry_core.scoring.explain import ModelVersions
from registry_core.scoring.rescore import score_everyone, score_one
from registry_core.scoring.tables import (
    EligibilityRule,
    HouseholdEligibility,
    HouseholdScore,
    ScoringModel,
)
from registry_core.scoring.views import eligibility_view, model_view, rule_view, score_view
from registry_core.services.base import Workspace
from standards.timeutil import iso, utcnow


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


def _check_code(code: str, what: str) -> None:
    if not re.fullmatch(CODE, code):
        raise BusinessRuleViolation(
            f"{what} {code[:70]!r} must be 2-64 of a-z, 0-9, _ and -, starting with a letter"
            " or digit"
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
            model = model_definition(session, code) if isinstance(code, str) else None
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
            rule = parse_rule(row.definition, model_definition(session, row.model_code))
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
                if not valid_on(active.model, day):
                    raise BusinessRuleViolation(
                        f"the active version {active.version} of {active.code!r} is not valid"
                        f" on {iso(day)}: activate a version that is"
                    )
                started = time.perf_counter()
                report.scored[active.code] = score_everyone(session, active, day)
                report.seconds[active.code] = time.perf_counter() - started
            now = utcnow()
            for rule in active_rules(session, [m.code for m in models]):
                report.eligibility.append(eligibility.recompute(session, rule, now))
        return report

    def rescore_household(self, household_id: uuid.UUID | str, as_of: date | None = None) -> int:
        """Re-score one household under every active model and decide its programs again;
        returns how many eligibility events were written."""
        day = as_of or utcnow().date()
        key = uuid.UUID(str(household_id))
        with self._ws.transaction() as session:
            household = session.get(Household, key)
            if household is None:
                raise NotFound("household", key)
            models = [m for m in active_models(session) if valid_on(m.model, day)]
            now = utcnow()
            for active in models:
                score_one(session, household, active, day, now)
            session.flush()
            changed = 0
            for rule in active_rules(session, [m.code for m in models]):
                if rule.rule.quota is not None:
                    continue  # a ranking over every household: decided by full runs only
                changed += eligibility.recompute(session, rule, now, [key]).changed
            return changed

    # ------------------------------------------------------------------ reads

    def household_policy(self, household_id: uuid.UUID | str) -> dict[str, Any]:
        """A household's current scores (with what moved them) and eligibility per program."""
        key = uuid.UUID(str(household_id))

        def work(session: Session) -> dict[str, Any]:
            versions = ModelVersions(session)
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
                "scores": [score_view(row, versions) for row in scores],
                "eligibility": [eligibility_view(row) for row in decisions],
            }

        return self._ws.read(work)


__all__ = ["RescoreReport", "Scoring"]
