"""A score computed outside the registry, recorded as a household's current score.

``Registry.record_eligibility_score`` keeps such scores (a partner's PMT, a test's fixed
score) beside the model-computed ones: the row has no model version, its inputs are what the
caller sent, and the programs whose active rule decides on that model code are decided again
for the household, with their events, in the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from registry_core.scoring import eligibility
from registry_core.scoring.active import active_rules
from registry_core.scoring.tables import HouseholdScore
from standards.timeutil import utcnow


def record_external_score(
    session: Session,
    household_id: uuid.UUID,
    model: str,
    score: float,
    inputs: Mapping[str, Any],
) -> list[str]:
    """Write the current score; returns the event types written (one per changed verdict)."""
    now = utcnow()
    row = session.get(HouseholdScore, (household_id, model))
    if row is None:
        row = HouseholdScore(household_id=household_id, model_code=model)
        session.add(row)
    elif row.score != score:
        row.previous_score, row.previous_model_version = row.score, row.model_version
        row.previous_input_values = list(row.input_values or [])
    row.model_version, row.score, row.scorable = None, float(score), True
    row.inputs, row.input_values, row.computed_at = dict(inputs), None, now
    session.flush()
    events: list[str] = []
    for rule in active_rules(session, [model]):
        if rule.rule.quota is not None:
            continue  # a ranking over every household: decided by full runs only
        report = eligibility.recompute(session, rule, now, [household_id])
        events.extend(["household.eligibility_changed"] * report.changed)
    return events
