"""``srhub dci``: onboard DCI senders (signing keys, callback URIs, or an explicit exemption
from signing) and show the hub's own key.

Onboarding is deliberately an operator's command: no DCI request can register a key, a
callback target or an exemption, so the registry only ever believes senders and calls back
hosts someone approved. Every change is logged and shown by ``srhub dci senders``.
"""

from __future__ import annotations

import getpass
import json

import click

from hub.cli.database import hub_runtime
from hub.cli.errors import CommandError
from hub.settings import load_settings


@click.group()
def dci() -> None:
    """Onboard DCI senders and show the registry's DCI signing key."""


@dci.command("add-key")
@click.argument("sender_id")
@click.argument("key_id")
@click.argument("public_key")
def add_key(sender_id: str, key_id: str, public_key: str) -> None:
    """Register SENDER_ID's ed25519 PUBLIC_KEY (Base64 of 32 bytes, or a PEM file path)."""
    from pathlib import Path

    from hub.dci.senders import register_key

    text = Path(public_key).read_text("utf-8") if Path(public_key).is_file() else public_key
    with hub_runtime() as runtime:
        try:
            register_key(runtime.sessions, sender_id, key_id, text)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    click.echo(
        f"key {key_id} registered for {sender_id}; its requests must now be signed", err=True
    )


@dci.command("revoke-key")
@click.argument("sender_id")
@click.argument("key_id")
def revoke(sender_id: str, key_id: str) -> None:
    """Revoke SENDER_ID's key KEY_ID: requests signed with it are refused from now on."""
    from hub.dci.senders import revoke_key

    with hub_runtime() as runtime:
        done = revoke_key(runtime.sessions, sender_id, key_id)
    if not done:
        raise CommandError(f"{sender_id} has no active key {key_id}; see `srhub dci senders`")
    click.echo("revoked", err=True)


@dci.command("add-callback")
@click.argument("sender_id")
@click.argument("base_uri")
def add_callback(sender_id: str, base_uri: str) -> None:
    """Allow callbacks for SENDER_ID to BASE_URI and the paths below it.

    The host must be one the hub may call: a loopback, private or link-local address is
    refused unless allowed in ``[srhub.outbound] allow_hosts`` (checked again at every call)."""
    from hub.dci.senders import register_callback_uri
    from hub.workers.egress import EgressPolicy, EgressRefused
    from standards.dci.envelope import EnvelopeError

    with hub_runtime() as runtime:
        try:
            EgressPolicy.from_settings(runtime.settings).vet(base_uri)
        except EgressRefused as refused:
            raise CommandError(f"{base_uri[:200]}: {refused.reason}") from None
        try:
            register_callback_uri(runtime.sessions, sender_id, base_uri)
        except EnvelopeError as exc:
            raise CommandError(exc.message) from None
    click.echo(f"callbacks for {sender_id} may go to {base_uri}", err=True)


def _operator() -> str:
    """Who runs the command, for the record of an exemption (the login name, else "operator")."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "operator"


@dci.command("allow-unsigned")
@click.argument("sender_id")
@click.option(
    "--reason", required=True, help="Why this sender cannot sign (kept with the exemption)."
)
@click.option("--by", "by", default=None, help="Who decides (default: your login name).")
def allow_unsigned_cmd(sender_id: str, reason: str, by: str | None) -> None:
    """Let SENDER_ID send DCI requests without a signature.

    Only for a partner that cannot sign yet: anyone who can send its sender_id with a valid
    bearer token is then believed. A signature it does send must still verify.
    """
    from hub.dci.senders import allow_unsigned

    with hub_runtime() as runtime:
        try:
            done = allow_unsigned(runtime.sessions, sender_id, by=by or _operator(), reason=reason)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    if not done:
        raise CommandError(f"{sender_id} may already send unsigned requests")
    click.echo(
        f"{sender_id} may now send unsigned requests (revoke: srhub dci revoke-unsigned "
        f"{sender_id})",
        err=True,
    )


@dci.command("revoke-unsigned")
@click.argument("sender_id")
@click.option("--by", "by", default=None, help="Who decides (default: your login name).")
def revoke_unsigned_cmd(sender_id: str, by: str | None) -> None:
    """Require SENDER_ID to sign again."""
    from hub.dci.senders import revoke_unsigned

    with hub_runtime() as runtime:
        done = revoke_unsigned(runtime.sessions, sender_id, by=by or _operator())
    if not done:
        raise CommandError(f"{sender_id} has no exemption from signing")
    click.echo(f"{sender_id} must sign its requests again", err=True)


@dci.command("senders")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def senders_cmd(as_json: bool) -> None:
    """List the DCI senders this registry knows: keys, callback bases, exemptions."""
    from hub.dci.senders import senders_overview

    with hub_runtime() as runtime:
        found = senders_overview(runtime.sessions)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no DCI sender is onboarded (srhub dci add-key / add-callback)")
    for sender in found:
        keys = [k["key_id"] for k in sender["keys"] if not k["revoked"]]
        unsigned = sender["unsigned"]
        if keys:
            auth = "signs with " + ", ".join(keys)
            if unsigned:
                auth += " (its exemption from signing is unused while it has a key)"
        elif unsigned:
            auth = f"UNSIGNED allowed by {unsigned['allowed_by']}: {unsigned['reason']}"
        else:
            auth = "refused: no key, no exemption"
        callbacks = ", ".join(sender["callbacks"]) or "no callback URI (async refused)"
        click.echo(f"{sender['sender_id']}\t{auth}\tcallbacks: {callbacks}")


@dci.command("signing-key")
def signing_key() -> None:
    """Print the registry's DCI public key and key id (give them to partners)."""
    from hub.dci.config import load_signing_key

    settings = load_settings()
    config = settings.dci
    key = load_signing_key(settings, config)
    click.echo(
        json.dumps(
            {
                "sender_id": config.registry_id,
                "key_id": key.key_id,
                "algorithm": "ed25519",
                "public_key": key.public_key_b64,
            }
        )
    )
