"""What push connectors need from the web layer, without importing the hub.

The hub mounts each push connector's Flask blueprint under ``/connectors/<name>/`` and its
deny-by-default auth closes any view that does not declare who may call it. A webhook from a
partner carries no hub token: it proves itself with its own signature (``X-Hub-Signature:
sha256=<HMAC>``). So its view is declared *public* to the hub's token check, using the same
attribute and value as ``hub.auth.flask_auth`` (``__srhub_access__ = "public"``; a test checks
the hub recognises it), and verifies the signature itself with ``verify_hmac_sha256``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Must equal hub.auth.flask_auth.ACCESS_ATTRIBUTE / PUBLIC (tests/integration checks it).
ACCESS_ATTRIBUTE = "__srhub_access__"
PUBLIC = "public"
MOUNT_PREFIX = "/connectors/{name}"  # where the hub mounts a push connector's blueprint


def mount_prefix(connector: str) -> str:
    """The URL prefix of ``connector``'s webhook views in the hub."""
    return MOUNT_PREFIX.format(name=connector)


def signed_webhook(view: F) -> F:
    """Declare ``view`` open to the hub's token check: it authenticates by signature itself."""
    setattr(view, ACCESS_ATTRIBUTE, PUBLIC)
    return view


def hmac_sha256_hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_hmac_sha256(
    secret: bytes, body: bytes, header: str | None, prefix: str = "sha256="
) -> bool:
    """True if ``header`` is ``<prefix><hex HMAC-SHA256 of body>``; constant-time comparison.

    An empty secret never verifies: a misconfigured connector must refuse, not accept all.
    """
    if not secret or not header:
        return False
    header = header.strip()
    if not header.lower().startswith(prefix):
        return False
    given = header[len(prefix) :].strip().lower()
    expected = hmac_sha256_hex(secret, body)
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii"))
