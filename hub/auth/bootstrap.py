"""The first-run admin token of the embedded default.

A fresh checkout must be usable (``make run`` then call the API) without leaving any endpoint
open. So on the embedded setup (SQLite, embedded queue) the hub issues one long-lived local
admin token, keeps it in a 0600 file next to the key file and prints it at start-up. On later
runs the same token is read back, and re-issued only when it no longer verifies (keys rotated,
issuer changed) or is about to expire. Production setups (PostgreSQL or RabbitMQ configured)
get no such token: their operators issue tokens with ``srhub token issue``.
"""

from __future__ import annotations

import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.auth.roles import Role
from hub.auth.tokens import TokenError, TokenSigner
from hub.settings import Settings

log = logging.getLogger(__name__)

ADMIN_SUBJECT = "local-admin"
ADMIN_TOKEN_TTL = timedelta(days=365)
RENEW_BEFORE = timedelta(days=7)


def is_embedded(settings: Settings) -> bool:
    """True for the one-machine default: SQLite database and the embedded queue."""
    return settings.uses_embedded_broker and settings.effective_database_url.startswith("sqlite")


def ensure_admin_token(settings: Settings, *, signer: TokenSigner | None = None) -> str | None:
    """Return the local admin token of the embedded setup, creating it if needed.

    Returns None (and creates nothing) when the setup is not the embedded default.
    """
    if not is_embedded(settings):
        return None
    signer = signer or TokenSigner.from_settings(settings)
    path = settings.effective_admin_token_file
    existing = _read_usable(path, signer)
    if existing is not None:
        return existing
    token = signer.issue(
        subject=ADMIN_SUBJECT,
        roles=[Role.admin],
        ttl_seconds=int(ADMIN_TOKEN_TTL.total_seconds()),
    )
    _write_private(path, token)
    log.info("issued a new local admin token into %s", path)
    return token


def _read_usable(path: Path, signer: TokenSigner) -> str | None:
    if not path.is_file():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); tightening to 0600", path, mode)
        path.chmod(0o600)
    token = path.read_text(encoding="utf-8").strip()
    try:
        principal = signer.verify(token)
    except TokenError as exc:
        log.info("local admin token in %s is no longer valid (%s); re-issuing", path, exc.reason)
        return None
    if Role.admin not in principal.roles:
        log.info("token in %s is not an admin token; re-issuing", path)
        return None
    expires = principal.expires_at
    if expires is not None and expires - datetime.now(UTC) < RENEW_BEFORE:
        log.info("local admin token in %s expires soon; re-issuing", path)
        return None
    return token


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` so that it is never, even briefly, readable by other users."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply when the tmp file already existed
    os.replace(tmp, path)
