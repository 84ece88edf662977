"""Tax authority mock over real HTTP: drops, manifests, and every fault made on demand."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest
import requests
from lxml import etree

from sandbox_mocks.common.server import MockServer
from sandbox_mocks.population.ids import is_valid_national_id, national_id_check_digit
from sandbox_mocks.population.model import Household, Income, Person
from sandbox_mocks.tax import BAD_ROW_KINDS, TaxAuthorityConfig, create_app

SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
NS = {"t": "urn:sandbox:tax-authority:income-extract:1"}


def _nid(n: int) -> str:
    body = f"{100000000 + n * 7919:09d}"
    return body + national_id_check_digit(body)


def make_households(count: int = 12) -> list[Household]:
    """Households with one or two earners each, over two tax years."""
    households = []
    for h in range(count):
        members, incomes = [], []
        for m in range(2):
            n = h * 2 + m
            tin = f"{200000000 + n}"
            members.append(
                Person(
                    person_key=f"p{n}",
                    given_name=f"Given{n}",
                    family_name=f"Family{h}",
                    sex="female" if m else "male",
                    birth_date=date(1980, 1, 1 + m),
                    national_id=_nid(n),
                    birth_registration_number=None,
                    tax_id=tin,
                    relationship="head" if m == 0 else "spouse",
                )
            )
            for year in (2024, 2025):
                incomes.append(
                    Income(
                        tax_id=tin,
                        national_id=_nid(n),
                        employer_name=f"Employer {h % 3}",
                        employer_tax_id=f"9{h % 3:08d}",
                        year=year,
                        amount=10000 + 137 * n,
                    )
                )
        households.append(
            Household(
                household_key=f"h{h}",
                locality_code="R01-D01-L001",
                address="1 Road",
                latitude=0.0,
                longitude=0.0,
                members=members,
                incomes=incomes,
            )
        )
    return households


@pytest.fixture
def tax(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    config = TaxAuthorityConfig(drop_folder=tmp_path / "drops", households=make_households())
    with MockServer(create_app(config)) as server:
        yield server.url, tmp_path / "drops"


def _drop(url: str, body: dict | None = None) -> dict:
    response = requests.post(f"{url}/drops", json=body or {}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def _manifest(folder: Path, entry: dict) -> dict:
    return json.loads((folder / entry["manifest_name"]).read_text("utf-8"))


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8")), delimiter=";"))


def _row_problems(row: dict[str, str]) -> list[str]:
    """What a careful receiver would reject in one row."""
    problems = []
    for name in ("PERIOD_START", "PERIOD_END", "FILED_ON"):
        try:
            date.fromisoformat(row[name])
        except ValueError:
            problems.append("bad_date")
    try:
        if Decimal(row["GROSS_INCOME"]) < 0:
            problems.append("negative_amount")
    except InvalidOperation:
        problems.append("non_numeric_amount")
    if not row["TAXPAYER_TIN"]:
        problems.append("missing_tax_id")
    if row["NATIONAL_ID"] and not is_valid_national_id(row["NATIONAL_ID"]):
        problems.append("bad_check_digit")
    return problems


def test_clean_csv_drop_matches_its_manifest_and_checksum(tax: tuple[str, Path]) -> None:
    url, _ = tax
    folder = Path(requests.get(f"{url}/drop-folder", timeout=5).json()["path"])
    record = _drop(url, {"format": "csv", "period": "2025"})
    assert record["faults"] == {"file": [], "bad_rows": []}
    [entry] = record["files"]
    data = (folder / entry["file_name"]).read_bytes()
    manifest = _manifest(folder, entry)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert manifest["file_name"] == entry["file_name"]
    assert manifest["format"] == "csv" and manifest["period"] == "2025"
    assert manifest["encoding"] == "utf-8" and manifest["generated_at"].endswith("Z")
    sidecar = (folder / entry["checksum_name"]).read_text("ascii")
    assert sidecar == f"{manifest['sha256']}  {entry['file_name']}\n"
    rows = _csv_rows(data)
    assert len(rows) == manifest["row_count"] == 24  # 12 households x 2 earners, one year
    assert all(_row_problems(row) == [] for row in rows)
    assert {row["TAX_YEAR"] for row in rows} == {"2025"}
    expected = {(f"{200000000 + n}", f"{10000 + 137 * n}.00") for n in range(24)}
    assert {(row["TAXPAYER_TIN"], row["GROSS_INCOME"]) for row in rows} == expected
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left


def test_clean_xml_drop_parses_with_a_safe_parser(tax: tuple[str, Path]) -> None:
    url, folder = tax
    record = _drop(url, {"format": "xml", "period": "2024", "rows": 5})
    [entry] = record["files"]
    data = (folder / entry["file_name"]).read_bytes()
    manifest = _manifest(folder, entry)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    root = etree.fromstring(data, SAFE_PARSER)
    returns = root.findall("t:Return", NS)
    assert len(returns) == manifest["row_count"] == 5
    assert root.get("period") == "2024"
    first = returns[0]
    assert is_valid_national_id(first.findtext("t:NationalID", namespaces=NS))
    assert first.find("t:GrossIncome", NS).get("currency") == "XTS"
    assert first.find("t:Employer", NS).get("tin").startswith("9")


def test_xml_validates_against_the_published_schema_unless_spoilt(tax: tuple[str, Path]) -> None:
    url, folder = tax
    xsd = requests.get(f"{url}/schema/income-extract.xsd", timeout=5)
    assert xsd.status_code == 200
    schema = etree.XMLSchema(etree.fromstring(xsd.content, SAFE_PARSER))
    clean = _drop(url, {"format": "xml"})
    doc = etree.fromstring((folder / clean["files"][0]["file_name"]).read_bytes(), SAFE_PARSER)
    assert schema.validate(doc), schema.error_log
    for kind in ("bad_date", "negative_amount", "non_numeric_amount", "missing_tax_id"):
        spoilt = _drop(url, {"format": "xml", "bad_rows": {kind: 1}})
        data = (folder / spoilt["files"][0]["file_name"]).read_bytes()
        assert not schema.validate(etree.fromstring(data, SAFE_PARSER)), kind


def test_bad_rows_are_injected_on_demand_and_each_is_detectable(tax: tuple[str, Path]) -> None:
    url, folder = tax
    wanted = {kind: 2 for kind in BAD_ROW_KINDS}
    record = _drop(url, {"format": "csv", "period": "2025", "bad_rows": wanted})
    injected = record["faults"]["bad_rows"]
    assert sorted(i["kind"] for i in injected) == sorted(k for k in BAD_ROW_KINDS for _ in "12")
    rows = _csv_rows((folder / record["files"][0]["file_name"]).read_bytes())
    found = {int(row["RECORD_NO"]): _row_problems(row) for row in rows if _row_problems(row)}
    assert found == {i["row"]: [i["kind"]] for i in injected}
    assert len(rows) == 24  # the good rows around the bad ones are all still there


def test_bad_rows_in_xml_are_detectable_too(tax: tuple[str, Path]) -> None:
    url, folder = tax
    record = _drop(url, {"format": "xml", "bad_rows": {"missing_tax_id": 1, "bad_check_digit": 1}})
    root = etree.fromstring((folder / record["files"][0]["file_name"]).read_bytes(), SAFE_PARSER)
    by_kind = {i["kind"]: i["row"] for i in record["faults"]["bad_rows"]}
    missing = root.find(f"t:Return[@recordNo='{by_kind['missing_tax_id']}']", NS)
    assert missing.find("t:TaxpayerTIN", NS) is None
    bad = root.find(f"t:Return[@recordNo='{by_kind['bad_check_digit']}']", NS)
    assert not is_valid_national_id(bad.findtext("t:NationalID", namespaces=NS))


def test_duplicate_delivers_the_same_content_under_two_names(tax: tuple[str, Path]) -> None:
    url, folder = tax
    record = _drop(url, {"faults": ["duplicate"]})
    first, second = record["files"]
    assert first["file_name"] != second["file_name"]
    one = (folder / first["file_name"]).read_bytes()
    two = (folder / second["file_name"]).read_bytes()
    assert one == two
    assert _manifest(folder, first)["sha256"] == _manifest(folder, second)["sha256"]


def test_truncated_file_fails_its_manifest_checks(tax: tuple[str, Path]) -> None:
    url, folder = tax
    record = _drop(url, {"format": "csv", "faults": ["truncated"]})
    [entry] = record["files"]
    data = (folder / entry["file_name"]).read_bytes()
    manifest = _manifest(folder, entry)
    assert len(data) < manifest["size_bytes"]
    assert hashlib.sha256(data).hexdigest() != manifest["sha256"]
    assert entry["bytes_written"] == len(data)
    xml_record = _drop(url, {"format": "xml", "faults": ["truncated"]})
    xml_data = (folder / xml_record["files"][0]["file_name"]).read_bytes()
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(xml_data, SAFE_PARSER)


def test_wrong_encoding_is_latin1_claiming_utf8(tax: tuple[str, Path]) -> None:
    url, folder = tax
    record = _drop(url, {"format": "csv", "faults": ["wrong_encoding"]})
    [entry] = record["files"]
    data = (folder / entry["file_name"]).read_bytes()
    manifest = _manifest(folder, entry)
    assert manifest["encoding"] == "utf-8"
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]  # the bytes are as sent
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert "Impôts" in data.decode("latin-1") or "ñ" in data.decode("latin-1")


def test_injection_mix_is_set_over_the_api(tax: tuple[str, Path]) -> None:
    url, _ = tax
    bad = requests.put(f"{url}/injection", json={"bad_row_rate": 3}, timeout=5)
    assert bad.status_code == 400
    assert "bad_row_rate" in bad.json()["error"]["message"]
    mix = {"bad_row_rate": 0.5, "bad_row_kinds": ["negative_amount"], "truncated_rate": 1.0}
    response = requests.put(f"{url}/injection", json=mix, timeout=5)
    assert response.status_code == 200
    assert requests.get(f"{url}/injection", timeout=5).json()["truncated_rate"] == 1.0
    record = _drop(url, {"format": "csv"})
    assert record["faults"]["file"] == ["truncated"]
    kinds = {i["kind"] for i in record["faults"]["bad_rows"]}
    assert kinds == {"negative_amount"}
    assert 3 <= len(record["faults"]["bad_rows"]) <= 21  # about half of 24 rows
    status = requests.get(f"{url}/status", timeout=5).json()
    assert status["drop_count"] == 1 and status["periods"] == {"2024": 24, "2025": 24}
    listed = requests.get(f"{url}/drops", timeout=5).json()
    assert [d["drop_id"] for d in listed["drops"]] == [record["drop_id"]]
    one = requests.get(f"{url}/drops/{record['drop_id']}", timeout=5)
    assert one.json()["files"] == record["files"]


def test_bad_requests_get_reasons(tax: tuple[str, Path]) -> None:
    url, _ = tax
    response = requests.post(f"{url}/drops", json={"format": "pdf"}, timeout=5)
    assert response.status_code == 400 and "format" in response.json()["error"]["message"]
    response = requests.post(f"{url}/drops", json={"period": "1999"}, timeout=5)
    assert response.status_code == 404 and "2024" in response.json()["error"]["message"]
    response = requests.post(
        f"{url}/drops", data=b"[1", timeout=5, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert requests.get(f"{url}/drops/D999999", timeout=5).status_code == 404
    faulted = requests.get(f"{url}/status", headers={"X-Mock-Fault": "error=503"}, timeout=5)
    assert faulted.status_code == 503


def test_periodic_drops_are_complete_whenever_a_manifest_is_visible(tmp_path: Path) -> None:
    folder = tmp_path / "drops"
    config = TaxAuthorityConfig(
        drop_folder=folder, households=make_households(40), interval_seconds=0.1
    )
    checked: set[str] = set()
    problems: list[str] = []
    done = threading.Event()

    def watcher() -> None:
        while not done.is_set():
            for path in folder.glob("*.manifest.json"):
                if path.name in checked:
                    continue
                manifest = json.loads(path.read_text("utf-8"))
                data = (folder / manifest["file_name"]).read_bytes()
                if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
                    problems.append(manifest["file_name"])
                checked.add(path.name)

    with MockServer(create_app(config)) as server:
        thread = threading.Thread(target=watcher)
        thread.start()
        deadline = time.monotonic() + 5
        while len(checked) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        done.set()
        thread.join()
        status = requests.get(f"{server.url}/status", timeout=5).json()
    assert len(checked) >= 3 and problems == []
    assert status["interval_seconds"] == 0.1 and status["drop_count"] >= 3
    formats_seen = {json.loads((folder / n).read_text())["format"] for n in checked}
    assert formats_seen == {"csv", "xml"}  # drops alternate between the two variants


def test_numbering_continues_after_a_restart(tmp_path: Path) -> None:
    config = TaxAuthorityConfig(drop_folder=tmp_path, households=make_households(2))
    with MockServer(create_app(config)) as server:
        first = _drop(server.url)
    with MockServer(create_app(config)) as server:
        second = _drop(server.url)
    assert second["sequence"] > first["sequence"]
    assert (tmp_path / first["files"][0]["file_name"]).exists()


def test_noise_changes_names_but_never_the_tax_id(tmp_path: Path) -> None:
    households = make_households()
    config = TaxAuthorityConfig(drop_folder=tmp_path, households=households, noise_rate=1.0)
    truth = {p.tax_id: p for h in households for p in h.members}
    with MockServer(create_app(config)) as server:
        record = _drop(server.url, {"format": "csv", "period": "2025"})
    rows = _csv_rows((tmp_path / record["files"][0]["file_name"]).read_bytes())
    assert {row["TAXPAYER_TIN"] for row in rows} == set(truth)
    exact = [
        row
        for row in rows
        if row["TAXPAYER_NAME"]
        == f"{truth[row['TAXPAYER_TIN']].family_name.upper()}, "
        f"{truth[row['TAXPAYER_TIN']].given_name}"
        and row["NATIONAL_ID"] == truth[row["TAXPAYER_TIN"]].national_id
    ]
    assert len(exact) < len(rows) // 2  # every copy got one or two data-entry errors
