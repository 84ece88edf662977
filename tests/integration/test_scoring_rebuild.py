"""The PostgreSQL full re-score that builds a new ``household_scores`` and swaps it in
(``registry_core.scoring.rebuild``) writes exactly the rows the upsert writes, keeps the
table's key, foreign key, columns and other models' rows, falls back to the upsert when a
reader holds the table."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from registry_core.scoring import rebuild
from registry_core.scoring.definitions import parse_model
from registry_core.scoring.rebuild import rebuild_scores
from registry_core.scoring.rescore import score_linear
from registry_core.scoring.sql import prepare_for_bulk, rescore_statement
from tests.integration.test_scoring_services import AS_OF, MODEL, SURVEY, activate, household

NOW = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
ROWS = text(
    "SELECT household_id, model_code, model_version, score, scorable, input_values, inputs,"
    " previous_model_version, previous_score, previous_input_values, computed_at"
    " FROM household_scores ORDER BY household_id, model_code"
)
SHAPE = text(
    # the columns' order (a swapped table numbers them afresh where migrations dropped some)
    "SELECT column_name, data_type, character_maximum_length, is_nullable, column_default,"
    " row_number() OVER (ORDER BY ordinal_position) FROM information_schema.columns"
    " WHERE table_name = 'household_scores' ORDER BY ordinal_position"
)
CONSTRAINTS = text(
    "SELECT conname, contype, convalidated, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE conrelid = 'household_scores'::regclass ORDER BY conname"
)
INDEXES = text(
    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'household_scores'"
    " ORDER BY indexname"
)


@pytest.fixture
def pg_registry(registry, db_engine):
    if db_engine.dialect.name != "postgresql":
        pytest.skip("the table swap is PostgreSQL's; SQLite upserts")
    return registry


def _populated(registry) -> None:
    """Households, a first version scored, a second model's and an outside score's rows."""
    rng = random.Random(5)
    ids = [registry.register_household(household(rng), SURVEY).record["id"] for _ in range(30)]
    activate(registry)
    activate(registry, code="other")
    registry.scoring.rescore_all(as_of=AS_OF)
    registry.record_eligibility_score(ids[0], "partner-pmt", 12.5, {"size": 3})


def _second_version(registry) -> Any:
    changed = {**MODEL, "weights": {**MODEL["weights"], "rooms": 5.0, "size": -1.0}}
    version = registry.scoring.add_model_version("pmt", changed, "tester")["version"]
    return parse_model(changed), version


def _run(engine, write) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """The table's rows and shape after ``write(conn)``, rolled back afterwards."""
    with engine.connect() as conn:
        transaction = conn.begin()
        prepare_for_bulk(conn, "postgresql")
        write(conn)
        seen = tuple(
            [tuple(r) for r in conn.execute(q)] for q in (ROWS, SHAPE, CONSTRAINTS, INDEXES)
        )
        transaction.rollback()
    return seen  # type: ignore[return-value]


def _pairs(rows: list[Any], before: list[Any]) -> list[tuple[Any, Any]]:
    """Each row beside the same household's and model's row before."""
    earlier = {(r[0], r[1]): r for r in before}
    return [(row, earlier[(row[0], row[1])]) for row in rows]


def test_the_swapped_table_has_the_upserts_rows_and_the_migrations_shape(pg_registry, db_engine):
    migrated = _run(db_engine, lambda conn: None)  # the table as the migrations made it
    _populated(pg_registry)
    model, version = _second_version(pg_registry)
    before = _run(db_engine, lambda conn: None)

    def upsert(conn) -> None:
        statement = rescore_statement(model, "pmt", version, "postgresql", AS_OF, NOW)
        conn.execute(statement.statement)

    def swap(conn) -> None:
        assert rebuild_scores(conn, model, "pmt", version, AS_OF, NOW) == 30

    upserted, swapped = _run(db_engine, upsert), _run(db_engine, swap)
    assert swapped[0] == upserted[0]
    # the new version moved scores, so previous scores and values were carried over
    moved = [row for row in swapped[0] if row[1] == "pmt" and row[7] is not None]
    assert moved and all(row[9] == before_row[5] for row, before_row in _pairs(moved, before[0]))
    # the other models' rows are there unchanged, the outside score among them
    assert [r for r in swapped[0] if r[1] != "pmt"] == [r for r in before[0] if r[1] != "pmt"]
    assert {r[1] for r in swapped[0]} == {"pmt", "other", "partner-pmt"}
    # columns, key and foreign key (validated), indexes: as migrated, after two swaps
    assert swapped[1:] == before[1:] == migrated[1:]


def test_a_reader_holding_the_table_makes_it_upsert_instead(pg_registry, db_engine, monkeypatch):
    _populated(pg_registry)
    model, version = _second_version(pg_registry)
    monkeypatch.setattr(rebuild, "LOCK_TIMEOUT", "200ms")
    monkeypatch.setattr(rebuild, "TAKE_OVER_TRIES", 2)
    with db_engine.connect() as reader:
        reader.begin()
        reader.execute(text("SELECT COUNT(*) FROM household_scores")).scalar_one()
        with db_engine.connect() as conn:
            transaction = conn.begin()
            prepare_for_bulk(conn, "postgresql")
            oid = conn.execute(text("SELECT 'household_scores'::regclass::oid")).scalar_one()
            assert rebuild_scores(conn, model, "pmt", version, AS_OF, NOW) is None
            scored = score_linear(conn, model, "pmt", version, "postgresql", AS_OF, NOW)
            assert scored == 30
            same = conn.execute(text("SELECT 'household_scores'::regclass::oid")).scalar_one()
            assert same == oid  # upserted into the same table, not swapped
            timeout = conn.execute(text("SHOW lock_timeout")).scalar_one()
            assert timeout != "200ms"  # the savepoint's setting did not stay
            versions = conn.execute(
                text("SELECT DISTINCT model_version FROM household_scores WHERE model_code='pmt'")
            ).scalars()
            assert list(versions) == [version]
            transaction.commit()


def test_a_worker_waiting_to_write_behind_the_swap_is_not_deadlocked(
    pg_registry, db_engine, monkeypatch
):
    """The scoring worker's transaction read the table, then waits to write a score behind
    the swap's EXCLUSIVE lock while the swap waits for the worker's read to take the table
    over: a deadlock unless the swap gives up first (it does, and upserts)."""
    _populated(pg_registry)
    model, version = _second_version(pg_registry)
    monkeypatch.setattr(rebuild, "TAKE_OVER_TRIES", 2)
    outcome: dict[str, Any] = {}

    def rescore() -> None:
        try:
            with db_engine.begin() as conn:
                prepare_for_bulk(conn, "postgresql")
                outcome["scored"] = score_linear(
                    conn, model, "pmt", version, "postgresql", AS_OF, NOW
                )
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    exclusive_held = text(
        "SELECT COUNT(*) FROM pg_locks WHERE relation = 'household_scores'::regclass"
        " AND mode = 'ExclusiveLock' AND granted"
    )
    with db_engine.connect() as worker, db_engine.connect() as watcher:
        worker.begin()
        household_id = worker.execute(
            text("SELECT household_id FROM household_scores WHERE model_code = 'pmt' LIMIT 1")
        ).scalar_one()
        thread = threading.Thread(target=rescore)
        thread.start()
        while not watcher.execute(exclusive_held).scalar_one():
            watcher.rollback()
            if not thread.is_alive():
                break
        watcher.rollback()
        worker.execute(
            text(
                "UPDATE household_scores SET computed_at = :now"
                " WHERE household_id = :id AND model_code = 'pmt'"
            ),
            {"now": NOW, "id": household_id},
        )
        worker.commit()
        thread.join()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["scored"] == 30
