"""``srhub duplicates scan|status``: the registry-wide duplicate scan from a shell (a nightly
cron job, or when the API is not at hand). The scan is the same job the API and the dashboard
start (``hub.duplicates``): one row, one scan at a time, its pairs in the match review queue.
"""

from __future__ import annotations

import json
import uuid

import click

from hub.cli.database import hub_runtime


@click.group("duplicates")
def duplicates() -> None:
    """Registry-wide duplicate scans (docs/duplicates.md)."""


@duplicates.command("scan")
def scan() -> None:
    """Run a duplicate scan in this process until it is done (progress on stderr), and print
    its result as JSON. A scan another process left stalled is resumed first; one that is
    running elsewhere is refused with its id."""
    from hub.duplicates.runner import ScanAlreadyActive, ScanRunner, scan_matcher

    with hub_runtime() as runtime:

        def progress(scan_id: uuid.UUID) -> None:
            found = runner.get(scan_id)
            if found is not None:
                done = found["progress"]
                click.echo(
                    f"scan {scan_id}: {done['keys_done']}/{done['keys_total']} keys, "
                    f"{found['candidates_found']} new pair(s)",
                    err=True,
                )

        runner = ScanRunner(
            runtime.sessions, runtime.cipher, matcher=scan_matcher(runtime), after_batch=progress
        )
        try:
            record = runner.request_scan("cli", start=False)
        except ScanAlreadyActive as exc:
            if runner.run_pending() == 0:
                raise click.ClickException(
                    f"duplicate scan {exc.scan['id']} is {exc.scan['state']} in another "
                    f"process; watch it with: srhub duplicates status {exc.scan['id']}"
                ) from None
            record = exc.scan  # it was stalled: this process finished it
        runner.run_pending()
        click.echo(json.dumps(runner.get(record["id"])))


@duplicates.command("status")
@click.argument("scan_id", required=False)
def status(scan_id: str | None) -> None:
    """Print one scan (by id) or the five newest as JSON."""
    from hub.duplicates.runner import ScanRunner

    with hub_runtime() as runtime:
        runner = ScanRunner(runtime.sessions, runtime.cipher)
        if scan_id is None:
            click.echo(json.dumps({"items": runner.recent(5)}))
            return
        try:
            key = uuid.UUID(scan_id)
        except ValueError:
            raise click.BadParameter("give a scan id (a UUID)", param_hint="SCAN_ID") from None
        found = runner.get(key)
        if found is None:
            raise click.ClickException(f"no duplicate scan {key}")
        click.echo(json.dumps(found))
