"""Benchmark: a country's first load (``srhub import``) and a national tax extract, on PostgreSQL.

    python -m bench.bulk [--rows 1000000] [--batch-size 5000] [--keep-db]

The story is issue 17's: a registry starts from a partner's export of the whole population,
then the tax authority's yearly extract lands on it. The bench builds a PostgreSQL database of
its own (``SRHUB_BENCH_DATABASE_URL`` with ``_bulk_<run id>`` appended; dropped afterwards
unless ``--keep-db``), migrated to head, and writes two temporary files from the synthetic
population (``sandbox_mocks.population``, streamed): the household export, one person per row
(the ``partner_household_row`` columns, with national ID and tax ID), and a tax extract of the
same number of rows in the tax authority's format (``sandbox_mocks.tax.records.income_row``;
each income over several tax years until the count is reached).

Measured in the same run, on the same database server:

- ``copy``: the baseline, plain ``COPY ... FROM STDIN (FORMAT csv)`` of the export file into
  a table of text columns, nothing checked: what the server and the disk give at best;
- ``import``: ``hub.bulk.run_import`` of the export (mapping, validation, identifier
  matching, sealed identifiers, provenance, match keys, set-based inserts, checkpoints);
- ``tax``: the extract dropped, with its manifest, in a folder the tax connector watches,
  the registry's bulk loader in its context (``drop_tax_file``): the drop folder's checksum,
  the connector's whole-file checks and row checks, then ``hub.bulk`` (the
  ``tax_income_row`` mapping, the set-based income writer and its events), timed from the
  runner's poll to the report;
- ``floor``: after the import, the database alone writing again every row the import wrote
  (persons, households, memberships, identifiers, field assertions, match keys,
  recertification cycles: about eleven table rows and twenty-five index entries per input
  row) with ``INSERT ... SELECT`` into copies of those tables with their indexes, rolled
  back. No import that writes the registry's rows can beat it on this server; it puts the
  import's figure and the COPY baseline (one row, no index) in proportion.

A progress bar (rich) shows each phase on a terminal. Peak RSS is this process's high-water
mark from ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (Linux: KiB): the import runs in this
process, so it is the import's peak (generation included). The last line is
``bulk ... import_rows_per_s=A tax_rows_per_s=B copy_rows_per_s=C peak_rss_mb=D``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.intake import drop_database, fresh_database
from sandbox_mocks.population import SyntheticCountry
from sandbox_mocks.tax.records import CSV_COLUMNS, income_row

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/srhub_bench"
EXPORT_COLUMNS = (
    "HOUSEHOLD_REF", "ADMIN_AREA", "ADDRESS", "LATITUDE", "LONGITUDE", "GIVEN_NAME",
    "FAMILY_NAME", "OTHER_NAMES", "SEX", "BIRTH_DATE", "RELATIONSHIP", "NATIONAL_ID", "TAX_ID",
)  # fmt: skip
TAX_YEARS = 6


def database_url(run_id: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(os.environ.get("SRHUB_BENCH_DATABASE_URL", DEFAULT_URL))
    return url.set(database=f"{url.database}_bulk_{run_id}").render_as_string(hide_password=False)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def export_rows(household: Any) -> list[tuple[str, ...]]:
    """A synthetic household as the partner export's rows (``EXPORT_COLUMNS``), one a person."""
    return [
        (
            household.household_key, household.locality_code, household.address,
            f"{household.latitude:.6f}", f"{household.longitude:.6f}",
            person.given_name, person.family_name, "", person.sex,
            person.birth_date.isoformat(), person.relationship,
            person.national_id or "", person.tax_id or "",
        )
        for person in household.members
    ]  # fmt: skip


def write_files(rows: int, seed: int, export: Path, tax: Path) -> tuple[int, int]:
    """The export (``rows`` persons) and a tax extract of up to ``rows`` returns, streamed."""
    country = SyntheticCountry(seed)
    people = returns = 0
    with (
        export.open("w", newline="", encoding="utf-8") as out,
        tax.open("w", newline="", encoding="utf-8") as tax_out,
    ):
        people_csv = csv.writer(out)
        people_csv.writerow(EXPORT_COLUMNS)
        tax_csv = csv.DictWriter(tax_out, fieldnames=CSV_COLUMNS, delimiter=";")
        tax_csv.writeheader()
        for household in country.iter_households(rows):
            rows_of_household = export_rows(household)
            people += len(rows_of_household)
            people_csv.writerows(rows_of_household)
            names = {p.tax_id: p for p in household.members if p.tax_id}
            for income in household.incomes:
                for back in range(TAX_YEARS):
                    if returns >= rows:
                        break
                    year = income.year - back
                    returned = type(income)(**{**income.__dict__, "year": year})
                    row = income_row(returned, names.get(income.tax_id), "XTS")
                    returns += 1
                    row["RECORD_NO"] = str(returns)
                    tax_csv.writerow(row)
    return people, returns


def copy_baseline(url: str, export: Path) -> tuple[int, float]:
    """Rows and seconds of ``COPY`` of the export into a plain table of text columns."""
    import psycopg

    columns = ", ".join(f'"{c.lower()}" text' for c in EXPORT_COLUMNS)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(f"CREATE UNLOGGED TABLE IF NOT EXISTS bench_copy ({columns})")
        conn.execute("TRUNCATE bench_copy")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY bench_copy FROM STDIN (FORMAT csv, HEADER true)") as copy,
            export.open("rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        elapsed = time.perf_counter() - started
        count = conn.execute("SELECT count(*) FROM bench_copy").fetchone()
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return int(count[0] if count else 0), elapsed


IMPORT_TABLES = (
    "persons", "households", "memberships", "identifiers", "field_assertions",
    "person_match_keys", "household_recertifications",
)  # fmt: skip


def write_floor(url: str) -> tuple[int, float]:
    """Table rows and seconds the database takes to write again, with no Python in the way,
    every row the import wrote (``INSERT ... SELECT`` into copies of its tables with their
    indexes, rolled back): the least an import writing these rows can cost on this server."""
    import psycopg

    written = 0
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        started = time.perf_counter()
        for table in IMPORT_TABLES:
            conn.execute(f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)")
            found = conn.execute(f"INSERT INTO floor_{table} SELECT * FROM {table}")  # noqa: S608
            written += found.rowcount
        conn.execute("SELECT 1").fetchone()
        elapsed = time.perf_counter() - started
        conn.rollback()
    return written, elapsed


@dataclass
class TaxDrop:
    """What the tax connector's report said of the dropped extract, and how long it took."""

    rows: int
    rejected: int
    outcomes: dict[str, int]
    seconds: float

    def line(self) -> str:
        found = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        return f"rows={self.rows} rejected={self.rejected} {found} seconds={self.seconds:.1f}"


def drop_tax_file(
    registry: Any,
    sessions: Any,
    extract: Path,
    returns: int,
    batch_size: int,
    advance: Callable[[int], None],
) -> TaxDrop:
    """Drop ``extract`` with its manifest in a folder the tax connector watches, with the
    registry's bulk loader in its context, and let its runner handle it once: the manifest
    and checksum, the whole-file checks, every row's checks, then the bulk load."""
    from connectors.base import ConnectorContext, FileDropRunner
    from connectors.tax import TaxFileConnector
    from hub.bulk.connector_loader import RegistryBulkLoader

    folder = extract.parent / "tax-drops"
    folder.mkdir()
    target = folder / "income_all_000001.csv"
    extract.rename(target)
    digest = hashlib.sha256()
    with target.open("rb") as handle:  # streamed: the extract is as big as the registry
        while block := handle.read(1 << 20):
            digest.update(block)
    manifest = {
        "file_name": target.name,
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ";",
        "row_count": returns,
        "sha256": digest.hexdigest(),
        "size_bytes": target.stat().st_size,
    }  # no period: the extract spans several tax years
    (folder / "income_all_000001.manifest.json").write_text(json.dumps(manifest))

    def nothing_published(connector: str, record: Any) -> None:
        raise AssertionError("a bulk-loaded file publishes no row")

    loader = RegistryBulkLoader(
        lambda: (registry, sessions), extract.parent / "bulk-rejects", batch_size, advance
    )
    context = ConnectorContext(
        "tax",
        nothing_published,
        identifiers=registry.identifier_profile,
        bulk_loader=loader,
    )
    settings = {"kind": "tax", "drop_folder": str(folder), "bulk_threshold": 1}
    runner = FileDropRunner(TaxFileConnector(settings, context))
    started = time.perf_counter()
    outcome = runner.run_once()
    seconds = time.perf_counter() - started
    if outcome.processed != [target.name]:
        raise RuntimeError(f"the tax connector did not process the extract: {outcome}")
    report = json.loads(next((folder / "processed").glob("*.report.json")).read_text())
    outcomes = report["bulk"]["outcomes"]
    return TaxDrop(report["rows_read"], report["rejected_count"], outcomes, seconds)


def run(args: argparse.Namespace) -> int:
    from hub.bulk import ImportOptions, run_import
    from hub.bulk.progress import line_progress
    from hub.dbschema import upgrade_to_head
    from registry_core.crypto import IdentifierCipher
    from registry_core.db import make_engine, make_session_factory
    from registry_core.service import Registry

    run_id = uuid.uuid4().hex[:8]
    url = database_url(run_id)
    fresh_database(url)
    show = sys.stderr.isatty() and not args.quiet
    try:
        upgrade_to_head(url)
        with tempfile.TemporaryDirectory(prefix="srhub-bulk-") as folder:
            export, tax = Path(folder, "export.csv"), Path(folder, "incomes.csv")
            started = time.perf_counter()
            people, returns = write_files(args.rows, args.seed, export, tax)
            generate_s = time.perf_counter() - started
            print(
                f"generated people={people} tax_rows={returns} in {generate_s:.1f}s "
                f"({export.stat().st_size / 1e6:.0f} MB + {tax.stat().st_size / 1e6:.0f} MB)",
                flush=True,
            )
            copied, copy_s = copy_baseline(url, export)
            print(f"copy rows={copied} seconds={copy_s:.1f}", flush=True)

            engine = make_engine(url)
            sessions = make_session_factory(engine)
            registry = Registry(sessions, IdentifierCipher(os.urandom(32), os.urandom(32)))
            registry.ensure_identifier_systems()
            options = ImportOptions(
                path=export,
                fmt="csv",
                mapping="partner_household_row",
                batch_size=args.batch_size,
                rejects=Path(folder, "export.rejects.jsonl"),
            )
            with line_progress(export, enabled=show) as advance:
                imported = run_import(registry, sessions, options, advance)
            print(f"import {imported.line()}", flush=True)
            table_rows, floor_s = write_floor(url)
            print(
                f"floor: the database writes the import's {table_rows} table rows "
                f"({table_rows / max(imported.rows, 1):.1f} per input row, with their indexes) "
                f"again in {floor_s:.1f}s",
                flush=True,
            )
            with line_progress(tax, enabled=show) as advance:
                taxed = drop_tax_file(registry, sessions, tax, returns, args.batch_size, advance)
            print(f"tax {taxed.line()}", flush=True)
            engine.dispose()
    finally:
        if not args.keep_db:
            drop_database(url)

    copy_rate = copied / max(copy_s, 1e-9)
    import_rate = imported.rows / max(imported.seconds, 1e-9)
    tax_rate = taxed.rows / max(taxed.seconds, 1e-9)
    floor_rate = imported.rows / max(floor_s, 1e-9)
    print(
        f"import_vs_copy={import_rate / copy_rate:.1%} tax_vs_copy={tax_rate / copy_rate:.1%} "
        f"(target >= 25%); the database alone, writing the import's rows: "
        f"{floor_rate / copy_rate:.1%} of copy; rejected import={imported.rejected} "
        f"tax={taxed.rejected}"
    )
    print(
        f"bulk rows={imported.rows} tax_rows={taxed.rows} import_s={imported.seconds:.1f} "
        f"tax_s={taxed.seconds:.1f} copy_s={copy_s:.1f} batch_size={args.batch_size} "
        f"import_rows_per_s={import_rate:.0f} tax_rows_per_s={tax_rate:.0f} "
        f"import_floor_rows_per_s={floor_rate:.0f} copy_rows_per_s={copy_rate:.0f} "
        f"peak_rss_mb={peak_rss_mb():.0f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="persons (and tax rows)")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
