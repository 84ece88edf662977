"""Settings of the OpenRosa server and device authentication (``settings.openrosa``).

Read by ``hub.openrosa`` (the protocol ODK Collect, KoboCollect and Enketo speak) and by
``srhub users add`` (the Digest realm is part of the stored password-equivalent); described in
docs/field-collection.md and docs/operations.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section, positive, ranged


@dataclass(frozen=True)
class OpenRosaSettings(Section):
    """How devices authenticate to ``/openrosa`` and how long what they hold stays valid."""

    name: ClassVar[str] = "openrosa"

    # The HTTP authentication realm. Digest stores H(user:realm:password) per user, so changing
    # the realm makes every stored Digest credential useless until passwords are set again.
    realm: str = "srhub"
    # Seconds a Digest server nonce is accepted; after that the hub answers 401 with
    # stale=true and the device silently retries with a fresh nonce (no prompt).
    nonce_ttl_seconds: int = ranged(300, low=10, high=86_400)
    # Seconds a device token from POST /openrosa/session stays valid (the offline page).
    device_token_ttl_seconds: int = ranged(12 * 3600, low=60, high=7 * 86_400)
    # Basic authentication sends the password itself: the OpenRosa Authentication API forbids
    # it over plain HTTP. It is accepted over HTTPS and from loopback clients; set true only
    # behind a TLS-terminating proxy that forwards plain HTTP from another address.
    allow_basic_over_http: bool = False
    # Failed logins per user name and client address within the window before further
    # attempts are refused (429) until the window has passed.
    max_failed_logins: int = ranged(10, low=1, high=10_000)
    failed_login_window_seconds: float = positive(300.0)
    # Refuse OpenRosa API requests (form list, manifest, submission) that lack
    # ``X-OpenRosa-Version: 1.0``, as the HTTP Requests page marks the header required and ODK
    # Central refuses them; form and media downloads are plain GETs and are never refused.
    require_version_header: bool = True
