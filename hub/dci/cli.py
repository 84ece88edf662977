"""``srhub dci``: onboard DCI senders (signing keys, callback URIs) and show the hub's own key.

Onboarding is deliberately an operator's command: no DCI request can register a key or a
callback target, so the registry only ever calls back hosts someone approved.
"""

from __future__ import annotations

import json

import click

from hub.settings import SettingsError, load_settings


def _runtime():  # type: ignore[no-untyped-def]
    from hub.dbschema import upgrade_to_head
    from hub.runtime import HubRuntime

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(f"settings: {exc}") from None
    upgrade_to_head(settings.effective_database_url)
    return HubRuntime(settings)


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
    runtime = _runtime()
    try:
        register_key(runtime.sessions, sender_id, key_id, text)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        runtime.close()
    click.echo(
        f"key {key_id} registered for {sender_id}; its requests must now be signed", err=True
    )


@dci.command("revoke-key")
@click.argument("sender_id")
@click.argument("key_id")
def revoke(sender_id: str, key_id: str) -> None:
    from hub.dci.senders import revoke_key

    runtime = _runtime()
    try:
        done = revoke_key(runtime.sessions, sender_id, key_id)
    finally:
        runtime.close()
    if not done:
        raise click.ClickException("no such active key")
    click.echo("revoked", err=True)


@dci.command("add-callback")
@click.argument("sender_id")
@click.argument("base_uri")
def add_callback(sender_id: str, base_uri: str) -> None:
    """Allow callbacks for SENDER_ID to BASE_URI and the paths below it."""
    from hub.dci.senders import register_callback_uri
    from standards.dci.envelope import EnvelopeError

    runtime = _runtime()
    try:
        register_callback_uri(runtime.sessions, sender_id, base_uri)
    except EnvelopeError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        runtime.close()
    click.echo(f"callbacks for {sender_id} may go to {base_uri}", err=True)


@dci.command("signing-key")
def signing_key() -> None:
    """Print the registry's DCI public key and key id (give them to partners)."""
    from hub.dci.config import DciConfig, load_signing_key

    try:
        settings = load_settings()
        config = DciConfig.from_settings(settings)
    except SettingsError as exc:
        raise click.ClickException(f"settings: {exc}") from None
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
