"""API keys for systems (partner registries, program MIS) that cannot do a token exchange.

A key reads ``srk_<id>_<secret>``: the id (16 hex characters) finds the row, the secret (32
random bytes, URL-safe base64) is checked against its stored SHA-256 with a constant-time
compare. The full key is shown once, at creation; afterwards only its id and name exist, so a
leaked database does not leak working keys.

Every function takes a SQLAlchemy Session and leaves committing to the caller's transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.auth.roles import MAX_SUBJECT_LENGTH, GrantError, Principal, validate_grant
from hub.auth.tables import ApiKeyRow
from standards.timeutil import utcnow

KEY_PREFIX = "srk_"
_KEY_RE = re.compile(r"^srk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
# last_used_at is only rewritten when older than this, so a busy system does not turn every
# read request into a database write.
LAST_USED_GRANULARITY = timedelta(minutes=1)
# Compared against when the id is unknown, so "no such id" and "wrong secret" take equal time.
_DUMMY_HASH = hashlib.sha256(b"srhub-no-such-key").hexdigest()


class ApiKeyError(Exception):
    """A presented key was refused. ``reason``: malformed, unknown, bad_secret, revoked."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ApiKeyNotFound(LookupError):
    """No API key has the given id."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """What may be shown about a key: everything except its secret and hash."""

    id: str
    name: str
    roles: tuple[str, ...]
    admin_areas: tuple[str, ...]
    program: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        def when(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "id": self.id,
            "name": self.name,
            "roles": list(self.roles),
            "admin_areas": list(self.admin_areas),
            "program": self.program,
            "created_at": when(self.created_at),
            "last_used_at": when(self.last_used_at),
            "revoked_at": when(self.revoked_at),
            "active": self.active,
        }


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key: ``key`` is the only copy of the secret; show it once and forget it."""

    key: str
    info: ApiKeyInfo

    def __repr__(self) -> str:  # never print the secret by accident
        return f"CreatedApiKey(id={self.info.id!r}, name={self.info.name!r})"


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        roles=tuple(sorted(row.roles)),
        admin_areas=tuple(row.admin_areas or ()),
        program=row.program,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def parse_api_key(presented: str) -> tuple[str, str]:
    """Split a presented key into (id, secret); raise ApiKeyError if it is not one of ours."""
    match = _KEY_RE.match(presented.strip())
    if match is None:
        raise ApiKeyError("malformed", "not an srhub API key (expected srk_<id>_<secret>)")
    return match.group(1), match.group(2)


def create_api_key(
    session: Session,
    *,
    name: str,
    roles: list[str] | tuple[str, ...] | frozenset[Any],
    admin_areas: list[str] | tuple[str, ...] = (),
    program: str | None = None,
) -> CreatedApiKey:
    """Create and store a key for system ``name``; raises GrantError for bad input."""
    name = name.strip()
    if not name:
        raise GrantError("an API key needs a name (--name) saying which system uses it")
    if len(name) > MAX_SUBJECT_LENGTH:
        raise GrantError(f"the name is longer than {MAX_SUBJECT_LENGTH} characters")
    grant = validate_grant(roles, admin_areas, program)
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id=key_id,
        name=name,
        secret_sha256=_hash_secret(secret),
        roles=sorted(r.value for r in grant.roles),
        admin_areas=list(grant.admin_areas),
        program=grant.program,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return CreatedApiKey(key=f"{KEY_PREFIX}{key_id}_{secret}", info=_info(row))


def list_api_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
    """All keys, oldest first, without secrets."""
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    return [_info(row) for row in session.scalars(query)]


def revoke_api_key(session: Session, key_id: str) -> ApiKeyInfo:
    """Revoke a key (idempotent: an already revoked key keeps its first revocation time)."""
    row = session.get(ApiKeyRow, key_id.strip())
    if row is None:
        raise ApiKeyNotFound(f"no API key has id {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return _info(row)


def authenticate_api_key(session: Session, presented: str) -> Principal:
    """Return the principal for a valid, unrevoked key, or raise ApiKeyError."""
    key_id, secret = parse_api_key(presented)
    row = session.get(ApiKeyRow, key_id)
    expected = row.secret_sha256 if row is not None else _DUMMY_HASH
    matches = hmac.compare_digest(_hash_secret(secret), expected)
    if row is None:
        raise ApiKeyError("unknown", "no API key has this id")
    if not matches:
        raise ApiKeyError("bad_secret", "API key secret does not match")
    if row.revoked_at is not None:
        raise ApiKeyError("revoked", "API key has been revoked")
    try:
        grant = validate_grant(row.roles, row.admin_areas or (), row.program)
    except GrantError as exc:  # a row edited by hand into nonsense must not grant anything
        raise ApiKeyError("bad_grant", f"API key grant is invalid: {exc}") from exc
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        row.last_used_at = now
        session.flush()
    return Principal(
        subject=row.name,
        roles=grant.roles,
        admin_areas=grant.admin_areas,
        program=grant.program,
        kind="api_key",
        token_id=row.id,
    )
