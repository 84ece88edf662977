"""``srhub import FILE``: load a partner export (households, or a tax extract) in bulk.

    srhub import export.csv --format csv --mapping partner_household_row
    srhub import incomes.csv --format csv --mapping tax_income_row     # ';' CSV, tax parser
    srhub import export.jsonl --format jsonl --mapping partner_household_row --dry-run

A progress bar (rich) on stderr when it is a terminal and ``--quiet`` is not given; one
summary line on stdout at the end. Exit codes: 0 every row loaded (or the file was loaded
before), 1 some rows were refused (listed in the rejects file; the good ones are loaded),
and the usual ones of ``hub.cli.errors`` (2 usage, 3 settings, 4 file, 5 database, 6 schema).
Running it again on the same file continues after the last committed line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hub.settings import load_settings


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv")
@click.option(
    "--mapping",
    default="partner_household_row",
    show_default=True,
    help="Mapping spec: household rows, or tax_income_row for a tax extract.",
)
@click.option("--batch-size", type=click.IntRange(100, 50_000), default=5000, show_default=True)
@click.option("--dry-run", is_flag=True, help="Check and match everything; keep nothing.")
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where refused rows go (default FILE.rejects.jsonl).",
)
@click.option("--source", default=None, help="Provenance source system (default: the spec's).")
@click.option("--delimiter", default=None, help="CSV delimiter (default ',' or ';' for tax).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def import_file(
    file: Path,
    fmt: str,
    mapping: str,
    batch_size: int,
    dry_run: bool,
    rejects_path: Path | None,
    source: str | None,
    delimiter: str | None,
    quiet: bool,
) -> None:
    """Load FILE into the registry in batches, matching people by their identifiers."""
    from hub.bulk import ImportOptions, run_import
    from hub.bulk.progress import line_progress
    from hub.dbschema import require_current_schema
    from hub.runtime import HubRuntime

    options = ImportOptions(
        path=file,
        fmt=fmt,
        mapping=mapping,
        batch_size=batch_size,
        dry_run=dry_run,
        rejects=rejects_path or file.with_name(file.name + ".rejects.jsonl"),
        source=source,
        delimiter=delimiter,
    )
    runtime = HubRuntime(load_settings())
    try:
        require_current_schema(runtime.engine)
        show = not quiet and sys.stderr.isatty()
        with line_progress(file, enabled=show) as advance:
            summary = run_import(runtime.registry, runtime.sessions, options, advance)
    finally:
        runtime.close()
    prefix = "dry run: " if dry_run else ""
    if summary.already_done:
        click.echo(f"srhub import: {file.name} was loaded before: {summary.line()}")
        return
    click.echo(f"srhub import: {prefix}{summary.line()}")
    if summary.rejected:
        click.echo(
            f"srhub import: {summary.rejected} row(s) refused, see {options.rejects}", err=True
        )
        raise SystemExit(1)
