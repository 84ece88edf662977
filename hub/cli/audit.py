"""``srhub audit verify|purge``: the read audit's chain checked and aged from a terminal
(``hub.readaudit``; docs/operations.md, "Audit of reads")."""

from __future__ import annotations

import json
from datetime import timedelta

import click

from hub.cli.database import hub_runtime
from hub.cli.errors import CommandError
from hub.settings import load_settings


@click.group("audit")
def audit() -> None:
    """The audit of reads: verify its hash chain, purge it past its retention."""


@audit.command("verify")
def verify() -> None:
    """Walk the chain from its anchor to its head and print the verdict as JSON; exit 1 when
    a row was edited, deleted or moved (the verdict names the first broken one).

    Keep the printed head (seq and hash) somewhere the database's administrators cannot
    write: rows cut from the end of the chain show only against a head recorded earlier."""
    from hub.readaudit.log import ReadAuditLog

    with hub_runtime(load_settings()) as runtime:
        verdict = ReadAuditLog(runtime.sessions).verify()
    click.echo(json.dumps(verdict.as_dict()))
    if not verdict.intact:
        where = verdict.broken_seq
        raise CommandError(f"the read audit is broken at row {where}: {verdict.reason}")


@audit.command("purge")
@click.option(
    "--older-than-days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Override [srhub.read_audit] retention_days.",
)
def purge(older_than_days: float | None) -> None:
    """Delete the rows older than the retention (oldest first) and record an anchor so the
    rest still verifies; print how many went as JSON. A chain that does not verify is not
    purged (exit 1). The retention round of ``srhub run`` does the same on its own."""
    from hub.readaudit.log import ChainBroken, ReadAuditLog
    from standards.timeutil import utcnow

    settings = load_settings()
    days = older_than_days if older_than_days is not None else settings.read_audit.retention_days
    with hub_runtime(settings) as runtime:
        try:
            deleted = ReadAuditLog(runtime.sessions).purge(utcnow() - timedelta(days=days))
        except ChainBroken as error:
            raise CommandError(str(error)) from None
    click.echo(json.dumps({"deleted": deleted, "older_than_days": days}))
