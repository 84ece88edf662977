"""``srhub users add|list|disable``: people who log in with a password.

The password is read from a prompt (hidden, asked twice) or from stdin with
``--password-stdin``, never from the command line, where it would land in shell history and in
``ps`` output. registry_staff and admin use the dashboard; field_worker and supervisor use
field apps over OpenRosa (``/openrosa``, docs/field-collection.md) and need at least one
administrative area (``--area``, repeatable); supervisors may also log into the dashboard, and
auditors open its read-only household pages (identifiers masked); policymakers open only
the policy pages of aggregates (``/ui/policy``). Only
field users get the Digest password-equivalent devices need, sealed with the hub's key.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from hub.cli.database import database_session
from hub.cli.errors import CommandError
from hub.settings import load_settings

PASSWORD_ROLES = (
    "registry_staff",
    "admin",
    "field_worker",
    "supervisor",
    "auditor",
    "policymaker",
)


@click.group()
def users() -> None:
    """Manage dashboard users (password logins)."""


@users.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(PASSWORD_ROLES), default="registry_staff", show_default=True
)
@click.option(
    "--area",
    "areas",
    multiple=True,
    help="An administrative area (code prefix) the user covers; repeat for several. "
    "Required for field_worker and supervisor.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin's first line.")
@click.option("--replace", is_flag=True, help="Reset the password, role and areas of a user.")
def add(
    username: str, role: str, areas: tuple[str, ...], password_stdin: bool, replace: bool
) -> None:
    """Create a user (or, with --replace, reset one) with a password, a role and areas."""
    from hub.auth.roles import GrantError, validate_grant
    from hub.openrosa.accounts import UserExists, save_user
    from hub.settings import load_keys
    from hub.ui.passwords import PasswordPolicyError

    username = username.strip()
    if not username or len(username) > 64 or not username.isprintable() or ":" in username:
        raise click.BadParameter("1 to 64 printable characters, no colon", param_hint="USERNAME")
    try:
        grant = validate_grant([role], areas)
    except GrantError as exc:
        raise click.BadParameter(str(exc), param_hint="--role/--area") from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = load_settings()
    keys = load_keys(settings)
    cipher = keys.identifier_cipher()
    try:
        with database_session(settings) as session:
            created = save_user(
                session,
                cipher,
                settings.openrosa.realm,
                username=username,
                role=role,
                areas=grant.admin_areas,
                password=password,
                replace=replace,
            )
    except (PasswordPolicyError, UserExists) as exc:
        raise CommandError(str(exc)) from None
    where = f" for {', '.join(grant.admin_areas)}" if grant.admin_areas else ""
    click.echo(f"user {username} {'created' if created else 'reset'} as {role}{where}", err=True)


@users.command("list")
def list_users() -> None:
    """Print users: name, role, active, last login, areas."""
    from hub.ui.tables import UiUser

    with database_session() as session:
        for user in session.scalars(select(UiUser).order_by(UiUser.username).limit(10_000)):
            state = "active" if user.active else "disabled"
            areas = ",".join(user.area_codes) or "-"
            last = user.last_login_at or "never"
            click.echo(f"{user.username}\t{user.role}\t{state}\t{last}\t{areas}")


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
