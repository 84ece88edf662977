"""Bearer tokens: JWTs signed by the hub with Ed25519 (EdDSA), each naming its key (``kid``).

The keys form a rotating keyring (``hub/auth/signing_keys.py``) whose public halves are
published at ``/.well-known/jwks.json``, so a gateway or a program can check a hub token
without being able to mint one. Verification pins the algorithm (a token that names ``none``,
HS256 or anything else is refused before any key is used), requires a ``kid`` the keyring
still trusts, pins the issuer, requires every claim we rely on, and allows only a small clock
leeway. A token can also be revoked by its id (``jti``, ``hub/auth/revocations.py``). Each
refusal carries an internal reason for logs and tests; callers over HTTP only see a 401.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from hub.auth.roles import (
    MAX_SUBJECT_LENGTH,
    GrantError,
    Principal,
    Role,
    validate_grant,
)
from hub.auth.signing_keys import Keyring, KeyringSource
from hub.settings import Settings

ALGORITHM = "EdDSA"
DEFAULT_LEEWAY_SECONDS = 30
# A token longer than this is refused unparsed: ours are a few hundred bytes, and parsing
# arbitrarily large attacker input is wasted work.
MAX_TOKEN_LENGTH = 8192
# The longest lifetime a token may be given (the local admin token's is a year): a revocation by
# id alone is kept this long, since the token's own expiry is then unknown.
MAX_TTL_SECONDS = 400 * 24 * 3600
REQUIRED_CLAIMS = ("sub", "roles", "iat", "exp", "iss", "jti")
# Tokens already verified, kept until they expire: a client sends the same token with every
# request, and decoding and checking it again costs more than a fast API call itself.
VERIFIED_CACHE_SIZE = 1024


class TokenError(Exception):
    """A token was refused. ``reason`` is a short machine-readable cause for logs and tests.

    Reasons: ``malformed``, ``too_long``, ``algorithm``, ``unknown_key``, ``bad_signature``,
    ``expired``, ``not_yet_valid``, ``wrong_issuer``, ``missing_claim``, ``bad_claims``,
    ``revoked``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TokenSigner:
    """Issues and verifies the hub's tokens with a keyring and an issuer."""

    keys: KeyringSource
    issuer: str
    default_ttl_seconds: int = 8 * 3600
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS
    # Ids of revoked tokens, asked on every verification (also of remembered tokens); None:
    # no revocation list (a CLI that only issues).
    is_revoked: Callable[[str], bool] | None = field(default=None, compare=False)
    _verified: dict[str, Principal] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __repr__(self) -> str:  # never print key material
        return f"TokenSigner(issuer={self.issuer!r})"

    @classmethod
    def with_keyring(cls, keyring: Keyring, issuer: str = "srhub", **kwargs: Any) -> TokenSigner:
        """A signer over fixed keys (tests, tools)."""
        return cls(keys=KeyringSource(fixed=keyring), issuer=issuer, **kwargs)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, is_revoked: Callable[[str], bool] | None = None
    ) -> TokenSigner:
        return cls(
            keys=keyring_source(settings),
            issuer=settings.jwt_issuer,
            default_ttl_seconds=settings.token_ttl_seconds,
            is_revoked=is_revoked,
        )

    def issue(
        self,
        *,
        subject: str,
        roles: Iterable[Role | str],
        admin_areas: Iterable[str] = (),
        program: str | None = None,
        ttl_seconds: int | None = None,
        now: datetime | None = None,
    ) -> str:
        """Return a signed token for ``subject``; raises GrantError for inconsistent grants."""
        subject = subject.strip()
        if not subject:
            raise GrantError("the subject (--sub) may not be empty")
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise GrantError(f"the subject is longer than {MAX_SUBJECT_LENGTH} characters")
        ttl = self.default_ttl_seconds if ttl_seconds is None else ttl_seconds
        if not 0 < ttl <= MAX_TTL_SECONDS:
            raise GrantError(f"the token lifetime must be 1 to {MAX_TTL_SECONDS} seconds")
        grant = validate_grant(roles, admin_areas, program)
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "iat": issued,
            "exp": issued + timedelta(seconds=ttl),
            "jti": secrets.token_hex(16),
            "roles": sorted(r.value for r in grant.roles),
        }
        if grant.admin_areas:
            claims["areas"] = list(grant.admin_areas)
        if grant.program:
            claims["program"] = grant.program
        key = self.keys.current().active
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})

    def verify(self, token: str) -> Principal:
        """Return the principal a valid token stands for, or raise TokenError.

        A token verified before is answered from memory until it expires (with the same
        leeway as a full check); only valid tokens are remembered, so a refused one is checked
        in full every time, and the cache is emptied when it reaches its size.
        """
        known = self._verified.get(token)
        if known is not None and known.expires_at is not None:
            fresh = datetime.now(UTC) < known.expires_at + timedelta(seconds=self.leeway_seconds)
            key_kept = self.keys.current().verifying_key(known.key_id or "") is not None
            if fresh and key_kept:
                self._refuse_revoked(known)
                return known
            self._verified.pop(token, None)
        principal = self._verify(token)
        self._refuse_revoked(principal)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    def _refuse_revoked(self, principal: Principal) -> None:
        if self.is_revoked is not None and self.is_revoked(principal.token_id):
            raise TokenError("revoked", "token has been revoked")

    def _verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("too_long", f"token longer than {MAX_TOKEN_LENGTH} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise TokenError("malformed", "token is not a JWT") from exc
        if header.get("alg") != ALGORITHM:
            raise TokenError("algorithm", f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("unknown_key", "token names no signing key (kid)")
        key = self.keys.current().verifying_key(kid)
        if key is None:  # perhaps rotated in another process a moment ago: read again
            key = self.keys.current(fresh=True).verifying_key(kid)
        if key is None:
            raise TokenError("unknown_key", "token names a signing key that is unknown or retired")
        options: jwt.types.Options = {"require": list(REQUIRED_CLAIMS)}
        try:
            claims = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options=options,
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("expired", "token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError("not_yet_valid", "token is not valid yet") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError("wrong_issuer", "token was issued by someone else") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenError("bad_signature", "token signature does not match") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError("missing_claim", f"token lacks claim {exc.claim!r}") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise TokenError("algorithm", "algorithm is not accepted") from exc
        except jwt.DecodeError as exc:
            raise TokenError("malformed", "token cannot be decoded") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError("bad_claims", f"token claims are invalid: {exc}") from exc
        return _principal_from_claims(claims, kid)


def _principal_from_claims(claims: dict[str, Any], kid: str) -> Principal:
    """Build a Principal, refusing claims we did not issue in this shape."""
    subject, jti = claims.get("sub"), claims.get("jti")
    roles, areas, program = claims.get("roles"), claims.get("areas", []), claims.get("program")
    if not isinstance(subject, str) or not subject or not isinstance(jti, str):
        raise TokenError("bad_claims", "sub and jti must be non-empty strings")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise TokenError("bad_claims", "roles must be a list of strings")
    if not isinstance(areas, list) or not all(isinstance(a, str) for a in areas):
        raise TokenError("bad_claims", "areas must be a list of strings")
    if program is not None and not isinstance(program, str):
        raise TokenError("bad_claims", "program must be a string")
    try:
        grant = validate_grant(roles, areas, program)
    except GrantError as exc:
        raise TokenError("bad_claims", str(exc)) from exc
    return Principal(
        subject=subject,
        roles=grant.roles,
        admin_areas=grant.admin_areas,
        program=grant.program,
        kind="token",
        token_id=jti,
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        key_id=kid,
    )


def keyring_source(settings: Settings) -> KeyringSource:
    """The settings' keyring: given whole (a secret store's JSON), else the local file."""
    if settings.token_signing_keys:
        return KeyringSource(
            fixed=Keyring.from_json(settings.token_signing_keys, "SRHUB_TOKEN_SIGNING_KEYS")
        )
    return KeyringSource(path=settings.effective_token_keyring_file)


def issue_token(settings: Settings, **kwargs: Any) -> str:
    """Issue a token with the keys and issuer of ``settings`` (see TokenSigner.issue)."""
    return TokenSigner.from_settings(settings).issue(**kwargs)


def verify_token(settings: Settings, token: str) -> Principal:
    """Verify a token with the keys and issuer of ``settings`` (see TokenSigner.verify)."""
    return TokenSigner.from_settings(settings).verify(token)
