"""Household facts read for a full re-score stay right after the facts change.

On PostgreSQL the full re-score reads each household's area, status, members and facts
aggregated per key from ``scoring_household_profiles``, kept by triggers
(``registry_core.scoring.profiles``); a variable limited to source systems, or a value map
meeting differing strings under one key, reads the facts themselves. Whatever the path, the
set-based values must equal the per-household Python path (``facts.raw_values``, every fact
through the ORM) for every aggregate, several sources reporting one fact, strings mapped and
unmapped, true/false, incomes of the household and of its members; after facts are added,
changed and deleted and households move or are dissolved; and the kept rows must equal rows
rebuilt from scratch.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import TextClause, Uuid, bindparam, text

from registry_core.models import SocioEconomicAttribute
from registry_core.scoring.definitions import parse_model
from registry_core.scoring.evaluate import score
from registry_core.scoring.facts import raw_values
from tests.integration.test_member_profiles import _kept_and_rebuilt
from tests.integration.test_scoring_services import AS_OF, SURVEY, activate, household, scores

ROOF = {"tin": 1, "thatch": 2, "concrete": 0}


def _fact(name: str, attribute: str, **more) -> dict:
    return {
        "name": name,
        "source": "household_attribute",
        "domain": "dwelling",
        "attribute": attribute,
        "missing": {"rule": "default", "value": -1},
        **more,
    }


MODEL = {
    "variables": [
        _fact("rooms_max", "rooms"),
        _fact("rooms_min", "rooms", aggregate="min"),
        _fact("rooms_sum", "rooms", aggregate="sum"),
        _fact("rooms_avg", "rooms", aggregate="avg"),
        _fact("rooms_count", "rooms", aggregate="count"),
        _fact("roof_max", "roof_material", value_map=ROOF),
        _fact("roof_min", "roof_material", value_map=ROOF, aggregate="min"),
        _fact("roof_sum", "roof_material", value_map=ROOF, aggregate="sum"),
        _fact("roof_avg", "roof_material", value_map=ROOF, aggregate="avg"),
        _fact("roof_plain", "roof_material"),  # strings without a map: missing
        _fact("water", "piped_water"),  # true/false
        _fact("rooms_surveyed", "rooms", source_systems=["field_survey"]),
        {
            "name": "income",
            "source": "tax_income",
            "period": "2025",
            "missing": {"rule": "default", "value": 0},
        },
        {
            "name": "income_2024",
            "source": "tax_income",
            "period": "2024",
            "source_systems": ["tax"],
            "missing": {"rule": "default", "value": 0},
        },
        {
            "name": "flood",
            "source": "gis_layer",
            "layer": "flood_risk",
            "missing": {"rule": "default", "value": 0.5},
        },
        {"name": "size", "source": "members"},
        *(
            {
                "name": name,
                "source": "members",
                "domain": "other",
                "attribute": "disability",
                **more,
            }
            for name, more in (
                ("disabled", {}),
                ("disabled_kids", {"age_max": 14}),
                ("disabled_older", {"age_min": 45}),
                ("disabled_men", {"sex": "male", "age_min": 18, "age_max": 64}),
                ("disabled_women", {"sex": "female"}),
                ("disabled_mapped", {"value_map": {"severe": 2, "none": 0}}),
                ("disabled_2024", {"period": "2024"}),
            )
        ),
    ],
    "intercept": 1.0,
}
MODEL["weights"] = {variable["name"]: 1.0 for variable in MODEL["variables"]}


def _facts_of(
    rng: random.Random, household_id: str, members: list[str]
) -> list[SocioEconomicAttribute]:
    """Several sources per fact, strings that agree or differ, booleans, odd JSON."""
    rows = []

    def add(domain, name, value, source, period="", person=None):
        rows.append(
            SocioEconomicAttribute(
                household_id=uuid.UUID(household_id),
                person_id=uuid.UUID(person) if person else None,
                domain=domain,
                name=name,
                period=period,
                value=value,
                source_system=source,
                observed_at=datetime(2026, 2, 1, tzinfo=UTC),
            )
        )

    for source in rng.sample(["census", "tax", "gis", "ngo"], rng.randint(0, 3)):
        add("dwelling", "rooms", rng.choice([1, 2, 3, 4.5, True, None, "many"]), source)
        roof = rng.choice(["tin", "thatch", "concrete", "plastic", 3, False])
        add("dwelling", "roof_material", roof, source)
        if rng.random() < 0.5:
            add("dwelling", "piped_water", rng.choice([True, False]), source)
    for person in members:
        if rng.random() < 0.3:
            value = rng.choice([0, 1, 2, True, False, "severe", "none"])
            add("other", "disability", value, rng.choice(["census", "ngo"]), "", person)
        if rng.random() < 0.2:
            add("other", "disability", rng.choice([0, 1]), "census", "2024", person)
        if rng.random() < 0.5:
            add("income", "gross_income", rng.randint(0, 50000), "tax", "2025", person)
        if rng.random() < 0.3:
            source = rng.choice(["tax", "ngo"])
            add("income", "gross_income", rng.randint(0, 50000), source, "2024", person)
    if rng.random() < 0.4:
        add("income", "gross_income", rng.randint(0, 9000), "tax", "2025")
    if rng.random() < 0.6:
        add("other", "flood_risk", rng.random(), "gis")
    return rows


def _typed(sql: str) -> TextClause:
    """A statement whose ids are bound as UUIDs (SQLite stores them as 32 hex digits)."""
    names = [name for name in ("h", "to", "f") if f":{name}" in sql]
    return text(sql).bindparams(*(bindparam(name, type_=Uuid()) for name in names))


def _registry_with_facts(registry, count: int = 30) -> list[str]:
    rng = random.Random(3)
    created = [registry.register_household(household(rng), SURVEY).record for _ in range(count)]
    with registry._ws.transaction() as session:
        for record in created:
            members = [m["id"] for m in record["members"]]
            session.add_all(_facts_of(rng, record["id"], members))
    return [record["id"] for record in created]


def _agrees_with_python(registry, ids: list[str]) -> dict[str, set]:
    activate(registry, MODEL)
    registry.scoring.rescore_all(as_of=AS_OF)
    stored = scores(registry)
    model = parse_model(MODEL)
    seen: dict[str, set] = {name: set() for name in MODEL["weights"]}
    with registry._ws.sessions() as session:
        for household_id in ids:
            expected = score(model, raw_values(session, uuid.UUID(household_id), model, AS_OF))
            if household_id not in stored:
                continue
            row = stored[household_id]
            assert row.inputs == pytest.approx(expected.inputs), household_id
            assert row.score == pytest.approx(expected.score, abs=1e-9)
            for name, value in row.inputs.items():
                seen[name].add(round(value, 6))
    return seen


def test_set_based_fact_values_equal_the_python_path(registry):
    ids = _registry_with_facts(registry)
    seen = _agrees_with_python(registry, ids)
    # the sample reaches missing and present values of every variable
    assert not [name for name, values in seen.items() if len(values) < 2], seen


def test_facts_changed_deleted_and_households_moved_keep_profiles_right(registry, db_engine):
    ids = _registry_with_facts(registry)
    with registry._ws.transaction() as session:
        session.execute(
            text(
                "UPDATE socio_economic_attributes SET value = CAST('\"thatch\"' AS JSON)"
                " WHERE name = 'roof_material' AND source_system = 'census'"
            )
        )
        session.execute(text("DELETE FROM socio_economic_attributes WHERE source_system = 'gis'"))
        session.execute(
            _typed(
                "UPDATE socio_economic_attributes SET household_id = :to WHERE household_id = :f"
                " AND person_id IS NULL"
            ),
            {"to": uuid.UUID(ids[1]), "f": uuid.UUID(ids[0])},
        )
        session.execute(
            _typed("UPDATE households SET admin_area_code = 'R09-D09' WHERE id = :h"),
            {"h": uuid.UUID(ids[2])},
        )
        session.execute(
            _typed("UPDATE households SET status = 'dissolved' WHERE id = :h"),
            {"h": uuid.UUID(ids[3])},
        )
    _agrees_with_python(registry, ids)
    stored = scores(registry)
    assert ids[3] not in stored  # dissolved: not scored
    if db_engine.dialect.name != "postgresql":
        return
    kept, built = _kept_and_rebuilt(db_engine)
    assert kept == built
    assert len(kept) == len(ids)
    areas = {str(row[0]): (row[1], row[2]) for row in kept}
    assert areas[ids[2]][0] == "R09-D09"
    assert areas[ids[3]][1] == "dissolved"


def test_a_household_without_members_or_facts_has_a_profile(registry, db_engine):
    if db_engine.dialect.name != "postgresql":
        pytest.skip("the profiles are kept by PostgreSQL triggers; SQLite reads the facts")
    ids = _registry_with_facts(registry, 3)
    with registry._ws.transaction() as session:
        session.execute(
            text("DELETE FROM socio_economic_attributes WHERE household_id = :h"), {"h": ids[0]}
        )
        session.execute(
            text("UPDATE memberships SET end_date = DATE '2026-01-01' WHERE household_id = :h"),
            {"h": ids[0]},
        )
    with db_engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT members, births, fact_keys FROM scoring_household_profiles"
                " WHERE household_id = :h"
            ),
            {"h": ids[0]},
        ).one()
    assert (row.members, list(row.births), list(row.fact_keys)) == (0, [], [])
    kept, built = _kept_and_rebuilt(db_engine)
    assert kept == built
