"""Benchmark: full re-score and what-if simulation over a large registry, on PostgreSQL.

    python -m bench.policy [--households N] [--repeat R] [--keep-db]

Issue 16's targets: a full re-score at 100,000 households/s or more, and a simulation
answered in 2 s or less at 1,000,000 households. The bench builds a database of its own
(PostgreSQL named by ``SRHUB_BENCH_DATABASE_URL`` or ``SRHUB_TEST_DATABASE_URL``; else a
small SQLite one, to check that it runs), fills it set-based like ``bench.scoring`` (N
households of one to six members, dwelling facts, a GIS layer, tax incomes, disabilities;
default N = 1,000,000), and measures, best of ``--repeat`` rounds:

- ``rescore``: after one unmeasured round (every household then has a score to replace, as
  when a new version is activated), the set-based re-score of every household under the
  nine-variable model (``registry_core.scoring.rescore.score_linear``: on PostgreSQL a new
  table swapped in), as households per second;
- current policy: the program's decisions written once, set-based, from its rule (the same
  per-household SQL the simulation uses, so the bench does not wait on the per-household
  Python decision run);
- ``simulate``: ``Simulations.evaluate`` of the scenarios a policymaker asks — a higher
  threshold with the program extended to a subgroup, and new weights (scores from the
  stored values) — each the whole read-only answer: counts by area and segment, gainers,
  losers and budgets; the slower of the two is reported. A draft model with other
  variables (every fact read again) is printed beside it for information;
- ``count_baseline``: a plain ``SELECT COUNT(*) FROM households`` in the same run, what the
  machine needs just to visit the households once.

The last line is ``policy households=N rescore_per_s=X simulate_s=Y count_baseline_s=Z``.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Engine, text

from bench.scoring import MODEL, RULE, _registry, on_filled_database

SCHEDULE = {"amount": 30.0, "per": "household", "period": "month", "periods": 12}
THRESHOLD_AND_EXTENSION = {
    "name": "threshold 48, extended to households with a disabled member",
    "rules": {"bench-cct": {"threshold": {"max_score": 48.0}, "extend_to": "disabled >= 1.0"}},
    "benefits": {"bench-cct": {**SCHEDULE, "amount": 35.0}},
}
NEW_WEIGHTS = {
    "name": "income weighs double",
    "models": {"bench-pmt": {"weights": {"income": 0.001, "flood": -8.0}}},
}


def _best(rounds: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(rounds))


def _decide_current(engine: Engine, registry: Any, today: date) -> int:
    """Write the program's current decisions set-based from its active rule."""
    from registry_core.simulation.query import decided_rows
    from registry_core.simulation.service import _plans

    scenario = {"name": "current", "benefits": {"bench-cct": SCHEDULE}}
    with registry.simulations._read_only() as session:
        ((plan, _),) = _plans(session, scenario)
    rows = decided_rows(plan, engine.dialect.name, today)
    columns = (
        "household_id, program_code, rule_version, eligible, model_code, model_version, score,"
        " reasons, decided_at, changed_at"
    )
    values = (
        "d.household_id, 'bench-cct', 1, d.sim = 1, 'bench-pmt', 1, d.score,"
        " CAST('[]' AS JSON), CURRENT_TIMESTAMP, CURRENT_TIMESTAMP"
    )
    target = f"INSERT INTO household_eligibility ({columns})"
    rows.sql = f"{target} SELECT {values} FROM ({rows.sql}) d"  # noqa: S608 - constants
    with engine.begin() as conn:
        written = conn.execute(rows.bind()).rowcount
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE household_eligibility"))
    return int(written)


def measure(engine: Engine, households: int, repeat: int) -> dict[str, Any]:
    from registry_core.scoring.definitions import parse_model
    from registry_core.scoring.rescore import score_linear
    from registry_core.scoring.sql import prepare_for_bulk
    from standards.timeutil import utcnow

    registry = _registry(engine)
    scoring = registry.scoring
    version = scoring.add_model_version("bench-pmt", MODEL, "bench")["version"]
    scoring.activate_model("bench-pmt", version)
    model = parse_model(MODEL)
    today = date.today()
    dialect = engine.dialect.name

    def rescore() -> float:
        started = time.perf_counter()
        with engine.begin() as conn:
            prepare_for_bulk(conn, dialect)
            written = score_linear(conn, model, "bench-pmt", version, dialect, today, utcnow())
        seconds = time.perf_counter() - started
        assert written == households, (written, households)
        return seconds

    # The story is a new version over a registry already scored: the first re-score (into
    # an empty table, no previous rows to replace) is not measured.
    rescore()
    rescore_seconds = _best(repeat, rescore)
    if dialect == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE household_scores")
            )
    scoring.add_rule_version("bench-cct", RULE, "bench")
    scoring.activate_rule("bench-cct", 1, decide=False)
    registry.simulations.add_benefit_schedule("bench-cct", SCHEDULE, "bench")
    decided = _decide_current(engine, registry, today)
    assert decided == households, (decided, households)

    def simulate(scenario: dict[str, Any]) -> Callable[[], float]:
        def run() -> float:
            started = time.perf_counter()
            answer = registry.simulations.evaluate(copy.deepcopy(scenario))
            seconds = time.perf_counter() - started
            simulated[scenario["name"]] = answer["programs"][0]
            return seconds

        return run

    def count() -> float:
        started = time.perf_counter()
        with engine.connect() as conn:
            counted = conn.execute(text("SELECT COUNT(*) FROM households")).scalar_one()
        assert counted == households
        return time.perf_counter() - started

    simulated: dict[str, Any] = {}
    threshold_seconds = _best(repeat, simulate(THRESHOLD_AND_EXTENSION))
    weights_seconds = _best(repeat, simulate(NEW_WEIGHTS))
    draft = copy.deepcopy(MODEL)
    draft["variables"].append({"name": "men", "source": "members", "sex": "male"})
    draft["weights"]["men"] = 0.5
    draft_version = scoring.add_model_version("bench-pmt", draft, "bench")["version"]
    draft_scenario = {"name": "draft", "models": {"bench-pmt": {"version": draft_version}}}
    draft_seconds = simulate(draft_scenario)()
    count_seconds = _best(repeat, count)
    return {
        "rescore_seconds": rescore_seconds,
        "rescore_per_s": households / rescore_seconds,
        "threshold_seconds": threshold_seconds,
        "weights_seconds": weights_seconds,
        "draft_seconds": draft_seconds,
        "simulate_s": max(threshold_seconds, weights_seconds),
        "count_baseline_s": count_seconds,
        "answers": simulated,
    }


def _line(name: str, answer: dict[str, Any]) -> str:
    budget = answer["simulated"]["budget"] or {}
    return (
        f"  {name}: eligible {answer['current']['households']} -> "
        f"{answer['simulated']['households']} households, +{answer['gainers']['households']}"
        f" / -{answer['losers']['households']}, budget {budget.get('total')}"
        f" ({answer['score_source']})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)

    households, figures = on_filled_database(
        args.households, 500, args.keep_db, lambda engine, n: measure(engine, n, args.repeat)
    )
    print(
        f"full re-score: {figures['rescore_seconds']:.2f}s; simulation: threshold and"
        f" extension {figures['threshold_seconds']:.2f}s, new weights"
        f" {figures['weights_seconds']:.2f}s, draft model with another variable"
        f" {figures['draft_seconds']:.2f}s (facts read again)"
    )
    for name, answer in figures["answers"].items():
        print(_line(name, answer))
    print(
        f"policy households={households} rescore_per_s={figures['rescore_per_s']:.0f}"
        f" simulate_s={figures['simulate_s']:.2f}"
        f" count_baseline_s={figures['count_baseline_s']:.3f}"
    )


if __name__ == "__main__":
    main()
