"""``srhub token``: issue bearer tokens and manage API keys from the command line.

Secrets go to stdout alone (so ``TOKEN=$(srhub token issue ...)`` works); everything a person
reads about them goes to stderr. Tokens are signed with the keys the server uses for the same
settings, so run this with the server's ``SRHUB_*`` environment or config file.
"""

from __future__ import annotations

import json

import click

from hub.auth.roles import GrantError, Role
from hub.cli.database import database_session
from hub.cli.errors import CommandError
from hub.settings import load_settings

ROLE_CHOICE = click.Choice([r.value for r in Role], case_sensitive=False)
MAX_TTL_SECONDS = 400 * 24 * 3600


@click.group()
def token() -> None:
    """Issue bearer tokens and manage API keys for systems."""


@token.command("issue")
@click.option(
    "--role",
    "roles",
    type=ROLE_CHOICE,
    multiple=True,
    required=True,
    help="Role to grant; repeat for several.",
)
@click.option("--sub", "subject", required=True, help="Who the token is for (user or system).")
@click.option(
    "--area",
    "areas",
    multiple=True,
    help="Administrative area code prefix a field_worker covers; repeatable.",
)
@click.option("--program", default=None, help="Program code, for the program role.")
@click.option(
    "--ttl",
    "ttl",
    type=click.IntRange(1, MAX_TTL_SECONDS),
    default=None,
    help="Lifetime in seconds (default: SRHUB_TOKEN_TTL_SECONDS).",
)
def issue(
    roles: tuple[str, ...],
    subject: str,
    areas: tuple[str, ...],
    program: str | None,
    ttl: int | None,
) -> None:
    """Print a signed bearer token (JWT) on stdout."""
    from hub.auth.tokens import TokenSigner

    signer = TokenSigner.from_settings(load_settings())
    try:
        jwt_text = signer.issue(
            subject=subject, roles=roles, admin_areas=areas, program=program, ttl_seconds=ttl
        )
    except GrantError as exc:
        raise click.UsageError(str(exc)) from None
    principal = signer.verify(jwt_text)
    click.echo(jwt_text)
    expires = principal.expires_at.isoformat() if principal.expires_at else "never"
    click.echo(
        f"token for {principal.subject} (roles: {', '.join(sorted(principal.roles))}), "
        f"id {principal.token_id}, expires {expires}",
        err=True,
    )


@token.group("api-key")
def api_key() -> None:
    """Create, list and revoke API keys for partner and program systems."""


@api_key.command("create")
@click.option("--name", required=True, help="The system that will use the key.")
@click.option(
    "--role",
    "roles",
    type=ROLE_CHOICE,
    multiple=True,
    required=True,
    help="Role to grant; repeat for several.",
)
@click.option("--area", "areas", multiple=True, help="Area code prefix, for field_worker.")
@click.option("--program", default=None, help="Program code, for the program role.")
def create(name: str, roles: tuple[str, ...], areas: tuple[str, ...], program: str | None) -> None:
    """Create a key and print it once on stdout; it cannot be shown again."""
    from hub.auth.api_keys import create_api_key

    try:
        with database_session() as session:
            created = create_api_key(
                session, name=name, roles=roles, admin_areas=areas, program=program
            )
    except GrantError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(created.key)
    click.echo(
        f"API key {created.info.id} for {created.info.name} "
        f"(roles: {', '.join(created.info.roles)}); store it now, it is not shown again",
        err=True,
    )


@api_key.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
def list_keys(as_json: bool, active: bool) -> None:
    """List keys (ids, names, roles, use); secrets are never stored, so never shown."""
    from hub.auth.api_keys import list_api_keys

    with database_session() as session:
        keys = list_api_keys(session, include_revoked=not active)
    if as_json:
        click.echo(json.dumps([k.as_dict() for k in keys], indent=2))
        return
    if not keys:
        click.echo("no API keys", err=True)
        return
    click.echo(f"{'ID':<16}  {'STATUS':<7}  {'NAME':<24}  {'ROLES':<24}  LAST USED")
    for key in keys:
        status = "active" if key.active else "revoked"
        last = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        scope = ""
        if key.admin_areas:
            scope = f" areas={','.join(key.admin_areas)}"
        if key.program:
            scope += f" program={key.program}"
        click.echo(
            f"{key.id:<16}  {status:<7}  {key.name:<24}  {','.join(key.roles):<24}  {last}{scope}"
        )


@api_key.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke the key with id KEY_ID (the 16 hex characters after ``srk_``)."""
    from hub.auth.api_keys import ApiKeyNotFound, revoke_api_key

    try:
        with database_session() as session:
            info = revoke_api_key(session, key_id)
    except ApiKeyNotFound as exc:
        raise CommandError(f"{exc}; see 'srhub token api-key list'") from None
    assert info.revoked_at is not None
    click.echo(f"revoked API key {info.id} ({info.name}) at {info.revoked_at.isoformat()}")
