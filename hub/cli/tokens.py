"""``srhub token``: issue bearer tokens and manage API keys from the command line.

Secrets go to stdout alone (so ``TOKEN=$(srhub token issue ...)`` works); everything a person
reads about them goes to stderr. Tokens are signed with the keys the server uses for the same
settings, so run this with the server's ``SRHUB_*`` environment or config file.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TextIO

import click

from hub.auth.roles import GrantError, Role
from hub.auth.tokens import MAX_TTL_SECONDS
from hub.cli.database import database_session
from hub.cli.errors import CommandError
from hub.settings import load_settings

if TYPE_CHECKING:
    from hub.auth.signing_keys import KeyringSource

ROLE_CHOICE = click.Choice([r.value for r in Role], case_sensitive=False)


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


@token.command("revoke")
@click.option("--jti", default=None, help="The id of the token to revoke (printed at issue).")
@click.option(
    "--token-file",
    type=click.File("r"),
    default=None,
    help="A file holding the token itself (- for stdin); its id and expiry are read from it.",
)
@click.option("--reason", required=True, help="Why, for the audit trail.")
def revoke_token(jti: str | None, token_file: TextIO | None, reason: str) -> None:
    """Refuse one bearer token from now on (every API process within seconds)."""
    from datetime import timedelta

    from hub.auth import revocations
    from hub.auth.tokens import TokenError, TokenSigner
    from standards.timeutil import utcnow

    if (jti is None) == (token_file is None):
        raise click.UsageError("give either --jti or --token-file")
    settings = load_settings()
    expires_at = utcnow() + timedelta(seconds=MAX_TTL_SECONDS)
    if token_file is not None:
        try:
            principal = TokenSigner.from_settings(settings).verify(token_file.read().strip())
        except TokenError as exc:
            raise CommandError(
                f"the token is not valid ({exc.reason}): nothing to revoke"
            ) from None
        jti = principal.token_id
        expires_at = principal.expires_at or expires_at
    assert jti is not None
    try:
        with database_session(settings) as session:
            created = revocations.revoke(
                session, jti=jti, expires_at=expires_at, revoked_by="cli", reason=reason
            )
    except revocations.RevocationError as exc:
        raise click.UsageError(str(exc)) from None
    state = "revoked" if created else "was already revoked"
    click.echo(f"token {jti} {state}; refused until {expires_at.isoformat()}")


@token.command("revoked")
def revoked() -> None:
    """List the revocations in force (JSON lines)."""
    from hub.auth import revocations

    with database_session() as session:
        for item in revocations.list_revoked(session):
            click.echo(json.dumps(item))


@token.group("keys")
def keys() -> None:
    """The token signing keyring: list, rotate, retire (docs/auth.md)."""


def _keyring_source() -> KeyringSource:
    from hub.auth.tokens import keyring_source

    return keyring_source(load_settings())


@keys.command("list")
def list_signing_keys() -> None:
    """Each signing key: id, created, whether it signs, verifies or is retired."""
    keyring = _keyring_source().current(fresh=True)
    active = keyring.active.kid
    for key in keyring.keys:
        state = "retired" if key.retired_at else ("signs" if key.kid == active else "verifies")
        click.echo(f"{key.kid}\t{key.created_at.isoformat()}\t{state}")


@keys.command("rotate")
def rotate_keys() -> None:
    """Make a new signing key; earlier ones keep verifying the tokens they signed."""
    from hub.auth.signing_keys import KeyringError

    source = _keyring_source()
    try:
        keyring = source.current(fresh=True).rotated()
        source.save(keyring)
    except KeyringError as exc:
        raise CommandError(str(exc)) from None
    click.echo(f"new signing key {keyring.active.kid}; API processes use it within seconds")


@keys.command("retire")
@click.argument("kid")
def retire_key(kid: str) -> None:
    """Refuse tokens signed by KID from now on (after its tokens have expired)."""
    from hub.auth.signing_keys import KeyringError

    source = _keyring_source()
    try:
        source.save(source.current(fresh=True).retired(kid))
    except KeyringError as exc:
        raise CommandError(str(exc)) from None
    click.echo(f"signing key {kid} retired: tokens naming it are refused")
