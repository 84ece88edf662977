"""Benchmark: re-scoring the whole registry under a new model version, set-based.

    python -m bench.scoring [--households N] [--repeat R] [--keep-db]

The story is issue 16's: an administrator activates a new PMT model version and every
household must carry its new score. The bench builds a database of its own — PostgreSQL when
``SRHUB_BENCH_DATABASE_URL`` (or ``SRHUB_TEST_DATABASE_URL``) names a server (a database
``<name>_scoring_<run id>``, dropped afterwards unless ``--keep-db``), else a temporary SQLite
file — migrated to head, and fills it set-based (``generate_series``): N households of one to
six members with birth dates and sexes, dwelling facts (rooms, roof material as text), a GIS
layer, tax incomes of about a third of the people and disabilities of a tenth.

The model has eight variables of all four sources (member counts by age and sex, a member
fact, household facts with a value map and defaults, tax income, a GIS layer) and a linear
form: ``registry_core.scoring.rescore.score_linear`` writes it (on PostgreSQL a new table
swapped in, elsewhere an upsert; both keep the previous score and values).

Why the baseline: "X households/s" alone says little on a shared two-core machine. In the same
run, on the same database, ``baseline`` is a plain ``INSERT INTO copy SELECT * FROM
household_scores`` of the very rows the re-score wrote (same count, same values): what the
database needs just to write them, without reading any fact or computing anything. Each is
run ``--repeat`` times (default 3) and the best round is reported. Also printed: the
eligibility decision of one program over every household (CEL in Python) and the incremental
path (one household at a time, as the scoring worker does).

The last line is ``scoring households=N rescore_per_s=X baseline_per_s=Y``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Engine, text

MODEL: dict[str, Any] = {
    "description": "bench PMT",
    "variables": [
        {"name": "size", "source": "members"},
        {"name": "children", "source": "members", "age_max": 14},
        {"name": "elderly", "source": "members", "age_min": 65},
        {"name": "women", "source": "members", "sex": "female", "age_min": 18},
        {"name": "disabled", "source": "members", "domain": "other", "attribute": "disability"},
        {
            "name": "rooms",
            "source": "household_attribute",
            "domain": "dwelling",
            "attribute": "rooms",
            "missing": {"rule": "not_scorable"},
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
            "name": "income",
            "source": "tax_income",
            "period": "2025",
            "missing": {"rule": "default", "value": 0},
        },
        {
            "name": "flood",
            "source": "gis_layer",
            "layer": "flood_risk",
            "missing": {"rule": "default", "value": 0},
        },
    ],
    "intercept": 60.0,
    "weights": {
        "size": -2.5,
        "children": -3.0,
        "elderly": -2.0,
        "women": 1.0,
        "disabled": -4.0,
        "rooms": 2.0,
        "roof": -5.0,
        "income": 0.0005,
        "flood": -6.0,
    },
}
RULE = {
    "model_code": "bench-pmt",
    "threshold": {"max_score": 45.0},
    "condition": 'children >= 1.0 || elderly >= 1.0 || area.startsWith("R01")',
}

# Set-based fillers, PostgreSQL. ``g`` numbers households, ``k`` members within one.
POSTGRES_FILL = (
    """INSERT INTO households (id, registry_number, admin_area_code, status, version,
        created_at, updated_at)
    SELECT md5('h' || g)::uuid, 'SR-B' || g, 'R0' || (g % 5) || '-D0' || (g % 7), 'active', 1,
        now(), now()
    FROM generate_series(1, :n) g""",
    """INSERT INTO persons (id, given_name, family_name, sex, birth_date, is_deceased,
        verification_status, version, created_at, updated_at)
    SELECT md5('p' || g || '-' || k)::uuid, 'G', 'F',
        CASE WHEN (g + k) % 2 = 0 THEN 'female' ELSE 'male' END,
        date '1940-01-01' + ((g * 37 + k * 911) % 31000), false, 'unverified', 1, now(), now()
    FROM generate_series(1, :n) g CROSS JOIN LATERAL generate_series(1, 1 + g % 6) k""",
    """INSERT INTO memberships (id, household_id, person_id, relationship_to_head, start_date)
    SELECT md5('m' || g || '-' || k)::uuid, md5('h' || g)::uuid, md5('p' || g || '-' || k)::uuid,
        CASE WHEN k = 1 THEN 'head' ELSE 'child' END, date '2020-01-01'
    FROM generate_series(1, :n) g CROSS JOIN LATERAL generate_series(1, 1 + g % 6) k""",
    """INSERT INTO socio_economic_attributes (id, household_id, person_id, domain, name, period,
        value, source_system, observed_at)
    SELECT md5('r' || g)::uuid, md5('h' || g)::uuid, NULL::uuid, 'dwelling', 'rooms', '',
        to_json(1 + g % 6), 'field_survey', now()
    FROM generate_series(1, :n) g WHERE g % 50 <> 0
    UNION ALL
    SELECT md5('f' || g)::uuid, md5('h' || g)::uuid, NULL, 'dwelling', 'roof_material', '',
        to_json((ARRAY['tin', 'thatch', 'concrete', 'plastic'])[1 + g % 4]), 'field_survey', now()
    FROM generate_series(1, :n) g WHERE g % 9 <> 0
    UNION ALL
    SELECT md5('l' || g)::uuid, md5('h' || g)::uuid, NULL, 'other', 'flood_risk', '',
        to_json(((g * 13) % 100) / 100.0), 'gis', now()
    FROM generate_series(1, :n) g""",
    """INSERT INTO socio_economic_attributes (id, household_id, person_id, domain, name, period,
        value, source_system, observed_at)
    SELECT md5('i' || g || '-' || k)::uuid, md5('h' || g)::uuid, md5('p' || g || '-' || k)::uuid,
        'income', 'gross_income', '2025', to_json((g::bigint * 7919 + k * 104729) % 90000),
        'tax', now()
    FROM generate_series(1, :n) g CROSS JOIN LATERAL generate_series(1, 1 + g % 6) k
    WHERE (g + k) % 3 = 0
    UNION ALL
    SELECT md5('d' || g || '-' || k)::uuid, md5('h' || g)::uuid, md5('p' || g || '-' || k)::uuid,
        'other', 'disability', '', to_json(true), 'field_survey', now()
    FROM generate_series(1, :n) g CROSS JOIN LATERAL generate_series(1, 1 + g % 6) k
    WHERE (g * 3 + k) % 10 = 0""",
)


def _database(run_id: str, keep: bool) -> tuple[str, Callable[[], None]]:
    """(URL, clean-up): a fresh PostgreSQL database when a server is named, else SQLite."""
    base = os.environ.get("SRHUB_BENCH_DATABASE_URL") or os.environ.get("SRHUB_TEST_DATABASE_URL")
    if not base:
        folder = tempfile.mkdtemp(prefix="srhub-bench-scoring-")
        return f"sqlite:///{folder}/bench.db", lambda: None
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    name = f"{url.database}_scoring_{run_id}"
    admin = url.set(drivername="postgresql", database="postgres")
    admin_dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        if keep:
            print(f"kept database {name}")
            return
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    return url.set(database=name).render_as_string(hide_password=False), drop


def _fill(engine: Engine, households: int) -> None:
    if engine.dialect.name != "postgresql":
        _fill_through_registry(engine, households)
        return
    with engine.begin() as conn:
        for statement in POSTGRES_FILL:
            conn.execute(text(statement), {"n": households})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def _fill_through_registry(engine: Engine, households: int) -> None:
    """SQLite: households registered through the registry (slower; use a small N)."""
    from registry_core.service import Source

    registry = _registry(engine)
    source = Source("field_survey")
    for g in range(1, households + 1):
        members = [
            {
                "given_name": "G",
                "family_name": "F",
                "sex": "female" if (g + k) % 2 == 0 else "male",
                "birth_date": date.fromordinal(
                    date(1940, 1, 1).toordinal() + (g * 37 + k * 911) % 31000
                ).isoformat(),
                "relationship": "head" if k == 1 else "child",
            }
            for k in range(1, 2 + g % 6)
        ]
        attributes: list[dict[str, Any]] = [
            {"domain": "dwelling", "name": "rooms", "value": 1 + g % 6},
            {"domain": "other", "name": "flood_risk", "value": (g * 13 % 100) / 100},
        ]
        attributes += [
            {
                "domain": "income",
                "name": "gross_income",
                "period": "2025",
                "value": (g * 7919 + k * 104729) % 90000,
                "member_index": k - 1,
            }
            for k in range(1, 2 + g % 6)
            if (g + k) % 3 == 0
        ]
        body = {
            "admin_area_code": f"R0{g % 5}-D0{g % 7}",
            "members": members,
            "attributes": attributes,
        }
        registry.register_household(body, source)


def _registry(engine: Engine) -> Any:
    from registry_core.crypto import IdentifierCipher
    from registry_core.db import make_session_factory
    from registry_core.service import Registry

    registry = Registry(
        make_session_factory(engine), IdentifierCipher(os.urandom(32), os.urandom(32))
    )
    registry.ensure_identifier_systems()
    return registry


def _best(rounds: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(rounds))


def measure(engine: Engine, households: int, repeat: int) -> dict[str, float]:
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

    def baseline() -> float:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM bench_copy"))
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_copy SELECT * FROM household_scores"))
        return time.perf_counter() - started

    rescore_seconds = _best(repeat, rescore)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_copy AS SELECT * FROM household_scores WHERE 1 = 0"))
    baseline_seconds = _best(repeat, baseline)

    rule = scoring.add_rule_version("bench-cct", RULE, "bench")["version"]
    started = time.perf_counter()
    decided = scoring.activate_rule("bench-cct", rule)["decided"]
    eligibility_seconds = time.perf_counter() - started

    with engine.connect() as conn:
        sample = [row[0] for row in conn.execute(text("SELECT id FROM households LIMIT 200"))]
    started = time.perf_counter()
    for household_id in sample:
        scoring.rescore_household(uuid.UUID(str(household_id)), as_of=today)
    incremental_seconds = time.perf_counter() - started
    return {
        "rescore_seconds": rescore_seconds,
        "rescore_per_s": households / rescore_seconds,
        "baseline_per_s": households / baseline_seconds,
        "eligibility_per_s": households / eligibility_seconds,
        "eligible": float(decided["eligible"]),
        "incremental_per_s": len(sample) / incremental_seconds,
    }


def on_filled_database(
    households: int,
    sqlite_cap: int,
    keep_db: bool,
    measure_on: Callable[[Engine, int], dict[str, Any]],
) -> tuple[int, dict[str, Any]]:
    """Make a database at head, fill it with ``households`` generated households (at most
    ``sqlite_cap`` when no PostgreSQL is named), run ``measure_on`` and drop it (unless
    ``keep_db``); returns the household count used and the figures. Shared by the scoring and
    policy benchmarks so both measure on the same generated registry."""
    from hub.dbschema import upgrade_to_head
    from registry_core.db import make_engine

    url, cleanup = _database(uuid.uuid4().hex[:8], keep_db)
    try:
        upgrade_to_head(url)
        engine = make_engine(url)
        if engine.dialect.name != "postgresql":
            households = min(households, sqlite_cap)
            print(f"no PostgreSQL named: SQLite with {households} households (registered)")
        started = time.perf_counter()
        _fill(engine, households)
        print(f"filled {households} households in {time.perf_counter() - started:.1f}s")
        figures = measure_on(engine, households)
        engine.dispose()
    finally:
        cleanup()
    return households, figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)

    households, figures = on_filled_database(
        args.households, 2000, args.keep_db, lambda engine, n: measure(engine, n, args.repeat)
    )
    print(
        f"full re-score: {figures['rescore_seconds']:.2f}s;"
        f" eligibility of one program: {figures['eligibility_per_s']:.0f} households/s"
        f" ({figures['eligible']:.0f} eligible);"
        f" incremental: {figures['incremental_per_s']:.0f} households/s"
    )
    print(
        f"scoring households={households} rescore_per_s={figures['rescore_per_s']:.0f}"
        f" baseline_per_s={figures['baseline_per_s']:.0f}"
    )


if __name__ == "__main__":
    main()
