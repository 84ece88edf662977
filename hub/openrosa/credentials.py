"""What a field user's password becomes at rest, and how a device's login is checked.

A field worker or supervisor has two stored forms of one password (``ui_users``):

- the scrypt hash every dashboard user has (``hub.ui.passwords``), checked for HTTP Basic;
- the Digest password-equivalents ``H(user:realm:password)`` for MD5 and SHA-256, which HTTP
  Digest cannot do without (the server must compute what the device computed). Anyone who holds
  one can log in as that user in this realm without knowing the password, so they are stored
  only for users who may use OpenRosa, sealed with AES-256-GCM under the hub's encryption key
  (``IdentifierCipher.seal``, the same key that protects identifiers), bound to the realm and the
  user name: a copied row cannot be moved to another user, and a database dump alone is useless.

Nothing here logs a password, a hash or a password-equivalent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from limits.storage import MemoryStorage, Storage

from hub.auth.roles import AREA_SCOPED_ROLES, Principal, Role
from hub.openrosa.digest import ALGORITHMS, Algorithm, ha1
from hub.ratelimit.logins import LoginFailures
from registry_core.crypto import IdentifierCipher, IdentifierDecryptionError

# Roles that may hold OpenRosa credentials (and so a stored Digest password-equivalent).
FIELD_ROLES: frozenset[Role] = frozenset(AREA_SCOPED_ROLES)


def sealing_context(realm: str, username: str) -> str:
    """The context a user's Digest secrets are sealed under (bound to realm and user)."""
    return f"srhub-openrosa-digest-v1\x00{realm}\x00{username}"


def seal_digest_secrets(
    cipher: IdentifierCipher, realm: str, username: str, password: str
) -> bytes:
    """The sealed Digest password-equivalents of ``password`` (one per offered algorithm)."""
    values = {algorithm: ha1(algorithm, username, realm, password) for algorithm in ALGORITHMS}
    return cipher.seal(sealing_context(realm, username), json.dumps(values).encode("ascii"))


def open_digest_secret(
    cipher: IdentifierCipher, realm: str, username: str, sealed: bytes, algorithm: Algorithm
) -> str | None:
    """The HA1 for ``algorithm``, or None when nothing usable is stored (sealed for another
    realm or user, another key, or tampered with)."""
    try:
        values = json.loads(cipher.unseal(sealing_context(realm, username), sealed))
    except (IdentifierDecryptionError, ValueError):
        return None
    found = values.get(algorithm) if isinstance(values, dict) else None
    return found if isinstance(found, str) else None


@dataclass(frozen=True)
class FieldUser:
    """A password user as the OpenRosa server sees them (read from ``ui_users``)."""

    username: str
    role: str
    areas: tuple[str, ...]
    active: bool
    password_hash: str
    digest_sealed: bytes | None

    def principal(self) -> Principal:
        """The caller this user is: their one role and their areas."""
        try:
            role = Role(self.role)
        except ValueError:
            role = None
        roles = frozenset({role}) if role is not None else frozenset()
        areas = self.areas if role in FIELD_ROLES else ()
        return Principal(
            subject=self.username,
            roles=roles,
            admin_areas=areas,
            kind="password",
            token_id=f"user:{self.username}",
        )


class VerifiedPasswords:
    """Remembers, for a short while, that a (user, password, stored hash) was verified.

    A device using Basic sends the password with every request, and scrypt costs ~0.1 s and
    32 MiB on purpose: checking it on every submission of a sync burst would make the hub's own
    login cost its bottleneck. Entries are keyed by an HMAC under a per-process random key (the
    password is never kept), include the stored hash (a password reset invalidates them) and
    expire after ``ttl_seconds``. Whether the user is still active is checked on every request
    regardless.
    """

    def __init__(self, ttl_seconds: float = 300.0, max_entries: int = 10_000) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def _fingerprint(self, username: str, password: str, stored_hash: str) -> bytes:
        message = "\x00".join((username, password, stored_hash)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def known(self, username: str, password: str, stored_hash: str) -> bool:
        fingerprint = self._fingerprint(username, password, stored_hash)
        with self._lock:
            until = self._entries.get(fingerprint)
            if until is None:
                return False
            if time.monotonic() >= until:
                self._entries.pop(fingerprint, None)
                return False
            return True

    def remember(self, username: str, password: str, stored_hash: str) -> None:
        fingerprint = self._fingerprint(username, password, stored_hash)
        with self._lock:
            self._entries[fingerprint] = time.monotonic() + self._ttl
            self._entries.move_to_end(fingerprint)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


class FailedLogins:
    """Failed logins per (user name, client address), in the hub's shared counters.

    Once ``limit`` failures are counted within the window, further attempts for that pair are
    refused before any password is checked, until the window ends. A success clears the pair.
    Keyed by name *and* address so that someone guessing a field worker's password from one
    place cannot lock the worker out everywhere. ``storage`` is the rate limits' storage
    (``hub.ratelimit.flask_limits.make_storage``: the database, so every API process counts
    the same failures); without one, this process's memory.
    """

    def __init__(self, limit: int, window_seconds: float, storage: Storage | None = None) -> None:
        self._counter = LoginFailures(storage or MemoryStorage(), "openrosa", limit, window_seconds)

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until this pair may try again; 0 when it may try now."""
        return self._counter.retry_after(username.lower(), address)

    def failed(self, username: str, address: str) -> None:
        self._counter.failed(username.lower(), address)

    def succeeded(self, username: str, address: str) -> None:
        self._counter.succeeded(username.lower(), address)
