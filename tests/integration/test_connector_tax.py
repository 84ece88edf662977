"""The tax connector against the live tax-authority mock writing real drops into a tmp folder.

Drops are triggered over HTTP (``POST /drops``) and their fault records read back
(``GET /drops/<id>``): what the mock says it spoiled is compared with what the connector
rejected, row by row. Files the mock cannot produce (an XML with a DTD or entities, a
200,000-row extract) are written by the test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.engine import Engine

from connectors.base import (
    ConnectorContext,
    FileDropRunner,
    InMemorySeenFileStore,
    RawRecord,
    SettingsError,
)
from connectors.base.testing import BatchCollectingPublisher
from connectors.tax import TaxFileConnector
from hub.checkpoints import SqlSeenFileStore
from sandbox_mocks.common.server import MockServer
from sandbox_mocks.population import iter_households
from sandbox_mocks.population.ids import sandbox_profile
from sandbox_mocks.population.model import Household
from sandbox_mocks.tax import BAD_ROW_KINDS, TaxAuthorityConfig, create_app
from standards.identifiers import verhoeff_check_digit

ALL_BAD_ROWS = {kind: 2 for kind in BAD_ROW_KINDS}


@pytest.fixture(scope="module")
def households() -> list[Household]:
    return list(iter_households(42, 600))


class TaxSandbox:
    """A live tax mock plus a connector and runner watching its drop folder."""

    def __init__(self, folder: Path, server: MockServer, seen: Any = None) -> None:
        self.folder = folder
        self.server = server
        self.publisher = BatchCollectingPublisher()
        self.seen = seen or InMemorySeenFileStore()
        self.connector, self.runner = self.new_connector()

    def new_connector(self) -> tuple[TaxFileConnector, FileDropRunner]:
        """A fresh connector over the same folder (as after a hub restart)."""
        context = ConnectorContext(
            "tax", self.publisher, seen_files=self.seen, identifiers=sandbox_profile()
        )
        connector = TaxFileConnector(
            {"kind": "tax", "drop_folder": str(self.folder), "batch_size": 40}, context
        )
        return connector, FileDropRunner(connector)

    def drop(self, **request: Any) -> dict[str, Any]:
        answer = requests.post(self.server.url + "/drops", json=request, timeout=30)
        assert answer.status_code == 201, answer.text
        record = answer.json()
        again = requests.get(f"{self.server.url}/drops/{record['drop_id']}", timeout=10).json()
        assert again == record
        return record

    def reports(self) -> dict[str, dict[str, Any]]:
        found = {}
        for path in (self.folder / "processed").glob("*.report.json"):
            report = json.loads(path.read_text("utf-8"))
            found[report["file"]] = report
        return found

    def reasons(self) -> dict[str, dict[str, Any]]:
        found = {}
        for path in (self.folder / "rejected").glob("*.reason.json"):
            reason = json.loads(path.read_text("utf-8"))
            found[reason["file"]] = reason
        return found

    def published(self, file_name: str | None = None) -> list[RawRecord]:
        return [
            r
            for r in self.publisher.records("income_row")
            if file_name is None or r.headers["file_name"] == file_name
        ]


@pytest.fixture
def sandbox(tmp_path: Path, households: list[Household]) -> Iterator[TaxSandbox]:
    folder = tmp_path / "drops"
    app = create_app(TaxAuthorityConfig(drop_folder=folder, households=households, seed=7))
    with MockServer(app) as server:
        yield TaxSandbox(folder, server)


def _record_no(record: RawRecord) -> int:
    payload = record.payload
    assert isinstance(payload, dict)
    return int(payload.get("RECORD_NO") or payload["@recordNo"])


# --- clean files -----------------------------------------------------------------------------


def test_clean_csv_and_xml_files_publish_every_row(sandbox: TaxSandbox) -> None:
    drops = [sandbox.drop(format="csv"), sandbox.drop(format="xml")]
    outcome = sandbox.runner.run_once()

    names = [d["files"][0]["file_name"] for d in drops]
    assert sorted(outcome.processed) == sorted(names)
    reports = sandbox.reports()
    for drop, name in zip(drops, names, strict=True):
        report = reports[name]
        assert report["manifest_row_count"] == drop["row_count"] > 50
        assert report["rows_read"] == report["accepted"] == drop["row_count"]
        assert report["rejected_count"] == 0 and report["rejected"] == []
        assert report["routing_key"] == "tax.income_row"
        assert report["sha256"] == drop["files"][0]["sha256"]
        published = sandbox.published(name)
        assert sorted(_record_no(r) for r in published) == list(range(1, drop["row_count"] + 1))
    csv_payload = sandbox.published(names[0])[0].payload
    xml_payload = sandbox.published(names[1])[0].payload
    assert isinstance(csv_payload, dict) and csv_payload["TAX_YEAR"] == drops[0]["period"]
    assert isinstance(xml_payload, dict) and xml_payload["GrossIncome"]["@currency"] == "XTS"
    # published in batches, not one broker round trip per row
    assert max(sandbox.publisher.batches) == 40
    assert sandbox.connector.status.snapshot()["counts"]["files_processed"] == 2


# --- bad rows --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xml"])
def test_bad_rows_rejected_with_reasons_and_good_rows_published(
    sandbox: TaxSandbox, fmt: str
) -> None:
    drop = sandbox.drop(format=fmt, bad_rows=ALL_BAD_ROWS)
    injected = drop["faults"]["bad_rows"]
    assert len(injected) == len(BAD_ROW_KINDS) * 2 and all(f["row"] for f in injected)
    sandbox.runner.run_once()

    name = drop["files"][0]["file_name"]
    report = sandbox.reports()[name]
    expected = {(fault["row"], fault["field"]) for fault in injected}
    rejected = {(entry["row"], entry["column"]) for entry in report["rejected"]}
    assert rejected == expected
    assert all(entry["reason"] for entry in report["rejected"])
    assert report["rejected_count"] == len(injected)
    assert report["accepted"] == drop["row_count"] - len(injected)

    bad_rows = {fault["row"] for fault in injected}
    published = sorted(_record_no(r) for r in sandbox.published(name))
    assert published == [n for n in range(1, drop["row_count"] + 1) if n not in bad_rows]
    # the report names rows and columns, never the partner's values
    text = json.dumps(report)
    for fault in injected:
        if len(fault["value"]) >= 6:
            assert fault["value"] not in text
    reasons = {fault["kind"]: None for fault in injected}
    by_row = {entry["row"]: entry["reason"] for entry in report["rejected"]}
    for fault in injected:
        reasons[fault["kind"]] = by_row[fault["row"]]
    assert "Verhoeff" in str(reasons["bad_check_digit"])
    assert "negative" in str(reasons["negative_amount"])
    assert "missing" in str(reasons["missing_tax_id"])


# --- whole-file faults -----------------------------------------------------------------------


def test_duplicate_file_skipped_and_reported(sandbox: TaxSandbox) -> None:
    drop = sandbox.drop(format="csv", faults=["duplicate"])
    first, second = (f["file_name"] for f in drop["files"])
    outcome = sandbox.runner.run_once()
    assert outcome.processed == [first] and outcome.duplicates == [second]
    assert len(sandbox.published()) == drop["row_count"]
    reason = sandbox.reasons()[second]["reason"]
    assert "duplicate" in reason and first in reason
    assert sandbox.connector.status.snapshot()["counts"]["files_duplicate"] == 1


@pytest.mark.parametrize("fmt", ["csv", "xml"])
def test_truncated_file_rejected_whole(sandbox: TaxSandbox, fmt: str) -> None:
    drop = sandbox.drop(format=fmt, faults=["truncated"])
    name = drop["files"][0]["file_name"]
    assert drop["files"][0]["bytes_written"] < drop["files"][0]["size_bytes"]
    first = sandbox.runner.run_once()  # may still be arriving: wait one poll
    assert first.waiting == [name] and not first.rejected
    second = sandbox.runner.run_once()
    assert second.rejected == [name]
    assert sandbox.published() == []
    reason = sandbox.reasons()[name]
    assert "SHA-256" in reason["reason"] and "truncated" in reason["reason"]
    assert list((sandbox.folder / "rejected").glob(f"*_{name}"))
    assert not (sandbox.folder / name).exists()


@pytest.mark.parametrize("fmt", ["csv", "xml"])
def test_wrong_encoding_rejected_whole_naming_the_line(sandbox: TaxSandbox, fmt: str) -> None:
    drop = sandbox.drop(format=fmt, faults=["wrong_encoding"])
    name = drop["files"][0]["file_name"]
    outcome = sandbox.runner.run_once()
    assert outcome.rejected == [name]
    assert sandbox.published() == []
    reason = sandbox.reasons()[name]["reason"]
    assert "not valid UTF-8 at line" in reason
    # the line it names really holds the first non-UTF-8 byte
    archived = next((sandbox.folder / "rejected").glob(f"*_{name}"))
    line_number = int(reason.split("at line ")[1].split()[0])
    lines = archived.read_bytes().split(b"\n")
    assert all(_utf8(line) for line in lines[: line_number - 1])
    assert not _utf8(lines[line_number - 1])


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _write_delivery(folder: Path, name: str, data: bytes, **manifest: Any) -> None:
    (folder / name).write_bytes(data)
    content = {
        "file_name": name,
        "format": name.rsplit(".", 1)[1],
        "encoding": "utf-8",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "namespace": "urn:sandbox:tax-authority:income-extract:1",
        **manifest,
    }
    stem = name.rsplit(".", 1)[0]
    (folder / f"{stem}.manifest.json").write_text(json.dumps(content), "utf-8")


XML_RETURN = (
    '<Return recordNo="1"><TaxpayerTIN>123456789</TaxpayerTIN><NationalID></NationalID>'
    '<TaxpayerName>DOE, Jo</TaxpayerName><Employer tin="987654321">&x;</Employer>'
    "<TaxYear>2024</TaxYear><PeriodStart>2024-01-01</PeriodStart>"
    "<PeriodEnd>2024-12-31</PeriodEnd><FiledOn>2025-02-01</FiledOn>"
    '<TaxOffice>Office</TaxOffice><GrossIncome currency="XTS">10.00</GrossIncome></Return>'
)


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE IncomeExtract [<!ENTITY x "expanded">]>',
        '<!DOCTYPE IncomeExtract SYSTEM "http://127.0.0.1:9/evil.dtd">',
        '<!DOCTYPE IncomeExtract [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY x "&b;&b;&b;&b;&b;&b;&b;">]>',
        # past the cheap prolog scan: the parser's own DTD check must catch it
        "<!--" + "p" * 70_000 + '-->\n<!DOCTYPE IncomeExtract [<!ENTITY x "expanded">]>',
    ],
    ids=["internal-entity", "external-dtd", "entity-expansion", "late-doctype"],
)
def test_xml_with_doctype_or_entities_refused(sandbox: TaxSandbox, prolog: str) -> None:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}\n'
        '<IncomeExtract xmlns="urn:sandbox:tax-authority:income-extract:1" period="2024" '
        f'sequence="900" generated="2025-01-01T00:00:00Z" records="1">{XML_RETURN}'
        "</IncomeExtract>\n"
    ).encode()
    name = "income_2024_000900.xml"
    _write_delivery(sandbox.folder, name, body, row_count=1, period="2024")
    outcome = sandbox.runner.run_once()
    assert outcome.rejected == [name]
    assert sandbox.published() == []
    reason = sandbox.reasons()[name]["reason"]
    assert "DOCTYPE" in reason or "entit" in reason


def test_entity_reference_without_dtd_refused(sandbox: TaxSandbox) -> None:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<IncomeExtract xmlns="urn:sandbox:tax-authority:income-extract:1" period="2024" '
        f'sequence="901" generated="2025-01-01T00:00:00Z" records="1">{XML_RETURN}'
        "</IncomeExtract>\n"
    ).encode()
    name = "income_2024_000901.xml"
    _write_delivery(sandbox.folder, name, body, row_count=1, period="2024")
    outcome = sandbox.runner.run_once()
    assert outcome.rejected == [name]
    assert sandbox.published() == []
    assert "entit" in sandbox.reasons()[name]["reason"]


def test_row_count_differing_from_manifest_rejects_file(sandbox: TaxSandbox) -> None:
    drop = sandbox.drop(format="csv")
    manifest_path = sandbox.folder / drop["files"][0]["manifest_name"]
    manifest = json.loads(manifest_path.read_text("utf-8"))
    manifest["row_count"] += 1
    manifest_path.write_text(json.dumps(manifest), "utf-8")
    outcome = sandbox.runner.run_once()
    assert outcome.rejected == [manifest["file_name"]]
    assert sandbox.published() == []
    reason = sandbox.reasons()[manifest["file_name"]]["reason"]
    assert f"announces {manifest['row_count']} records" in reason


def test_publish_failure_leaves_file_for_the_next_run(sandbox: TaxSandbox) -> None:
    drop = sandbox.drop(format="xml", bad_rows={"negative_amount": 3})
    name = drop["files"][0]["file_name"]
    sandbox.publisher.fail_at = 50  # the broker goes away during the second batch
    first = sandbox.runner.run_once()
    assert first.error and first.processed == []
    assert (sandbox.folder / name).exists()
    second = sandbox.runner.run_once()
    assert second.processed == [name]
    good = drop["row_count"] - 3
    assert {_record_no(r) for r in sandbox.published(name)} == {
        n for n in range(1, drop["row_count"] + 1)
    } - {f["row"] for f in drop["faults"]["bad_rows"]}
    assert sandbox.reports()[name]["accepted"] == good


# --- persistence -----------------------------------------------------------------------------


def test_checksum_deduplication_survives_a_restart(
    tmp_path: Path, households: list[Household], db_engine: Engine
) -> None:
    folder = tmp_path / "drops"
    app = create_app(TaxAuthorityConfig(drop_folder=folder, households=households, seed=3))
    with MockServer(app) as server:
        sandbox = TaxSandbox(folder, server, seen=SqlSeenFileStore(db_engine))
        drop = sandbox.drop(format="xml")
        sandbox.runner.run_once()
        name = drop["files"][0]["file_name"]
        assert len(sandbox.published()) == drop["row_count"]

        # the hub restarts: new connector, new store object, same database
        sandbox.seen = SqlSeenFileStore(db_engine)
        sandbox.connector, sandbox.runner = sandbox.new_connector()
        processed = next((folder / "processed").glob(f"*_{name}"))
        copy = "income_2024_000777.xml"
        shutil.copy(processed, folder / copy)
        manifest = json.loads(
            next((folder / "processed").glob("*_income_*.manifest.json")).read_text("utf-8")
        )
        manifest["file_name"] = copy
        (folder / "income_2024_000777.manifest.json").write_text(json.dumps(manifest), "utf-8")
        outcome = sandbox.runner.run_once()
        assert outcome.duplicates == [copy]
        assert len(sandbox.published()) == drop["row_count"]
        assert name in sandbox.reasons()[copy]["reason"]


# --- constant memory -------------------------------------------------------------------------


class CountingPublisher:
    """Keeps nothing: the memory measured is the connector's own."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, connector: str, record: RawRecord) -> None:
        self.count += 1

    def publish_many(self, connector: str, records: list[RawRecord]) -> None:
        self.count += len(records)


def _big_csv(path: Path, rows: int) -> bytes:
    header = (
        "RECORD_NO;TAXPAYER_TIN;NATIONAL_ID;TAXPAYER_NAME;EMPLOYER_TIN;EMPLOYER_NAME;TAX_YEAR;"
        "PERIOD_START;PERIOD_END;GROSS_INCOME;CURRENCY;FILED_ON;TAX_OFFICE\r\n"
    )
    digest = hashlib.sha256()
    with path.open("wb") as out:
        out.write(header.encode())
        digest.update(header.encode())
        chunk: list[str] = []
        for n in range(1, rows + 1):
            body = f"{100_000_000 + n:09d}"
            national_id = body + verhoeff_check_digit(body)
            income = "-5.00" if n % 1000 == 0 else f"{n % 90000}.00"
            chunk.append(
                f"{n};{200_000_000 + n};{national_id};FAMILY{n}, Given;900000001;Employer Ltd;"
                f"2024;2024-01-01;2024-12-31;{income};XTS;2025-02-01;Steueramt Südhafen\r\n"
            )
            if len(chunk) == 5000:
                data = "".join(chunk).encode()
                out.write(data)
                digest.update(data)
                chunk = []
        data = "".join(chunk).encode()
        out.write(data)
        digest.update(data)
    return digest.hexdigest().encode()


@pytest.mark.slow
def test_memory_stays_flat_on_a_200k_row_file(tmp_path: Path) -> None:
    folder = tmp_path / "drops"
    folder.mkdir()
    rows = 200_000
    name = "income_2024_000001.csv"
    digest = _big_csv(folder / name, rows).decode()
    size = (folder / name).stat().st_size
    manifest = {
        "file_name": name,
        "format": "csv",
        "encoding": "utf-8",
        "sha256": digest,
        "size_bytes": size,
        "row_count": rows,
        "period": "2024",
        "delimiter": ";",
    }
    (folder / "income_2024_000001.manifest.json").write_text(json.dumps(manifest), "utf-8")
    publisher = CountingPublisher()
    connector = TaxFileConnector(
        {"drop_folder": str(folder), "batch_size": 500}, ConnectorContext("tax", publisher)
    )
    runner = FileDropRunner(connector)
    outcome, growth, how = _peak_memory_growth(runner.run_once)
    assert outcome.processed == [name]
    rejected = rows // 1000
    assert publisher.count == rows - rejected
    report = json.loads(next((folder / "processed").glob("*.report.json")).read_text("utf-8"))
    assert report["accepted"] == rows - rejected and report["rejected_count"] == rejected
    assert size > 25 * 1024 * 1024  # the file is far larger than the memory allowed below
    assert growth < 12 * 1024 * 1024, f"peak memory grew by {growth / 1e6:.1f} MB ({how})"


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text("ascii").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _peak_memory_growth(run: Any) -> tuple[Any, int, str]:
    """(result, bytes, method): peak resident memory growth while ``run`` runs, measured by
    resetting the kernel's high-water mark (Linux); tracemalloc (much slower) elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = _status_kib("VmRSS")
    except (OSError, KeyError):
        tracemalloc.start()
        try:
            result = run()
            return result, tracemalloc.get_traced_memory()[1], "tracemalloc peak"
        finally:
            tracemalloc.stop()
    result = run()
    return result, (_status_kib("VmHWM") - before) * 1024, "peak RSS growth"


def test_settings_accept_the_sandbox_launchers_section(tmp_path: Path) -> None:
    from sandbox_mocks.launcher import SandboxConfig, start_sandbox

    config = SandboxConfig(
        people=300,
        only=["tax"],
        ports={"tax": 0},
        work_dir=tmp_path,
        write_connectors=False,
        tax_interval_seconds=0,
        tax_drop_on_start=True,
    )
    with start_sandbox(config) as running:
        section = running.connectors()["tax"]
        publisher = BatchCollectingPublisher()
        connector = TaxFileConnector(section, ConnectorContext("tax", publisher))
        outcome = FileDropRunner(connector).run_once()
    assert len(outcome.processed) == 1 and outcome.error is None
    assert publisher.records("income_row")


def test_xml_rows_with_unknown_repeated_or_missing_elements_rejected(sandbox: TaxSandbox) -> None:
    good = XML_RETURN.replace("&x;", "Shop")
    extra = good.replace('recordNo="1"', 'recordNo="2"').replace(
        "<TaxOffice>", "<Bonus>5</Bonus><TaxOffice>"
    )
    twice = good.replace('recordNo="1"', 'recordNo="3"').replace(
        "<TaxYear>2024</TaxYear>", "<TaxYear>2024</TaxYear><TaxYear>2024</TaxYear>"
    )
    no_income = good.replace('recordNo="1"', 'recordNo="4"').split("<GrossIncome")[0] + "</Return>"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<IncomeExtract xmlns="urn:sandbox:tax-authority:income-extract:1" period="2024" '
        f'sequence="902" generated="2025-01-01T00:00:00Z" records="4">'
        f"{good}{extra}{twice}{no_income}</IncomeExtract>\n"
    ).encode()
    name = "income_2024_000902.xml"
    _write_delivery(sandbox.folder, name, body, row_count=4, period="2024")
    assert sandbox.runner.run_once().processed == [name]
    report = sandbox.reports()[name]
    assert {(e["row"], e["column"]) for e in report["rejected"]} == {
        (2, "Bonus"),
        (3, "TAX_YEAR"),
        (4, "GROSS_INCOME"),
        (4, "CURRENCY"),
    }
    assert [_record_no(r) for r in sandbox.published(name)] == [1]


def test_settings_need_a_folder_and_accept_the_contracts_drop_block(tmp_path: Path) -> None:
    context = ConnectorContext("tax", BatchCollectingPublisher())
    with pytest.raises(SettingsError):
        TaxFileConnector({"kind": "tax"}, context)
    with pytest.raises(SettingsError, match="batch_size"):
        TaxFileConnector({"drop_folder": str(tmp_path), "batch_size": 0}, context)
    connector = TaxFileConnector(
        {"drop": {"folder": str(tmp_path / "in"), "patterns": ["*.csv"]}}, context
    )
    drop = connector.drop_folder()
    assert drop.folder == tmp_path / "in" and drop.require_manifest
    assert drop.patterns == ("*.csv",)
