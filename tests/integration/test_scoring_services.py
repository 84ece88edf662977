"""Scoring and eligibility against real databases (SQLite and PostgreSQL): the set-based
re-score agrees with the per-household Python path, missing-value rules, previous scores,
eligibility decisions with reasons, quotas, and exactly one event per changed verdict."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from registry_core.errors import InvalidRecord, NotFound
from registry_core.models import OutboxEvent
from registry_core.scoring.definitions import parse_model
from registry_core.scoring.evaluate import score
from registry_core.scoring.explain import ModelVersions, explain
from registry_core.scoring.facts import raw_values
from registry_core.scoring.tables import HouseholdScore
from registry_core.service import Source

SURVEY = Source("field_survey", "form-1", datetime(2026, 1, 5, 10, 0, tzinfo=UTC))
AS_OF = date(2026, 6, 1)

MODEL = {
    "description": "test PMT",
    "variables": [
        {"name": "size", "source": "members"},
        {"name": "children", "source": "members", "age_max": 14},
        {"name": "women", "source": "members", "sex": "female", "age_min": 18},
        {
            "name": "disabled",
            "source": "members",
            "domain": "other",
            "attribute": "disability",
        },
        {
            "name": "roof",
            "source": "household_attribute",
            "domain": "dwelling",
            "attribute": "roof_material",
            "value_map": {"tin": 1, "thatch": 2, "concrete": 0},
            "missing": {"rule": "default", "value": 1},
        },
        {
            "name": "rooms",
            "source": "household_attribute",
            "domain": "dwelling",
            "attribute": "rooms",
            "missing": {"rule": "not_scorable"},
        },
        {
            "name": "income",
            "source": "tax_income",
            "period": "2025",
            "missing": {"rule": "default", "value": 0},
        },
        {
            "name": "flood",
            "source": "gis_layer",
            "layer": "flood_risk",
            "missing": {"rule": "default", "value": 0.5},
        },
    ],
    "intercept": 50.0,
    "weights": {
        "size": -2.5,
        "children": -3.0,
        "women": 1.25,
        "disabled": -4.0,
        "roof": -5.0,
        "rooms": 2.0,
        "income": 0.001,
        "flood": -6.0,
    },
}


def member(given: str, sex: str, born: str, relationship: str) -> dict:
    return {
        "given_name": given,
        "family_name": "Test",
        "sex": sex,
        "birth_date": born,
        "relationship": relationship,
    }


def household(rng: random.Random) -> dict:
    members = [member("Head", rng.choice(["female", "male"]), "1980-03-04", "head")]
    for index in range(rng.randint(0, 5)):
        born = f"{rng.randint(1950, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        members.append(member(f"M{index}", rng.choice(["female", "male"]), born, "child"))
    attributes: list[dict] = []
    if rng.random() < 0.8:
        attributes.append({"domain": "dwelling", "name": "rooms", "value": rng.randint(1, 6)})
    if rng.random() < 0.7:
        roof = rng.choice(["tin", "thatch", "concrete", "plastic"])
        attributes.append({"domain": "dwelling", "name": "roof_material", "value": roof})
    if rng.random() < 0.5:
        attributes.append({"domain": "other", "name": "flood_risk", "value": rng.random()})
    for index in range(len(members)):
        if rng.random() < 0.2:
            attributes.append(
                {"domain": "other", "name": "disability", "value": True, "member_index": index}
            )
        if rng.random() < 0.3:
            attributes.append(
                {
                    "domain": "income",
                    "name": "gross_income",
                    "period": rng.choice(["2025", "2024"]),
                    "value": rng.randint(0, 90000),
                    "member_index": index,
                }
            )
    return {
        "admin_area_code": rng.choice(["R01-D01", "R02-D01"]),
        "members": members,
        "attributes": attributes,
    }


def register(registry, count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [registry.register_household(household(rng), SURVEY).record["id"] for _ in range(count)]


def activate(registry, document=MODEL, code: str = "pmt") -> int:
    version = registry.scoring.add_model_version(code, document, "tester")["version"]
    registry.scoring.activate_model(code, version)
    return version


def explained(session, row: HouseholdScore) -> SimpleNamespace:
    """A stored score's columns with its inputs and contributions by name, as read back
    (``explain``: from the stored values and the version's definition)."""
    found = explain(row, ModelVersions(session))
    columns = {c.key: getattr(row, c.key) for c in HouseholdScore.__mapper__.column_attrs}
    return SimpleNamespace(
        **{**columns, "inputs": found.inputs},
        contributions=found.contributions,
        previous_contributions=found.previous_contributions,
    )


def scores(registry, code: str = "pmt") -> dict[str, SimpleNamespace]:
    with registry._ws.sessions() as session:
        rows = session.scalars(select(HouseholdScore).where(HouseholdScore.model_code == code))
        return {str(row.household_id): explained(session, row) for row in rows}


def eligibility_events(registry) -> list[dict]:
    with registry._ws.sessions() as session:
        return [
            row.data
            for row in session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.routing_key == "household.eligibility_changed")
                .order_by(OutboxEvent.sequence)
            )
        ]


def test_set_based_rescore_agrees_with_python_on_random_households(registry):
    ids = register(registry, 40)
    activate(registry)
    report = registry.scoring.rescore_all(as_of=AS_OF)
    assert report.scored["pmt"] == 40
    stored = scores(registry)
    model = parse_model(MODEL)
    unscorable = 0
    with registry._ws.sessions() as session:
        for household_id in ids:
            expected = score(model, raw_values(session, uuid.UUID(household_id), model, AS_OF))
            row = stored[household_id]
            assert row.scorable == expected.scorable
            if expected.score is None:
                unscorable += 1
                assert row.score is None and row.contributions == {}
                continue
            assert row.score == pytest.approx(expected.score, abs=1e-9)
            assert row.inputs == pytest.approx(expected.inputs)
            assert row.contributions == pytest.approx(expected.contributions)
    # the sample has both kinds, so both paths of the missing-value rule were compared
    assert 0 < unscorable < 40


def test_missing_values_default_or_make_the_household_not_scorable(registry):
    rng = random.Random(1)
    body = household(rng)
    body["attributes"] = [{"domain": "dwelling", "name": "rooms", "value": 3}]
    with_rooms = registry.register_household(body, SURVEY).record["id"]
    body = household(rng)
    body["attributes"] = []
    without_rooms = registry.register_household(body, SURVEY).record["id"]
    activate(registry)
    registry.scoring.rescore_all(as_of=AS_OF)
    stored = scores(registry)
    assert stored[with_rooms].inputs["roof"] == 1.0  # the default
    assert stored[with_rooms].inputs["flood"] == 0.5
    assert stored[with_rooms].inputs["income"] == 0.0
    assert stored[without_rooms].score is None
    assert stored[without_rooms].inputs["rooms"] is None


def test_a_new_version_keeps_the_previous_score_and_says_what_moved_it(registry):
    (household_id,) = register(registry, 1, seed=3)
    registry.record_attributes(
        household_id, [{"domain": "dwelling", "name": "rooms", "value": 2}], SURVEY
    )
    activate(registry)
    registry.scoring.rescore_all(as_of=AS_OF)
    first = scores(registry)[household_id].score
    changed = {**MODEL, "weights": {**MODEL["weights"], "rooms": 5.0}}
    second_version = activate(registry, changed)
    registry.scoring.rescore_all(as_of=AS_OF)
    view = registry.scoring.household_policy(household_id)["scores"][0]
    assert view["model_version"] == second_version
    assert view["previous_score"] == pytest.approx(first)
    assert view["score"] == pytest.approx(first + 3.0 * 2)
    assert list(view["moved_by"]) == ["rooms"]
    assert view["moved_by"]["rooms"] == pytest.approx(6.0)


RULE = {
    "model_code": "pmt",
    "threshold": {"max_score": 40.0},
    "condition": 'children >= 1.0 && area.startsWith("R01")',
}


def test_eligibility_is_decided_with_reasons_and_each_change_emits_one_event(registry):
    ids = register(registry, 30, seed=11)
    for household_id in ids:
        registry.record_attributes(
            household_id, [{"domain": "dwelling", "name": "rooms", "value": 1}], SURVEY
        )
    activate(registry)
    registry.scoring.rescore_all(as_of=AS_OF)
    version = registry.scoring.add_rule_version("cct", RULE, "tester")["version"]
    decided = registry.scoring.activate_rule("cct", version)["decided"]
    stored = scores(registry)
    expected = {
        h
        for h, row in stored.items()
        if row.score is not None
        and row.score <= 40.0
        and row.inputs["children"] >= 1
        and registry.get_household(h)["admin_area_code"].startswith("R01")
    }
    assert expected and len(expected) < len(ids)
    assert decided["eligible"] == len(expected)
    events = eligibility_events(registry)
    assert {e["household_id"] for e in events} == expected
    assert all(e["eligible"] and e["previous_eligible"] is None for e in events)
    assert all(e["program_code"] == "cct" and e["rule_version"] == version for e in events)
    one = registry.scoring.household_policy(next(iter(expected)))["eligibility"][0]
    assert [r["check"] for r in one["reasons"]] == ["max_score", "condition"]
    # a second run changes nothing and announces nothing
    registry.scoring.rescore_all(as_of=AS_OF)
    assert len(eligibility_events(registry)) == len(expected)


def test_incremental_rescore_flips_one_household_and_emits_exactly_one_event(registry):
    rng = random.Random(5)
    body = household(rng)
    body["admin_area_code"] = "R01-D09"
    body["members"] = [member("Head", "female", "1980-01-01", "head")]
    body["attributes"] = [{"domain": "dwelling", "name": "rooms", "value": 1}]
    household_id = registry.register_household(body, SURVEY).record["id"]
    activate(registry)
    registry.scoring.rescore_all(as_of=AS_OF)
    version = registry.scoring.add_rule_version("cct", RULE, "tester")["version"]
    registry.scoring.activate_rule("cct", version)
    assert eligibility_events(registry) == []  # no child: not eligible, nothing announced
    registry.add_member(household_id, member("Baby", "male", "2025-05-05", "child"), SURVEY)
    assert registry.scoring.rescore_household(household_id, as_of=AS_OF) == 1
    assert registry.scoring.rescore_household(household_id, as_of=AS_OF) == 0
    (event,) = eligibility_events(registry)
    assert event["household_id"] == household_id
    assert event["eligible"] is True and event["previous_eligible"] is False
    row = scores(registry)[household_id]
    assert row.inputs["children"] == 1 and row.previous_score is not None


def test_a_quota_keeps_the_poorest_households(registry):
    register(registry, 20, seed=13)
    activate(registry)
    registry.scoring.rescore_all(as_of=AS_OF)
    rule = {"model_code": "pmt", "quota": {"max_households": 3, "order": "score_asc"}}
    version = registry.scoring.add_rule_version("pilot", rule, "tester")["version"]
    registry.scoring.activate_rule("pilot", version)
    eligible = {e["household_id"] for e in eligibility_events(registry)}
    ranked = sorted((row.score, h) for h, row in scores(registry).items() if row.score is not None)
    assert eligible == {h for _, h in ranked[:3]}


def test_a_formula_model_is_scored_in_python_with_the_same_variables(registry):
    ids = register(registry, 10, seed=17)
    formula = {
        "variables": [
            {"name": "size", "source": "members"},
            {"name": "children", "source": "members", "age_max": 14},
        ],
        "formula": "size > 3.0 ? 10.0 - children : 20.0 - 2.0 * children",
    }
    activate(registry, formula, code="pmt-cel")
    registry.scoring.rescore_all("pmt-cel", as_of=AS_OF)
    stored = scores(registry, "pmt-cel")
    model = parse_model(formula)
    with registry._ws.sessions() as session:
        for household_id in ids:
            raw = raw_values(session, uuid.UUID(household_id), model, AS_OF)
            assert stored[household_id].score == pytest.approx(score(model, raw).score)


def test_uploads_are_refused_with_the_reason(registry):
    with pytest.raises(InvalidRecord, match=r"formula.*not allowed"):
        registry.scoring.add_model_version(
            "bad",
            {"variables": [{"name": "x", "source": "members"}], "formula": "exec(x)"},
            "tester",
        )
    with pytest.raises(InvalidRecord, match="no scoring model"):
        registry.scoring.add_rule_version("cct", {"model_code": "nothing"}, "tester")
    with pytest.raises(NotFound):
        registry.scoring.activate_model("pmt", 9)


def test_a_rule_that_no_longer_fits_the_model_is_skipped_and_decisions_stay(registry):
    ids = register(registry, 12, seed=19)
    for household_id in ids:
        registry.record_attributes(
            household_id, [{"domain": "dwelling", "name": "rooms", "value": 1}], SURVEY
        )
    activate(registry)
    registry.scoring.rescore_all(as_of=AS_OF)
    version = registry.scoring.add_rule_version("cct", RULE, "tester")["version"]
    registry.scoring.activate_rule("cct", version)
    before = len(eligibility_events(registry))
    without_children = {
        **MODEL,
        "variables": [v for v in MODEL["variables"] if v["name"] != "children"],
        "weights": {k: v for k, v in MODEL["weights"].items() if k != "children"},
    }
    activate(registry, without_children)
    report = registry.scoring.rescore_all(as_of=AS_OF)
    assert report.scored["pmt"] == 12 and report.eligibility == []  # cct skipped, not failed
    assert len(eligibility_events(registry)) == before
    assert registry.scoring.rescore_household(ids[0], as_of=AS_OF) == 0


def test_one_household_at_a_time_leaves_a_quota_to_the_full_runs(registry):
    ids = register(registry, 6, seed=23)
    for household_id in ids:
        registry.record_attributes(
            household_id, [{"domain": "dwelling", "name": "rooms", "value": 2}], SURVEY
        )
    activate(registry)
    registry.scoring.rescore_all(as_of=AS_OF)
    rule = {"model_code": "pmt", "quota": {"max_households": 2}}
    version = registry.scoring.add_rule_version("pilot", rule, "t")["version"]
    registry.scoring.activate_rule("pilot", version)

    def eligible() -> set[str]:
        return {
            h for h in ids if registry.scoring.household_policy(h)["eligibility"][0]["eligible"]
        }

    first = eligible()
    outsider = next(h for h in ids if h not in first)
    for index in range(6):  # six young children: the lowest score of all
        registry.add_member(outsider, member(f"Kid{index}", "male", "2024-01-01", "child"), SURVEY)
    registry.scoring.rescore_household(outsider, as_of=AS_OF)
    assert eligible() == first  # the ranking waits for a full run
    registry.scoring.rescore_all(as_of=AS_OF)
    assert outsider in eligible() and len(eligible()) == 2
