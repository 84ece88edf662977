"""The sandbox field team's plan: the most populous districts, one per enumerator, and the
households kept out of the seed are exactly the ones the team will register."""

from __future__ import annotations

from hub.sandbox_field_team import district_of, plan_team
from sandbox_mocks.population import iter_households


def test_the_team_takes_the_busiest_districts_and_the_seed_keeps_the_rest() -> None:
    households = list(iter_households(42, 2000))
    plan = plan_team(households, size=2, per_enumerator=7)
    counts: dict[str, int] = {}
    for h in households:
        counts[district_of(h)] = counts.get(district_of(h), 0) + 1
    busiest = sorted(counts, key=lambda d: (-counts[d], d))[:2]
    assert list(plan.districts) == busiest
    for district, work in plan.assignments.items():
        assert len(work) == 7 and all(district_of(h) == district for h in work)
    seeded = plan.seeded(households)
    assert len(seeded) == len(households) - 14
    assert not {h.household_key for h in seeded} & plan.reserved_keys
    # A district the team does not cover is seeded whole.
    other = next(d for d in counts if d not in busiest)
    assert sum(district_of(h) == other for h in seeded) == counts[other]
