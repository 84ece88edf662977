"""The ``srhub`` group: sub-command groups imported when invoked, errors handled in one place.

Each group lives in its own module of ``hub.cli`` (``sandbox`` in ``sandbox_mocks.cli``, which
may not import the hub) and is imported only when it runs, so ``srhub version`` stays fast. A
group whose module cannot be imported is a broken installation and says so, naming the module.
"""

from __future__ import annotations

import importlib

import click

from hub.cli.errors import as_command_error, missing_module

# name -> "module:attribute" of a click command or group, imported on first use.
LAZY_COMMANDS: dict[str, str] = {
    "db": "hub.cli.db:db",
    "run": "hub.cli.run:run",
    "serve": "hub.cli.serve:serve",
    "token": "hub.cli.tokens:token",
    "keys": "hub.cli.keys:keys",
    "sandbox": "sandbox_mocks.cli:sandbox",
    "worker": "hub.cli.workers:worker",
    "dead-letters": "hub.cli.dead_letters:dead_letters",
    "dedup": "hub.cli.dedup:dedup",
    "matcher": "hub.cli.matcher:matcher",
    "duplicates": "hub.cli.duplicates:duplicates",
    "dci": "hub.cli.dci:dci",
    "users": "hub.cli.users:users",
    "monitoring": "hub.cli.monitoring:monitoring",
    "subscriptions": "hub.cli.subscriptions:subscriptions",
    "quality": "hub.cli.quality:quality",
    "scoring": "hub.cli.scoring:scoring",
    "reports": "hub.cli.reports:reports",
    "backup": "hub.cli.backup:backup",
    "restore": "hub.cli.backup:restore",
    "audit": "hub.cli.audit:audit",
    "import": "hub.cli.bulk_import:import_file",
}


class HubGroup(click.Group):
    """The root group: lazy sub-commands, and the one place where what a command raises
    becomes ``Error: <reason>`` with its exit code (``hub.cli.errors``)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own ends (--help, Ctrl-C at a prompt)
        except Exception as exc:
            error = as_command_error(exc)
            if error is None or error is exc:
                raise
            raise error from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise missing_module(exc, f"`srhub {cmd_name}`") from exc
        found = getattr(module, attribute)
        if not isinstance(found, click.Command):
            raise TypeError(f"{target} is not a click command")
        return found


@click.group(cls=HubGroup)
def main() -> None:
    """Social Registry Interoperability Hub."""


@main.command()
def version() -> None:
    """Print the installed version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        click.echo(f"srhub {dist_version('social-registry-hub')}")
    except PackageNotFoundError:
        click.echo("srhub (not installed)")
