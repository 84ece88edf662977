"""What a command does when it cannot go on: one small error tree whose members carry their
exit code, and one function that turns what the libraries raise into it.

Every command ends the same way on the same trouble: ``Error: <reason>`` on stderr (click
prints a ``ClickException``) and the exit code of its kind, never a traceback. A traceback is
kept for what no operator can fix: a bug.

=====  ===============================================================================
code   meaning
=====  ===============================================================================
0      done
1      the command could not do what was asked (no such user, key already revoked, ...)
2      wrong usage: an unknown option or a bad argument (click's own)
3      a setting is missing or malformed (the message names it)
4      a file or folder cannot be read or written (the message names it)
5      the database or the broker cannot be reached
6      the database schema is not at this version's head: run ``srhub db upgrade``
7      the installation is broken: a module is missing
=====  ===============================================================================
"""

from __future__ import annotations

import click


class CommandError(click.ClickException):
    """The command could not do what was asked; the message says why."""

    exit_code = 1


class BadSettings(CommandError):
    exit_code = 3


class FileUnreadable(CommandError):
    exit_code = 4


class Unreachable(CommandError):
    exit_code = 5


class SchemaBehind(CommandError):
    exit_code = 6


class BrokenInstall(CommandError):
    exit_code = 7


EXIT_CODES: dict[int, str] = {
    0: "done",
    1: "the command could not do what was asked",
    2: "wrong usage (click)",
    BadSettings.exit_code: "a setting is missing or malformed",
    FileUnreadable.exit_code: "a file or folder cannot be read or written",
    Unreachable.exit_code: "the database or the broker cannot be reached",
    SchemaBehind.exit_code: "the database schema is not at head: run `srhub db upgrade`",
    BrokenInstall.exit_code: "the installation is broken: a module is missing",
}


def missing_module(exc: ModuleNotFoundError, needed_by: str) -> BrokenInstall:
    """A module that the installation should hold is not there: say which, and what to do."""
    return BrokenInstall(
        f"{needed_by} needs the module {exc.name or exc}, which is not installed: this "
        "installation of srhub is broken; reinstall it (pip install --force-reinstall "
        "social-registry-hub, or pip install -e . in a checkout)"
    )


def as_command_error(exc: Exception) -> click.ClickException | None:
    """The command error for ``exc``, or None when it is a bug (which keeps its traceback)."""
    if isinstance(exc, click.ClickException):
        return exc
    from hub.broker.errors import BrokerError, ConnectionClosed
    from hub.settings import SettingsError

    if isinstance(exc, SettingsError):
        return BadSettings(str(exc))
    if isinstance(exc, ConnectionClosed):
        return Unreachable(
            f"cannot reach the broker: {exc}; check that it runs and SRHUB_AMQP_URL "
            "(or, on the embedded queue, SRHUB_DATABASE_URL)"
        )
    if isinstance(exc, BrokerError):
        return CommandError(f"broker: {exc}")
    if isinstance(exc, ModuleNotFoundError):
        return missing_module(exc, "this command")
    if isinstance(exc, OSError) and exc.filename is not None:
        return FileUnreadable(f"cannot use {exc.filename}: {exc.strerror or exc}")
    return _database_error(exc)


def _database_error(exc: Exception) -> click.ClickException | None:
    import sqlalchemy.exc

    from hub.dbschema import DatabaseUnavailable, SchemaNotCurrent

    if isinstance(exc, SchemaNotCurrent):
        return SchemaBehind(str(exc))
    if isinstance(exc, DatabaseUnavailable):
        return Unreachable(str(exc))
    if isinstance(exc, sqlalchemy.exc.OperationalError):  # went away, refused a statement
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return CommandError(f"the database refused the command: {reason}")
    return None
