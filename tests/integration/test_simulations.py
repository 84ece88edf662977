"""What-if simulations against real databases (SQLite and PostgreSQL): counts, gainers,
losers, areas, segments and budgets equal answers computed here, in plain Python, from the
fixture households themselves; nothing in the registry changes; saved runs compare."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from registry_core.errors import ConflictError, InvalidRecord
from registry_core.service import Source

SURVEY = Source("field_survey", "form-1", datetime(2026, 1, 5, 10, 0, tzinfo=UTC))
AS_OF = date(2026, 6, 1)
AREAS = ("R01-D01", "R01-D02", "R02-D01")
MODEL = {
    "variables": [
        {"name": "size", "source": "members"},
        {"name": "children", "source": "members", "age_max": 14},
        {
            "name": "rooms",
            "source": "household_attribute",
            "domain": "dwelling",
            "attribute": "rooms",
            "missing": {"rule": "not_scorable"},
        },
    ],
    "intercept": 20.0,
    "weights": {"size": -2.0, "children": -3.0, "rooms": 1.5},
}
RULE = {"model_code": "pmt", "threshold": {"max_score": 12.0}, "condition": "children >= 1.0"}
MONTHLY = {"amount": 40.0, "per": "household", "period": "month", "periods": 12}
REGISTRY_TABLES = (
    "households",
    "persons",
    "memberships",
    "socio_economic_attributes",
    "household_scores",
    "household_eligibility",
    "eligibility_rules",
    "scoring_models",
    "outbox",
)


def fixture_households(count: int, seed: int = 11) -> list[dict]:
    """Households whose size, children and rooms are known here (children born 2019, adults
    1979: far from any age boundary on AS_OF and today)."""
    rng = random.Random(seed)
    bodies = []
    for index in range(count):
        adults, children = rng.randint(1, 3), rng.randint(0, 4)
        members = [
            {
                "given_name": f"A{k}",
                "family_name": f"F{index}",
                "sex": "female" if k % 2 else "male",
                "birth_date": "1979-05-05",
                "relationship": "head" if k == 0 else "spouse",
            }
            for k in range(adults)
        ] + [
            {
                "given_name": f"C{k}",
                "family_name": f"F{index}",
                "sex": "male",
                "birth_date": "2019-07-07",
                "relationship": "child",
            }
            for k in range(children)
        ]
        rooms = rng.randint(1, 5) if rng.random() < 0.85 else None
        attributes = [{"domain": "dwelling", "name": "rooms", "value": rooms}] if rooms else []
        bodies.append(
            {
                "admin_area_code": AREAS[index % len(AREAS)],
                "members": members,
                "attributes": attributes,
                "_known": {"size": adults + children, "children": children, "rooms": rooms},
            }
        )
    return bodies


def known_score(known: dict, weights: dict, intercept: float = 20.0) -> float | None:
    if known["rooms"] is None:
        return None
    return intercept + sum(weights[name] * known[name] for name in ("size", "children", "rooms"))


@pytest.fixture
def world(registry):
    """Registered fixture households, the model active and scored, the rule decided."""
    bodies = fixture_households(45)
    households = []
    for body in bodies:
        known = body.pop("_known")
        record = registry.register_household(body, SURVEY).record
        households.append({"id": record["id"], "area": body["admin_area_code"], **known})
    scoring = registry.scoring
    version = scoring.add_model_version("pmt", MODEL, "tester")["version"]
    scoring.activate_model("pmt", version)
    scoring.rescore_all(as_of=AS_OF)
    rule = scoring.add_rule_version("cct", RULE, "tester")["version"]
    scoring.activate_rule("cct", rule)
    registry.simulations.add_benefit_schedule("cct", MONTHLY, "tester")
    return households


def current(h: dict) -> bool:
    score = known_score(h, MODEL["weights"])
    return score is not None and score <= 12.0 and h["children"] >= 1


def expected(households: list[dict], simulated) -> dict:
    cur = [h for h in households if current(h)]
    sim = [h for h in households if simulated(h)]
    gain = [h for h in sim if h not in cur]
    lose = [h for h in cur if h not in sim]
    return {
        "current": (len(cur), sum(h["size"] for h in cur)),
        "simulated": (len(sim), sum(h["size"] for h in sim)),
        "gainers": (len(gain), sum(h["size"] for h in gain)),
        "losers": (len(lose), sum(h["size"] for h in lose)),
        "cur": cur,
        "sim": sim,
    }


def program(result: dict, code: str = "cct") -> dict:
    (found,) = [p for p in result["programs"] if p["program"] == code]
    return found


def assert_totals(answer: dict, want: dict) -> None:
    for side in ("current", "simulated", "gainers", "losers"):
        got = (answer[side]["households"], answer[side]["people"])
        assert got == want[side], side


def snapshot(registry) -> dict[str, str]:
    """Every registry table's rows, hashed: equal snapshots mean nothing was written."""
    digests = {}
    with registry._ws.sessions() as session:
        for table in REGISTRY_TABLES:
            rows = session.execute(text(f"SELECT * FROM {table}")).fetchall()  # noqa: S608
            body = json.dumps(sorted(repr(tuple(r)) for r in rows))
            digests[table] = hashlib.sha256(body.encode()).hexdigest()
    return digests


def test_a_higher_threshold_adds_exactly_the_households_it_should(registry, world):
    want = expected(
        world,
        lambda h: (
            (s := known_score(h, MODEL["weights"])) is not None and s <= 16.0 and h["children"] >= 1
        ),
    )
    assert want["gainers"][0] > 0  # the fixture exercises the change
    before = snapshot(registry)
    result = registry.simulations.evaluate(
        {"name": "t16", "as_of": "2026-06-01", "rules": {"cct": {"threshold": {"max_score": 16}}}}
    )
    assert snapshot(registry) == before
    answer = program(result)
    assert answer["score_source"] == "stored"
    assert_totals(answer, want)
    assert answer["losers"]["households"] == 0
    # budgets: 40 a month per household for 12 months, both sides on the same schedule
    assert answer["current"]["budget"]["total"] == 40.0 * 12 * want["current"][0]
    assert answer["simulated"]["budget"]["total"] == 40.0 * 12 * want["simulated"][0]
    # by area, level 1 (R01, R02)
    by_area = {row["area"]: row for row in answer["by_area"]}
    for region in ("R01", "R02"):
        members = [h for h in want["sim"] if h["area"].startswith(region)]
        assert by_area.get(region, {}).get("simulated_households", 0) == len(members)
    # by household size band
    by_segment = {row["segment"]: row for row in answer["by_segment"]}
    for label, low, high in (("1", 1, 1), ("2-3", 2, 3), ("4-5", 4, 5), ("6+", 6, 99)):
        members = [h for h in want["sim"] if low <= h["size"] <= high]
        assert by_segment.get(label, {}).get("simulated_households", 0) == len(members)


def test_new_weights_rescore_from_stored_inputs(registry, world):
    weights = {**MODEL["weights"], "rooms": 0.5}
    want = expected(
        world,
        lambda h: (s := known_score(h, weights)) is not None and s <= 12.0 and h["children"] >= 1,
    )
    assert want["gainers"] != want["losers"]  # the new weights move somebody
    result = registry.simulations.evaluate(
        {"name": "w", "as_of": "2026-06-01", "models": {"pmt": {"weights": {"rooms": 0.5}}}}
    )
    answer = program(result)
    assert answer["score_source"] == "reweighted"
    assert_totals(answer, want)


def test_a_draft_model_with_other_variables_is_scored_from_the_facts(registry, world):
    draft = json.loads(json.dumps(MODEL))
    draft["variables"].append({"name": "adults", "source": "members", "age_min": 18})
    draft["weights"] = {"size": -2.0, "children": -3.0, "rooms": 1.5, "adults": 1.0}
    version = registry.scoring.add_model_version("pmt", draft, "tester")["version"]

    def simulated(h: dict) -> bool:
        base = known_score(h, MODEL["weights"])
        if base is None:
            return False
        return base + (h["size"] - h["children"]) <= 12.0 and h["children"] >= 1

    want = expected(world, simulated)
    assert want["losers"][0] > 0  # adults now raise the score
    before = snapshot(registry)
    result = registry.simulations.evaluate(
        {"name": "d", "as_of": "2026-06-01", "models": {"pmt": {"version": version}}}
    )
    assert snapshot(registry) == before
    answer = program(result)
    assert answer["score_source"] == "rescored"
    assert_totals(answer, want)


def test_extending_to_a_subgroup_and_a_quota(registry, world):
    def extended(h: dict) -> bool:
        return current(h) or (
            h["rooms"] is not None and h["area"].startswith("R02") and h["children"] == 0
        )

    want = expected(world, extended)
    assert want["gainers"][0] > 0
    result = registry.simulations.evaluate(
        {
            "name": "x",
            "as_of": "2026-06-01",
            "rules": {"cct": {"extend_to": 'area.startsWith("R02") && children == 0.0'}},
        }
    )
    assert_totals(program(result), want)

    ranked = sorted(
        (h for h in world if current(h)),
        key=lambda h: (known_score(h, MODEL["weights"]), h["id"]),
    )
    assert len(ranked) > 4
    kept = {h["id"] for h in ranked[:3]}
    want = expected(world, lambda h: h["id"] in kept)
    result = registry.simulations.evaluate(
        {"name": "q", "rules": {"cct": {"quota": {"max_households": 3}}}}
    )
    assert_totals(program(result), want)
    assert program(result)["losers"]["households"] == len(ranked) - 3


def test_a_new_program_with_a_per_person_schedule_and_a_cap(registry, world):
    rule = {"model_code": "pmt", "threshold": {"max_score": 10.0}}
    schedule = {"amount": 5.0, "per": "person", "periods": 6, "max_persons": 4}
    want = [h for h in world if (s := known_score(h, MODEL["weights"])) is not None and s <= 10.0]
    result = registry.simulations.evaluate(
        {
            "name": "n",
            "rules": {"grant": {"definition": rule}},
            "benefits": {"grant": schedule},
            "segment": {"variable": "children", "bands": [0, 1, 3]},
        }
    )
    answer = program(result, "grant")
    assert answer["current"]["households"] == 0 and answer["current"]["budget"] is None
    assert answer["simulated"]["households"] == len(want)
    paid = sum(min(h["size"], 4) for h in want)
    assert answer["simulated"]["budget"]["total"] == 5.0 * paid * 6
    by_segment = {row["segment"]: row["simulated_households"] for row in answer["by_segment"]}
    assert by_segment.get("0", 0) == sum(1 for h in want if h["children"] == 0)
    assert by_segment.get("1-2", 0) == sum(1 for h in want if 1 <= h["children"] <= 2)
    assert by_segment.get("3+", 0) == sum(1 for h in want if h["children"] >= 3)


def test_saved_named_comparable_and_the_changed_households_listed(registry, world):
    sims = registry.simulations
    first = sims.run(
        {"name": "threshold 16", "rules": {"cct": {"threshold": {"max_score": 16}}}}, "a"
    )
    second = sims.run(
        {"name": "threshold 8", "rules": {"cct": {"threshold": {"max_score": 8}}}}, "a"
    )
    with pytest.raises(ConflictError):
        sims.run({"name": "threshold 8"}, "a")
    assert {s["name"] for s in sims.list()} == {"threshold 8", "threshold 16"}
    compared = sims.compare([first["id"], second["id"]])
    (cct,) = compared["programs"]
    sides = {s["name"]: s for s in cct["scenarios"]}
    assert (
        sides["threshold 16"]["simulated"]["households"]
        >= sides["threshold 8"]["simulated"]["households"]
    )
    assert sides["threshold 16"]["current"] == sides["threshold 8"]["current"]

    want = expected(
        world,
        lambda h: (
            (s := known_score(h, MODEL["weights"])) is not None and s <= 8.0 and h["children"] >= 1
        ),
    )
    listed = sims.changed_households(second["id"], "cct", "lose", limit=1000)
    assert sorted(i["household_id"] for i in listed["items"]) == sorted(
        h["id"] for h in want["cur"] if h not in want["sim"]
    )
    page = sims.changed_households(second["id"], "cct", "lose", limit=2, offset=1)
    assert [i["household_id"] for i in page["items"]] == [
        i["household_id"] for i in listed["items"]
    ][1:3]


def test_the_simulation_transaction_cannot_write(registry, world):
    sims = registry.simulations
    before = snapshot(registry)
    dialect = registry._ws.sessions().get_bind().dialect.name
    if dialect == "postgresql":
        with pytest.raises(DBAPIError, match="read-only"), sims._read_only() as session:
            session.execute(text("DELETE FROM household_eligibility"))
    else:
        with sims._read_only() as session:
            session.execute(text("DELETE FROM household_eligibility"))
    assert snapshot(registry) == before


def test_refusals_say_where(registry, world):
    sims = registry.simulations
    with pytest.raises(InvalidRecord, match="extend_to"):
        sims.evaluate({"name": "e", "rules": {"cct": {"extend_to": "bogus >= 1.0"}}})
    with pytest.raises(InvalidRecord, match="cannot be simulated"):
        sims.evaluate({"name": "m", "rules": {"cct": {"condition": "size / size >= 1.0"}}})
    with pytest.raises(InvalidRecord, match="segment"):
        sims.evaluate({"name": "s", "benefits": {"cct": MONTHLY}, "segment": {"variable": "nope"}})


# ---------------------------------------------------------------------------- formula models

FORMULA = "size > 3.0 ? 18.0 - 2.0 * children + rooms / 2.0 : 16.0 - children * 3.0 + 1.5 * rooms"


def decided_now(registry, program_code: str = "cct") -> set[str]:
    with registry._ws.sessions() as session:
        rows = session.execute(
            text(
                "SELECT household_id FROM household_eligibility"
                " WHERE program_code = :p AND eligible"
            ),
            {"p": program_code},
        ).fetchall()
    return {str(uuid.UUID(str(row[0]))) for row in rows}


def simulated_set(registry, simulation_id: str, current_set: set[str]) -> set[str]:
    sims = registry.simulations
    gain = sims.changed_households(simulation_id, "cct", "gain", limit=500)["items"]
    lose = sims.changed_households(simulation_id, "cct", "lose", limit=500)["items"]
    return (current_set - {i["household_id"] for i in lose}) | {i["household_id"] for i in gain}


@pytest.mark.parametrize("other_variables", [False, True], ids=["stored_inputs", "from_facts"])
def test_a_formula_model_simulates_as_a_real_rescore_decides(registry, world, other_variables):
    """The simulated verdicts of a draft formula model are the verdicts a real activation of
    that model (full re-score and decision) gives, household by household."""
    draft = json.loads(json.dumps(MODEL))
    del draft["weights"], draft["intercept"]
    draft["formula"] = FORMULA
    if other_variables:  # a variable the active model lacks: the facts are read again
        draft["variables"].append({"name": "adults", "source": "members", "age_min": 18})
        draft["formula"] = FORMULA + " - adults * 0.75"
    version = registry.scoring.add_model_version("pmt", draft, "tester")["version"]
    current_set = decided_now(registry)
    before = snapshot(registry)
    saved = registry.simulations.run(
        {"name": f"formula {other_variables}", "models": {"pmt": {"version": version}}}, "t"
    )
    answer = program(saved["result"])
    assert answer["score_source"] == ("rescored" if other_variables else "reweighted")
    simulated = simulated_set(registry, saved["id"], current_set)
    assert snapshot(registry) == before  # running and listing changed nothing in the registry
    assert simulated != current_set  # the formula moves somebody
    assert answer["simulated"]["households"] == len(simulated)

    registry.scoring.activate_model("pmt", version)  # the real thing: re-score and decide
    registry.scoring.rescore_all()
    assert decided_now(registry) == simulated
    people = {h["id"]: h["size"] for h in world}
    assert answer["simulated"]["people"] == sum(people[h] for h in simulated)


def test_a_formula_outside_the_translated_subset_is_refused_with_its_place(registry, world):
    draft = json.loads(json.dumps(MODEL))
    del draft["weights"], draft["intercept"]
    draft["formula"] = "20.0 -\n  size / children"
    version = registry.scoring.add_model_version("pmt", draft, "tester")["version"]
    before = snapshot(registry)
    with pytest.raises(InvalidRecord) as refused:
        registry.simulations.evaluate({"name": "f", "models": {"pmt": {"version": version}}})
    (violation,) = refused.value.violations
    assert violation.path == "$.models.pmt.formula"
    assert "'/'" in violation.message and "line 2, column 8" in violation.message
    assert snapshot(registry) == before
