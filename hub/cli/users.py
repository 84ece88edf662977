"""``srhub users add|list|disable``: dashboard accounts that log in with a password.

The password is read from a prompt (hidden, asked twice) or from stdin with
``--password-stdin``, never from the command line, where it would land in shell history and in
``ps`` output. Only registry_staff and admin may use the dashboard, so only they are offered.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from hub.cli.database import database_session
from hub.cli.errors import CommandError

DASHBOARD_ROLES = ("registry_staff", "admin")


@click.group()
def users() -> None:
    """Manage dashboard users (password logins)."""


@users.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(DASHBOARD_ROLES), default="registry_staff", show_default=True
)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin's first line.")
@click.option("--replace", is_flag=True, help="Reset the password and role of an existing user.")
def add(username: str, role: str, password_stdin: bool, replace: bool) -> None:
    """Create a user (or, with --replace, reset one) with a password and a role."""
    from hub.ui.passwords import PasswordPolicyError, hash_password
    from hub.ui.tables import UiUser

    username = username.strip()
    if not username or len(username) > 64 or not username.isprintable():
        raise click.BadParameter("1 to 64 printable characters", param_hint="USERNAME")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = hash_password(password)
    except PasswordPolicyError as exc:
        raise CommandError(str(exc)) from None
    with database_session() as session:
        user = session.get(UiUser, username)
        if user is not None and not replace:
            raise CommandError(f"user {username!r} exists; pass --replace to reset it")
        if user is None:
            session.add(UiUser(username=username, password_hash=hashed, role=role, active=True))
        else:
            user.password_hash, user.role, user.active = hashed, role, True
    click.echo(f"user {username} {'reset' if user is not None else 'created'} as {role}", err=True)


@users.command("list")
def list_users() -> None:
    """Print users: name, role, active, last login."""
    from hub.ui.tables import UiUser

    with database_session() as session:
        for user in session.scalars(select(UiUser).order_by(UiUser.username).limit(10_000)):
            state = "active" if user.active else "disabled"
            click.echo(f"{user.username}\t{user.role}\t{state}\t{user.last_login_at or 'never'}")


@users.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """Lock a user out; their open sessions end on their next click."""
    from hub.ui.tables import UiUser

    with database_session() as session:
        user = session.get(UiUser, username.strip())
        if user is None:
            raise CommandError(f"no user {username!r}")
        user.active = False
    click.echo(f"user {username} disabled", err=True)
