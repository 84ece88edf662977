"""Password hashing for dashboard users, with the standard library's scrypt.

scrypt is memory-hard, so a stolen ``ui_users`` table is expensive to brute-force on GPUs. The
parameters are stored with each hash, so they can be raised later without breaking old hashes.
The comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
# 2**15 * 8 * 128 bytes = 32 MiB of memory per hash: slow for an attacker, ~0.1 s for a login.
DEFAULT_N = 2**15
DEFAULT_R = 8
DEFAULT_P = 1
KEY_LENGTH = 32
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # hashing megabytes of "password" is a denial of service


class PasswordPolicyError(ValueError):
    """A new password is refused; the message says what a good one looks like."""


def check_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=128 * 1024 * 1024,
        dklen=KEY_LENGTH,
    )


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64 parts) for a password that passed ``check_policy``."""
    check_policy(password)
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, n, r, p)
    b64 = base64.b64encode
    return f"{SCHEME}${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for any malformed stored value."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        found = _derive(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


# A hash of a random password, checked when the user does not exist, so a login for an unknown
# name costs as much time as one for a known name (no user enumeration by timing).
_DUMMY = f"{SCHEME}${DEFAULT_N}${DEFAULT_R}${DEFAULT_P}${base64.b64encode(b'0' * 16).decode()}$" + (
    base64.b64encode(b"1" * KEY_LENGTH).decode()
)


def burn_time(password: str) -> None:
    """Spend one verification's worth of time on nothing (see ``_DUMMY``)."""
    verify_password(password[:MAX_PASSWORD_LENGTH], _DUMMY)
