"""A large tax extract dropped in the tax connector's folder goes to the registry's bulk
loader, not row by row onto ``sr.inbound`` — on SQLite and PostgreSQL, with the live tax
authority mock writing the drops.

The registry first holds the mock's population (a partner export loaded with ``srhub
import``'s loader). Then: incomes land on the right persons (last return of a taxpayer-year
wins), the rows the mock spoiled are reported exactly as the row-by-row path reports them,
``household.updated`` events are written for programs, nothing is published; a database
outage half way leaves the file in place and the next run continues after the last
committed batch; a file under the threshold is still published row by row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bench.bulk import EXPORT_COLUMNS, export_rows
from connectors.base import ConnectorContext, FileDropRunner, InMemorySeenFileStore
from connectors.base.testing import BatchCollectingPublisher
from connectors.tax import TaxFileConnector
from hub.bulk import ImportOptions, run_import
from hub.bulk.connector_loader import RegistryBulkLoader
from registry_core.db import make_session_factory
from registry_core.models import OutboxEvent, SocioEconomicAttribute
from sandbox_mocks.common.server import MockServer
from sandbox_mocks.population import iter_households
from sandbox_mocks.population.ids import sandbox_profile
from sandbox_mocks.population.model import Household
from sandbox_mocks.tax import BAD_ROW_KINDS, TaxAuthorityConfig, create_app


@pytest.fixture(scope="module")
def households() -> list[Household]:
    return list(iter_households(42, 400))


def _load_population(registry: Any, db_engine: Any, households: list[Household], folder: Path):
    path = folder / "population.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for household in households:
            writer.writerows(export_rows(household))
    options = ImportOptions(path=path, fmt="csv", mapping="partner_household_row")
    summary = run_import(registry, make_session_factory(db_engine), options)
    assert summary.rejected == 0 and summary.counts["persons_created"] == 400


class Drops:
    """The live tax mock, and a tax connector (with the registry's bulk loader) watching its
    drop folder."""

    def __init__(self, folder: Path, server: MockServer, registry: Any, db_engine: Any) -> None:
        self.folder = folder
        self.server = server
        self.publisher = BatchCollectingPublisher()
        sessions = make_session_factory(db_engine)
        self.loader = RegistryBulkLoader(
            lambda: (registry, sessions), folder.parent / "bulk-rejects", batch_size=40
        )
        self.seen = InMemorySeenFileStore()

    def runner(self, threshold: int = 50) -> FileDropRunner:
        context = ConnectorContext(
            "tax",
            self.publisher,
            seen_files=self.seen,
            identifiers=sandbox_profile(),
            bulk_loader=self.loader,
        )
        settings = {"kind": "tax", "drop_folder": str(self.folder), "bulk_threshold": threshold}
        return FileDropRunner(TaxFileConnector(settings, context))

    def drop(self, **request: Any) -> dict[str, Any]:
        import requests

        answer = requests.post(self.server.url + "/drops", json=request, timeout=30)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def report(self, name: str) -> dict[str, Any]:
        found = list((self.folder / "processed").glob(f"*{name}.report.json")) or list(
            (self.folder / "processed").glob("*.report.json")
        )
        reports = [json.loads(p.read_text("utf-8")) for p in found]
        return next(r for r in reports if r["file"] == name)


@pytest.fixture
def drops(
    tmp_path: Path, households: list[Household], registry: Any, db_engine: Any
) -> Iterator[Drops]:
    _load_population(registry, db_engine, households, tmp_path)
    folder = tmp_path / "drops"
    app = create_app(TaxAuthorityConfig(drop_folder=folder, households=households, seed=7))
    with MockServer(app) as server:
        yield Drops(folder, server, registry, db_engine)


def _good_rows(path: Path, bad: set[int]) -> dict[tuple[str, str], Decimal]:
    """{(taxpayer TIN, tax year): gross income} of the file's good rows, the last one of a
    taxpayer-year winning (as a return arriving later would)."""
    expected: dict[tuple[str, str], Decimal] = {}
    with path.open(encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle, delimiter=";"), start=1):
            if number not in bad:
                expected[(row["TAXPAYER_TIN"], row["TAX_YEAR"])] = Decimal(row["GROSS_INCOME"])
    return expected


def _incomes(registry: Any, db_engine: Any) -> dict[tuple[str, str], Decimal]:
    with db_engine.connect() as conn:
        rows = conn.execute(
            select(
                SocioEconomicAttribute.person_id,
                SocioEconomicAttribute.period,
                SocioEconomicAttribute.value,
            ).where(
                SocioEconomicAttribute.name == "gross_income",
                SocioEconomicAttribute.source_system == "tax",
            )
        ).all()
    found: dict[tuple[str, str], Decimal] = {}
    for person_id, period, value in rows:
        person = registry.get_person(str(person_id))
        tin = next(i["value"] for i in person["identifiers"] if i["system"] == "tax_id")
        found[(tin, period)] = Decimal(str(value))
    return found


def _events(db_engine: Any) -> int:
    with db_engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.routing_key == "household.updated")
            ).scalar_one()
        )


def test_a_large_drop_is_loaded_in_bulk_with_the_row_paths_rejections(
    drops: Drops, registry: Any, db_engine: Any
) -> None:
    drop = drops.drop(format="csv", bad_rows={kind: 1 for kind in BAD_ROW_KINDS})
    name = drop["files"][0]["file_name"]
    injected = drop["faults"]["bad_rows"]
    assert drop["row_count"] > 50  # over the threshold
    outcome = drops.runner().run_once()
    assert outcome.processed == [name]
    assert drops.publisher.records("income_row") == []  # nothing went to sr.inbound

    report = drops.report(name)
    expected = {(fault["row"], fault["field"]) for fault in injected}
    assert {(e["row"], e["column"]) for e in report["rejected"]} == expected
    assert report["accepted"] == drop["row_count"] - len(injected)
    outcomes = report["bulk"]["outcomes"]
    assert sum(outcomes.values()) == report["accepted"]
    assert outcomes["applied"] > 0 and report["bulk"]["resumed_after_row"] == 0

    archived = next((drops.folder / "processed").glob(f"*{name}"))
    wanted = _good_rows(archived, {fault["row"] for fault in injected})
    found = _incomes(registry, db_engine)
    assert found == {key: value for key, value in wanted.items() if key in found}
    assert len(found) >= outcomes["applied"] - outcomes.get("not_in_household", 0) > 0
    assert _events(db_engine) > 0  # programs hear of the new incomes


def test_xml_extracts_go_through_the_same_bulk_path(drops: Drops, registry: Any, db_engine):
    drop = drops.drop(format="xml")
    name = drop["files"][0]["file_name"]
    assert drops.runner().run_once().processed == [name]
    report = drops.report(name)
    assert report["accepted"] == drop["row_count"] and report["rejected"] == []
    assert report["bulk"]["outcomes"]["applied"] > 0
    assert drops.publisher.records("income_row") == []
    assert _incomes(registry, db_engine)


def test_a_database_outage_leaves_the_file_and_the_next_run_continues(
    drops: Drops, registry: Any, db_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.bulk.income as module

    drop = drops.drop(format="csv")
    name = drop["files"][0]["file_name"]
    real = module.IncomeRows.process
    calls = {"n": 0}

    def failing(self: Any, registry: Any, rows: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OperationalError("SELECT", {}, ConnectionError("server closed the connection"))
        return real(self, registry, rows)

    monkeypatch.setattr(module.IncomeRows, "process", failing)
    runner = drops.runner()
    first = runner.run_once()
    assert first.processed == [] and first.rejected == []
    assert "could not be written" in str(first.error)
    assert (drops.folder / name).exists()  # left in place, not refused
    kept = _incomes(registry, db_engine)
    assert len(kept) > 0

    monkeypatch.setattr(module.IncomeRows, "process", real)
    second = runner.run_once()
    assert second.processed == [name]
    report = drops.report(name)
    assert report["bulk"]["resumed_after_row"] == 40  # the first batch was committed
    assert report["accepted"] == drop["row_count"]
    assert sum(report["bulk"]["outcomes"].values()) == drop["row_count"]
    archived = next((drops.folder / "processed").glob(f"*{name}"))
    assert _incomes(registry, db_engine) == {
        key: value for key, value in _good_rows(archived, set()).items()
        if key in _incomes(registry, db_engine)
    }  # fmt: skip


def test_a_file_under_the_threshold_is_still_published_row_by_row(drops: Drops) -> None:
    drop = drops.drop(format="csv")
    name = drop["files"][0]["file_name"]
    assert drops.runner(threshold=drop["row_count"] + 1).run_once().processed == [name]
    assert len(drops.publisher.records("income_row")) == drop["row_count"]
    assert "bulk" not in drops.report(name)


def test_a_file_loaded_but_not_archived_is_reported_whole_the_next_time(
    drops: Drops, registry: Any, db_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.base.filedrop import DropFolder

    drop = drops.drop(format="csv", bad_rows={"negative_amount": 1})
    name = drop["files"][0]["file_name"]
    runner = drops.runner()
    real = DropFolder.archive_processed

    def disk_full(self: Any, ready: Any, report: Any) -> Any:
        raise OSError("no space left on device")

    monkeypatch.setattr(DropFolder, "archive_processed", disk_full)
    with pytest.raises(OSError):
        runner.run_once()
    loaded = _incomes(registry, db_engine)
    events = _events(db_engine)
    assert loaded and (drops.folder / name).exists()

    monkeypatch.setattr(DropFolder, "archive_processed", real)
    assert runner.run_once().processed == [name]
    report = drops.report(name)
    assert report["bulk"]["loaded_before"] is True
    assert report["rows_read"] == drop["row_count"]  # every row read and counted again
    assert report["accepted"] == drop["row_count"] - 1
    assert [e["column"] for e in report["rejected"]] == ["GROSS_INCOME"]
    assert _incomes(registry, db_engine) == loaded and _events(db_engine) == events
