"""Bulk import (``srhub import``, ``hub.bulk``) on SQLite and PostgreSQL: households and
persons created with provenance, a rerun adds nothing, bad rows go to the rejects file while
good ones load, a row is linked to the person already holding its national ID, and a tax
extract puts incomes on the right persons."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from hub.bulk import ImportOptions, run_import
from hub.cli import main
from hub.runtime import HubRuntime
from hub.settings import load_settings
from registry_core.db import make_session_factory
from registry_core.models import (
    FieldAssertion,
    Household,
    HouseholdRecertification,
    Membership,
    OutboxEvent,
    Person,
    PersonMatchKey,
    SocioEconomicAttribute,
)
from registry_core.service import Source
from sandbox_mocks.population import national_id_check_digit

COLUMNS = (
    "HOUSEHOLD_REF", "ADMIN_AREA", "ADDRESS", "LATITUDE", "LONGITUDE", "GIVEN_NAME",
    "FAMILY_NAME", "OTHER_NAMES", "SEX", "BIRTH_DATE", "RELATIONSHIP", "NATIONAL_ID", "TAX_ID",
)  # fmt: skip
TAX_COLUMNS = (
    "RECORD_NO", "TAXPAYER_TIN", "NATIONAL_ID", "TAXPAYER_NAME", "EMPLOYER_TIN",
    "EMPLOYER_NAME", "TAX_YEAR", "PERIOD_START", "PERIOD_END", "GROSS_INCOME", "CURRENCY",
    "FILED_ON", "TAX_OFFICE",
)  # fmt: skip


def nid(n: int) -> str:
    body = f"{100_000_000 + n:09d}"
    return body + national_id_check_digit(body)


def person_row(ref: str, n: int, relationship: str, **over: str) -> dict[str, str]:
    row = {
        "HOUSEHOLD_REF": ref,
        "ADMIN_AREA": "r01-d01-l001",
        "ADDRESS": f"{ref} main road",
        "LATITUDE": "-1.25",
        "LONGITUDE": "36.5",
        "GIVEN_NAME": f"Given{n}",
        "FAMILY_NAME": f"Family{ref}",
        "OTHER_NAMES": "",
        "SEX": "female" if n % 2 else "male",
        "BIRTH_DATE": f"{1950 + n % 50}-0{1 + n % 9}-1{n % 9}",
        "RELATIONSHIP": relationship,
        "NATIONAL_ID": nid(n),
        "TAX_ID": f"{200_000_000 + n}",
    }
    row.update(over)
    return row


def export(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def households(count: int, start: int = 0) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    n = start
    for h in range(count):
        ref = f"H{start + h:04d}"
        for position in range(1 + h % 3):
            rows.append(person_row(ref, n, "head" if position == 0 else "child"))
            n += 1
    return rows


def load(registry: Any, db_engine: Any, path: Path, **options: Any) -> Any:
    options.setdefault("fmt", "csv")
    options.setdefault("mapping", "partner_household_row")
    options.setdefault("rejects", path.with_name(path.name + ".rejects.jsonl"))
    return run_import(
        registry, make_session_factory(db_engine), ImportOptions(path=path, **options)
    )


def count(db_engine: Any, model: Any) -> int:
    with db_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_import_creates_households_with_provenance_and_a_rerun_adds_nothing(
    registry, db_engine, tmp_path
):
    rows = households(10)  # 10 households, 1 to 3 members: 19 persons
    path = export(tmp_path / "export.csv", rows)
    summary = load(registry, db_engine, path, batch_size=100)
    assert summary.counts["households_created"] == 10
    assert summary.counts["persons_created"] == len(rows) == 19
    assert summary.rejected == 0
    assert count(db_engine, Household) == 10
    assert count(db_engine, Person) == 19
    assert count(db_engine, Membership) == 19
    assert count(db_engine, HouseholdRecertification) == 10
    assert count(db_engine, PersonMatchKey) >= 19
    assert count(db_engine, OutboxEvent) == 0  # a first load writes no per-household event

    found = registry.find_person_by_identifier("national_id", rows[1]["NATIONAL_ID"])
    assert found is not None
    person = registry.get_person(found["id"])
    assert person["given_name"] == rows[1]["GIVEN_NAME"]
    assert {i["system"] for i in person["identifiers"]} == {"national_id", "tax_id"}
    with db_engine.connect() as conn:
        sources = set(
            conn.execute(
                select(FieldAssertion.field, FieldAssertion.source_system).where(
                    FieldAssertion.entity_id == uuid.UUID(found["id"])
                )
            )
        )
    assert sources == {(f, "import") for f in ("given_name", "family_name", "sex", "birth_date")}
    household = registry.get_household(person["memberships"][0]["household_id"])
    assert household["admin_area_code"] == "R01-D01-L001"
    assert household["location"] == {"lat": -1.25, "lon": 36.5}
    assert household["members"][0]["relationship"] == "head"

    again = load(registry, db_engine, path, batch_size=100)
    assert again.already_done
    assert count(db_engine, Person) == 19

    # the same rows under a new file (another checkpoint): matched, never created twice
    copy = export(tmp_path / "copy.csv", rows)
    copy.write_text(copy.read_text() + "\n")  # other bytes, same rows
    third = load(registry, db_engine, copy, batch_size=100)
    assert third.counts.get("households_created", 0) == 0
    assert third.counts["persons_matched"] == 19
    assert count(db_engine, Person) == 19


def test_an_interrupted_import_continues_after_the_last_committed_line(
    registry, db_engine, tmp_path, monkeypatch
):
    import hub.bulk.households as module

    path = export(tmp_path / "export.csv", households(30))
    real = module.HouseholdRows.process
    calls = {"n": 0}

    def failing(self, registry, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return real(self, registry, rows)

    monkeypatch.setattr(module.HouseholdRows, "process", failing)
    with pytest.raises(RuntimeError, match="power cut"):
        load(registry, db_engine, path, batch_size=10)
    loaded = count(db_engine, Household)
    assert 0 < loaded < 30
    monkeypatch.setattr(module.HouseholdRows, "process", real)
    summary = load(registry, db_engine, path, batch_size=10)
    assert summary.resumed_from > 1
    assert count(db_engine, Household) == 30
    assert summary.counts["households_created"] == 30  # counts carried over the restart


def test_bad_rows_go_to_rejects_with_line_and_reason_while_good_ones_load(
    registry, db_engine, tmp_path
):
    rows = households(4)  # H0000 (1 member), H0001 (2), H0002 (3), H0003 (1)
    rows[1]["BIRTH_DATE"] = "not a date"  # H0001's head: the whole household is refused
    rows[3]["SEX"] = ""  # H0002's head (lines 5-7): refused whole too
    rows.append(person_row("H0009", 90, "child"))  # no head
    dup = person_row("H0010", 91, "head", NATIONAL_ID=rows[0]["NATIONAL_ID"])
    dup["TAX_ID"] = ""
    path = export(tmp_path / "export.csv", [*rows, dup])
    summary = load(registry, db_engine, path, batch_size=100)
    rejects = [json.loads(line) for line in (tmp_path / "export.csv.rejects.jsonl").open()]
    by_line = {r["line"]: r for r in rejects}
    assert by_line[3]["reason"] == "mapping_failed"  # line 1 is the header
    assert by_line[3]["problems"][0]["target"] == "person.birth_date"
    assert rows[1]["NATIONAL_ID"] not in json.dumps(rejects)  # never an identifier
    assert "another row of this household was refused (line 3)" in by_line[4]["reason"]
    assert "exactly one member must be the head" in by_line[len(rows) + 1]["reason"]
    assert summary.rejected == len(rejects)
    assert summary.counts["households_created"] >= 2  # H0000 and H0003 at least
    assert registry.find_person_by_identifier("national_id", rows[0]["NATIONAL_ID"]) is not None
    assert registry.find_person_by_identifier("national_id", rows[1]["NATIONAL_ID"]) is None


def test_a_row_is_linked_to_the_person_holding_its_national_id(registry, db_engine, tmp_path):
    known = registry.register_household(
        {
            "admin_area_code": "R01-D01-L001",
            "members": [
                {
                    "given_name": "Amina",
                    "family_name": "Known",
                    "sex": "female",
                    "birth_date": "1970-05-05",
                    "relationship": "head",
                    "identifiers": [{"system": "national_id", "value": nid(500)}],
                }
            ],
        },
        Source("field_survey"),
    )
    person_id = known.record["members"][0]["id"]
    row = person_row("HX", 500, "head", GIVEN_NAME="Aminah")
    path = export(tmp_path / "export.csv", [row, *households(2, start=600)])
    summary = load(registry, db_engine, path, batch_size=100)
    assert summary.counts["persons_matched"] == 1
    assert summary.counts["households_created"] == 2
    assert count(db_engine, Household) == 3  # the known one and the two new ones
    linked = registry.get_person(person_id)
    assert {i["system"] for i in linked["identifiers"]} == {"national_id", "tax_id"}
    provenance = registry.provenance("person", person_id)
    assert {(p["field"], p["source_system"]) for p in provenance} >= {
        ("given_name", "field_survey"),
        ("given_name", "import"),
    }


def test_tax_extract_applies_incomes_to_the_right_persons(registry, db_engine, tmp_path):
    rows = households(5)
    load(registry, db_engine, export(tmp_path / "export.csv", rows), batch_size=100)
    tax = tmp_path / "incomes.csv"
    lines = []
    for n, row in enumerate(rows[:4]):
        lines.append(
            {
                "RECORD_NO": str(n + 1),
                "TAXPAYER_TIN": row["TAX_ID"],
                "NATIONAL_ID": row["NATIONAL_ID"] if n % 2 else "",
                "TAXPAYER_NAME": f"{row['FAMILY_NAME'].upper()}, {row['GIVEN_NAME']}",
                "EMPLOYER_TIN": "900000001",
                "EMPLOYER_NAME": "Employer Ltd",
                "TAX_YEAR": "2024",
                "PERIOD_START": "2024-01-01",
                "PERIOD_END": "2024-12-31",
                "GROSS_INCOME": f"{1000 * (n + 1)}.00",
                "CURRENCY": "XTS",
                "FILED_ON": "2025-02-01",
                "TAX_OFFICE": "Steueramt Südhafen",
            }
        )
    bad = dict(lines[0], RECORD_NO="9", GROSS_INCOME="-5")
    stranger = dict(lines[0], RECORD_NO="10", TAXPAYER_TIN="299999999", NATIONAL_ID="")
    with tax.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=TAX_COLUMNS, delimiter=";")
        writer.writeheader()
        writer.writerows([*lines, bad, stranger])
    summary = load(registry, db_engine, tax, mapping="tax_income_row", batch_size=100)
    assert summary.counts["applied"] == 4
    assert summary.counts["not_registered"] == 1  # through the per-record applier
    assert summary.rejected == 1
    with db_engine.connect() as conn:
        incomes = {
            person: value
            for person, value in conn.execute(
                select(SocioEconomicAttribute.person_id, SocioEconomicAttribute.value).where(
                    SocioEconomicAttribute.name == "gross_income",
                    SocioEconomicAttribute.source_system == "tax",
                )
            )
        }
    for n, row in enumerate(rows[:4]):
        person = registry.find_person_by_identifier("national_id", row["NATIONAL_ID"])
        assert incomes[uuid.UUID(person["id"])] == 1000 * (n + 1)
    events = count(db_engine, OutboxEvent)
    assert events == 4  # household.updated per taxpayer, as the per-record path writes

    # the same facts again (another file, same rows): nothing changes, no event
    again = tmp_path / "again.csv"
    again.write_bytes(tax.read_bytes() + b"\n")
    second = load(registry, db_engine, again, mapping="tax_income_row", batch_size=100)
    assert second.counts["already_applied"] == 4
    assert count(db_engine, OutboxEvent) == events


def test_the_command_prints_a_summary_and_exits_1_on_rejects(tmp_path: Path):
    env = {"SRHUB_DATA_DIR": str(tmp_path / "var"), "SRHUB_DATABASE_URL": ""}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    runtime = HubRuntime(load_settings(env=env))
    try:
        runtime.registry.ensure_identifier_systems()
    finally:
        runtime.close()
    rows = households(3)
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "[1]\n", encoding="utf-8")
    dry = runner.invoke(main, ["import", str(path), "--format", "jsonl", "--dry-run"], env=env)
    assert dry.exit_code == 1, dry.output
    assert "dry run: rows=" in dry.output
    done = runner.invoke(main, ["import", str(path), "--format", "jsonl", "--quiet"], env=env)
    assert done.exit_code == 1, done.output
    assert "households_created=3" in done.output
    assert "rejected=1" in done.output
    reject = json.loads((tmp_path / "export.jsonl.rejects.jsonl").read_text().splitlines()[0])
    assert reject == {"line": len(rows) + 1, "reason": "a line must hold one JSON object"}


def test_an_import_during_a_key_rotation_matches_old_hashes_and_writes_the_new_version(
    db_engine, tmp_path
):
    """After ``srhub keys rotate`` and before the re-key job: rows hashed under the old
    look-up key are still matched, and new identifiers carry the active key's version."""
    import os

    from registry_core.crypto import IdentifierCipher
    from registry_core.models import Identifier
    from registry_core.service import Registry

    v1 = (os.urandom(32), os.urandom(32))
    before = Registry(make_session_factory(db_engine), IdentifierCipher(*v1))
    before.ensure_identifier_systems()
    rows = households(4)
    load(before, db_engine, export(tmp_path / "first.csv", rows), batch_size=100)

    rotated = IdentifierCipher.from_versions({1: v1, 2: (os.urandom(32), os.urandom(32))}, 2)
    after = Registry(make_session_factory(db_engine), rotated)
    copy = export(tmp_path / "again.csv", rows)
    copy.write_text(copy.read_text() + "\n")  # another file (checkpoint), the same rows
    again = load(after, db_engine, copy, batch_size=100)
    assert again.counts.get("households_created", 0) == 0
    assert again.counts["persons_matched"] == len(rows)
    new = load(after, db_engine, export(tmp_path / "new.csv", households(2, start=50)))
    assert new.counts["households_created"] == 2
    with db_engine.connect() as conn:
        versions = sorted(conn.execute(select(Identifier.value_hash_version)).scalars())
    assert versions.count(2) == 2 * len(households(2, start=50))  # national and tax ID each
    assert versions.count(1) == 2 * len(rows)
    found = after.find_person_by_identifier(
        "national_id", households(2, start=50)[0]["NATIONAL_ID"]
    )
    assert found is not None
