"""The ``srhub`` command line.

Sub-command groups that live in other packages (``sandbox``, ``worker``, ...) are registered by
name and imported only when invoked, so ``srhub version`` stays fast and a missing optional piece
never breaks the whole CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> "module:attribute" of a click command or group, imported on first use.
LAZY_COMMANDS: dict[str, str] = {
    "db": "hub.cli_db:db",
    "run": "hub.cli_run:run",
    "token": "hub.cli_token:token",
    "sandbox": "sandbox_mocks.cli:sandbox",
    "worker": "hub.cli_worker:worker",
    "dead-letters": "hub.cli_deadletters:dead_letters",
    "dedup": "hub.cli_dedup:dedup",
    "dci": "hub.dci.cli:dci",
    "users": "hub.cli_users:users",
    "monitoring": "hub.cli_monitoring:monitoring",
    "subscriptions": "hub.cli_subscriptions:subscriptions",
}


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        """A faulty setting (a bad identifier profile, a malformed URL...) ends the command
        with its message, not a traceback: the message names the setting and what to fix."""
        from hub.settings import SettingsError

        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None

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
            if exc.name and module_name.startswith(exc.name):
                return None  # not built yet in this checkout
            raise
        found: Any = getattr(module, attribute)
        return found


@click.group(cls=LazyGroup)
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


if __name__ == "__main__":
    main()
