"""Rotating a webhook subscription's signing secret with an overlap window.

During the window the hub signs every delivery with the new secret and the previous one
(``X-SR-Signature: sha256=<new> sha256=<previous>``, the same in ``X-Hub-Signature-256``), so
a receiver still configured with either secret verifies; once the window ends only the new one
signs. The new secret is given or generated and shown once; the previous one stays sealed
with the identifier key, unused after its window, until the next rotation replaces it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from jsonschema import Draft202012Validator

from hub.subscriptions.service import SECRET_CONTEXT
from hub.subscriptions.tables import CHANNEL_WEBHOOK, Subscription
from registry_core.crypto import IdentifierCipher
from standards.timeutil import utcnow
from standards.validation import SchemaViolation, Violation

DEFAULT_OVERLAP_SECONDS = 24 * 3600
MAX_OVERLAP_SECONDS = 30 * 24 * 3600

ROTATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "secret": {"type": "string", "minLength": 16, "maxLength": 256},
        "overlap_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_OVERLAP_SECONDS},
    },
}
_VALIDATOR = Draft202012Validator(ROTATE_SCHEMA)


def validate_rotation(body: dict[str, Any], subscription: Subscription) -> None:
    """Raise ``SchemaViolation`` listing what is wrong with a rotation request."""
    problems = [
        Violation(error.json_path, str(error.validator), error.message[:300])
        for error in _VALIDATOR.iter_errors(body)
    ]
    if subscription.channel != CHANNEL_WEBHOOK:
        problems.append(
            Violation("$", "channel", f"a {subscription.channel} subscription is not signed")
        )
    if problems:
        raise SchemaViolation("secret rotation", sorted(problems, key=lambda v: v.path))


def rotate_secret(
    cipher: IdentifierCipher,
    subscription: Subscription,
    body: dict[str, Any],
    now: datetime | None = None,
) -> tuple[str | None, datetime | None]:
    """Put the new secret in place, keeping the current one for ``overlap_seconds``; returns
    the secret when the hub generated it (shown once) and when the overlap ends (None: no
    overlap, the previous secret stops at once)."""
    moment = now or utcnow()
    overlap = int(body.get("overlap_seconds", DEFAULT_OVERLAP_SECONDS))
    given = body.get("secret")
    generated = None if given is not None else secrets.token_urlsafe(32)
    secret = given if given is not None else generated
    assert secret is not None
    if subscription.secret_sealed is not None and overlap > 0:
        subscription.previous_secret_sealed = subscription.secret_sealed
        subscription.previous_secret_until = moment + timedelta(seconds=overlap)
    else:
        subscription.previous_secret_sealed = None
        subscription.previous_secret_until = None
    subscription.secret_sealed = cipher.seal(SECRET_CONTEXT, secret.encode("utf-8"))
    return generated, subscription.previous_secret_until


def signing_secrets(
    cipher: IdentifierCipher, subscription: Subscription, now: datetime | None = None
) -> list[bytes]:
    """The secrets a delivery is signed with now: the current one, and the previous one while
    its overlap window lasts."""
    if subscription.secret_sealed is None:
        return []
    found = [cipher.unseal(SECRET_CONTEXT, subscription.secret_sealed)]
    until = subscription.previous_secret_until
    if (
        subscription.previous_secret_sealed is not None
        and until is not None
        and (now or utcnow()) < until
    ):
        found.append(cipher.unseal(SECRET_CONTEXT, subscription.previous_secret_sealed))
    return found
