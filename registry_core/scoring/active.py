"""The active model and rule versions, parsed once per process.

A stored definition is checked and compiled again when it is used (``definitions``); that
costs more than scoring a household, so parsed definitions are kept per process, keyed by
their JSON text (versions are never edited: the text names the definition).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from registry_core.errors import InvalidRecord
from registry_core.scoring import eligibility
from registry_core.scoring.definitions import (
    ModelDefinition,
    RuleDefinition,
    parse_model,
    parse_rule,
)
from registry_core.scoring.tables import EligibilityRule, ScoringModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveModel:
    code: str
    version: int
    model: ModelDefinition


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


def model_definition(session: Session, code: str) -> ModelDefinition | None:
    row = _model_row(session, code)
    return stored_model(row.definition) if row is not None else None


def valid_on(model: ModelDefinition, day: date) -> bool:
    return (model.valid_from is None or model.valid_from <= day) and (
        model.valid_to is None or day <= model.valid_to
    )
