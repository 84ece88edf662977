"""Bearer tokens, role grants, area scoping and the first-run admin token (no database)."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from hub.auth.api_keys import ApiKeyError, parse_api_key
from hub.auth.bootstrap import ensure_admin_token, is_embedded
from hub.auth.roles import GrantError, Principal, Role, parse_role, validate_grant
from hub.auth.signing_keys import Keyring, SigningKey
from hub.auth.tokens import MAX_TOKEN_LENGTH, TokenError, TokenSigner
from hub.settings import load_settings

KEYRING = Keyring.generate()
SECRET = b"k" * 32  # an HMAC secret, for tokens an attacker signs with HS256


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner.with_keyring(KEYRING, issuer="srhub", default_ttl_seconds=600)


def _impostor(kid: str) -> TokenSigner:
    """A signer with another private key under the same key id."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = SigningKey(kid=kid, private=Ed25519PrivateKey.generate(), created_at=datetime.now(UTC))
    return TokenSigner.with_keyring(Keyring((key,)), issuer="srhub")


def _hs256(claims: dict[str, object], kid: str) -> str:
    """A token as an attacker would make one with a shared secret."""
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": kid})


def _b64(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def _flip_signature_byte(token: str) -> str:
    """The token with one signature byte changed, still canonical base64url.

    Editing the text's last characters instead can produce a non-canonical encoding
    (the final character carries padding bits), which is refused as malformed, not as
    a bad signature, for about one token in 256.
    """
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    return f"{head}.{body}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def _reason(signer: TokenSigner, token: str) -> str:
    with pytest.raises(TokenError) as caught:
        signer.verify(token)
    return caught.value.reason


# --- issue and verify ------------------------------------------------------------------------


def test_issued_token_round_trips_to_the_same_principal(signer: TokenSigner) -> None:
    token = signer.issue(subject="alice", roles=["field_worker"], admin_areas=["KE-30", "KE-31"])
    principal = signer.verify(token)
    claims = _claims(token)
    assert principal.subject == "alice"
    assert principal.roles == frozenset({Role.field_worker})
    assert principal.admin_areas == ("KE-30", "KE-31")
    assert principal.kind == "token"
    assert principal.token_id == claims["jti"]
    assert set(claims) >= {"sub", "roles", "areas", "iat", "exp", "iss", "jti"}
    assert claims["exp"] - claims["iat"] == 600
    assert principal.expires_at == datetime.fromtimestamp(claims["exp"], UTC)


def test_each_token_gets_its_own_id(signer: TokenSigner) -> None:
    ids = {signer.verify(signer.issue(subject="a", roles=["admin"])).token_id for _ in range(5)}
    assert len(ids) == 5


def test_program_role_carries_its_program(signer: TokenSigner) -> None:
    principal = signer.verify(signer.issue(subject="cct", roles=["program"], program="CCT-01"))
    assert principal.program == "CCT-01"
    assert principal.may_act_for_program("CCT-01")
    assert not principal.may_act_for_program("OTHER")


def test_expired_token_is_refused(signer: TokenSigner) -> None:
    old = datetime.now(UTC) - timedelta(hours=2)
    token = signer.issue(subject="a", roles=["admin"], ttl_seconds=3600, now=old)
    assert _reason(signer, token) == "expired"


def test_small_clock_skew_is_tolerated(signer: TokenSigner) -> None:
    # Expired 10 s ago: within the 30 s leeway.
    issued = datetime.now(UTC) - timedelta(seconds=70)
    token = signer.issue(subject="a", roles=["admin"], ttl_seconds=60, now=issued)
    assert signer.verify(token).subject == "a"


def test_a_remembered_token_still_expires(signer: TokenSigner) -> None:
    """Verified tokens are remembered, but only until their expiry (plus the leeway)."""
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=88)
    token = signer.issue(subject="a", roles=["admin"], ttl_seconds=60, now=issued)
    assert signer.verify(token).subject == "a"  # 28 s past exp: inside the 30 s leeway
    assert signer.verify(token).subject == "a"  # from memory
    time.sleep(2.1)
    assert _reason(signer, token) == "expired"


def test_remembering_a_token_never_lends_it_to_another_secret(signer: TokenSigner) -> None:
    token = signer.issue(subject="a", roles=["admin"])
    assert signer.verify(token).subject == "a"
    other = TokenSigner.with_keyring(Keyring.generate(), issuer="srhub")
    assert _reason(other, token) == "unknown_key"
    tampered = _flip_signature_byte(token)
    assert _reason(signer, tampered) == "bad_signature"
    assert _reason(signer, tampered) == "bad_signature"  # refusals are never remembered


def test_token_from_the_future_is_refused(signer: TokenSigner) -> None:
    future = datetime.now(UTC) + timedelta(hours=1)
    token = signer.issue(subject="a", roles=["admin"], now=future)
    assert _reason(signer, token) == "not_yet_valid"


def test_wrong_issuer_is_refused(signer: TokenSigner) -> None:
    other = TokenSigner.with_keyring(KEYRING, issuer="someone-else")
    assert _reason(signer, other.issue(subject="a", roles=["admin"])) == "wrong_issuer"


def test_wrong_signature_is_refused(signer: TokenSigner) -> None:
    forger = _impostor(KEYRING.active.kid)
    assert _reason(signer, forger.issue(subject="a", roles=["admin"])) == "bad_signature"


def test_tampered_payload_is_refused(signer: TokenSigner) -> None:
    header, _, sig = signer.issue(subject="a", roles=["auditor"]).split(".")
    claims = _claims(signer.issue(subject="a", roles=["auditor"]))
    claims["roles"] = ["admin"]
    assert _reason(signer, f"{header}.{_b64(claims)}.{sig}") == "bad_signature"


def test_alg_none_is_refused_before_any_key_is_used(signer: TokenSigner) -> None:
    claims = _claims(signer.issue(subject="a", roles=["auditor"]))
    claims["roles"] = ["admin"]
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert _reason(signer, unsigned) == "algorithm"


def test_other_algorithms_are_refused(signer: TokenSigner) -> None:
    token = jwt.encode(
        {"sub": "a", "roles": ["admin"], "iss": "srhub", "jti": "x", "iat": 1, "exp": 2**40},
        SECRET + b"-longer-key-for-hs512-0123456789abcdef",
        algorithm="HS512",
    )
    assert _reason(signer, token) == "algorithm"


@pytest.mark.parametrize("missing", ["sub", "roles", "exp", "iat", "iss", "jti"])
def test_missing_claim_is_refused(signer: TokenSigner, missing: str) -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": "a",
        "roles": ["admin"],
        "iss": "srhub",
        "jti": "j",
        "iat": now,
        "exp": now + 60,
    }
    del claims[missing]
    token = jwt.encode(
        claims, KEYRING.active.private, algorithm="EdDSA", headers={"kid": KEYRING.active.kid}
    )
    assert _reason(signer, token) == "missing_claim"


@pytest.mark.parametrize(
    "bad",
    [
        {"roles": ["superuser"]},
        {"roles": "admin"},
        {"roles": []},
        {"roles": ["field_worker"]},  # no areas: would be scoped to nothing
        {"roles": ["field_worker"], "areas": [""]},  # empty prefix would match everything
        {"roles": ["program"], "program": 7},
    ],
)
def test_claims_we_never_issue_are_refused(signer: TokenSigner, bad: dict[str, object]) -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": "a", "iss": "srhub", "jti": "j", "iat": now, "exp": now + 60, **bad}
    token = jwt.encode(
        claims, KEYRING.active.private, algorithm="EdDSA", headers={"kid": KEYRING.active.kid}
    )
    assert _reason(signer, token) == "bad_claims"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x.y.z"])
def test_garbage_is_malformed(signer: TokenSigner, garbage: str) -> None:
    assert _reason(signer, garbage) == "malformed"


def test_oversized_token_is_refused_unparsed(signer: TokenSigner) -> None:
    assert _reason(signer, "a" * (MAX_TOKEN_LENGTH + 1)) == "too_long"


def test_signer_repr_hides_the_secret(signer: TokenSigner) -> None:
    seed = KEYRING.active.to_json()["ed25519"]
    assert seed not in repr(signer) and seed not in repr(KEYRING) and "ed25519" not in repr(KEYRING)


def test_a_symmetric_token_under_a_known_kid_is_refused(signer: TokenSigner) -> None:
    """The HS256-with-the-public-key confusion: refused by the algorithm pin, before any key."""
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": "a",
        "roles": ["admin"],
        "iss": "srhub",
        "jti": "j",
        "iat": now,
        "exp": now + 60,
    }
    assert _reason(signer, _hs256(claims, KEYRING.active.kid)) == "algorithm"


def test_a_token_without_kid_or_with_an_unknown_one_is_refused(signer: TokenSigner) -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": "a",
        "roles": ["admin"],
        "iss": "srhub",
        "jti": "j",
        "iat": now,
        "exp": now + 60,
    }
    bare = jwt.encode(claims, KEYRING.active.private, algorithm="EdDSA")
    assert _reason(signer, bare) == "unknown_key"
    stranger = jwt.encode(
        claims, KEYRING.active.private, algorithm="EdDSA", headers={"kid": "nobody"}
    )
    assert _reason(signer, stranger) == "unknown_key"


def test_rotation_keeps_old_tokens_until_their_key_is_retired() -> None:
    first = Keyring.generate()
    old_signer = TokenSigner.with_keyring(first)
    old_token = old_signer.issue(subject="a", roles=["admin"])
    rotated = first.rotated()
    new_signer = TokenSigner.with_keyring(rotated)
    new_token = new_signer.issue(subject="b", roles=["admin"])
    assert jwt.get_unverified_header(new_token)["kid"] == rotated.active.kid != first.active.kid
    assert new_signer.verify(old_token).subject == "a"  # signed by the previous key: still good
    retired = TokenSigner.with_keyring(rotated.retired(first.active.kid))
    assert _reason(retired, old_token) == "unknown_key"
    assert retired.verify(new_token).subject == "b"
    with pytest.raises(Exception, match="rotate first"):
        rotated.retired(rotated.active.kid)  # the signing key itself cannot be retired
    published = {k["kid"] for k in rotated.retired(first.active.kid).jwks()["keys"]}
    assert published == {rotated.active.kid}


def test_jwks_lets_anyone_verify_a_token_offline(signer: TokenSigner) -> None:
    token = signer.issue(subject="a", roles=["auditor"])
    [jwk] = KEYRING.jwks()["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and "d" not in jwk
    public = jwt.PyJWK.from_dict(jwk).key
    claims = jwt.decode(token, public, algorithms=["EdDSA"], issuer="srhub")
    assert claims["sub"] == "a"


def test_a_revoked_token_is_refused_even_when_remembered() -> None:
    revoked: set[str] = set()
    signer = TokenSigner.with_keyring(KEYRING, is_revoked=revoked.__contains__)
    token = signer.issue(subject="a", roles=["admin"])
    principal = signer.verify(token)  # now remembered
    revoked.add(principal.token_id)
    assert _reason(signer, token) == "revoked"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subject": " ", "roles": ["admin"]}, "subject"),
        ({"subject": "a", "roles": []}, "at least one role"),
        ({"subject": "a", "roles": ["wizard"]}, "unknown role 'wizard'"),
        ({"subject": "a", "roles": ["field_worker"]}, "--area"),
        ({"subject": "a", "roles": ["program"]}, "--program"),
        ({"subject": "a", "roles": ["admin"], "admin_areas": ["KE"]}, "field_worker"),
        ({"subject": "a", "roles": ["admin"], "ttl_seconds": 0}, "lifetime"),
    ],
)
def test_inconsistent_grants_are_refused_at_issue(
    signer: TokenSigner, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(GrantError, match=message):
        signer.issue(**kwargs)  # type: ignore[arg-type]


# --- roles and scopes -------------------------------------------------------------------------


def test_parse_role_is_case_insensitive_and_names_valid_roles() -> None:
    assert parse_role(" Registry_Staff ") is Role.registry_staff
    with pytest.raises(GrantError, match="auditor"):
        parse_role("root")


def test_validate_grant_deduplicates_and_trims_areas() -> None:
    grant = validate_grant(["field_worker"], [" KE-30", "KE-30", "KE-31 "])
    assert grant.admin_areas == ("KE-30", "KE-31")


def test_field_worker_is_limited_to_area_prefixes() -> None:
    worker = Principal("w", frozenset({Role.field_worker}), admin_areas=("KE-30", "UG-1"))
    assert worker.area_scoped
    assert worker.may_touch_area("KE-30")
    assert worker.may_touch_area("KE-30-01-004")
    assert worker.may_touch_area("UG-1-2")
    assert not worker.may_touch_area("UG-12")  # areas are segments, not string prefixes
    assert not worker.may_touch_area("KE-301")
    assert not worker.may_touch_area("KE-31")
    assert not worker.may_touch_area("ke-30")
    assert not worker.may_touch_area("")
    assert not worker.may_touch_area(None)


def test_staff_and_auditors_are_not_area_scoped_but_systems_get_no_area_access() -> None:
    staff = Principal("s", frozenset({Role.registry_staff, Role.field_worker}), ("KE-30",))
    auditor = Principal("a", frozenset({Role.auditor}))
    partner = Principal("p", frozenset({Role.partner}))
    assert not staff.area_scoped and staff.may_touch_area("UG-9")
    assert auditor.may_touch_area(None)
    assert not partner.may_touch_area("KE-30")


# --- API key format -------------------------------------------------------------------------


def test_api_key_format_is_parsed_strictly() -> None:
    secret = "A" * 40 + "_-9"
    assert parse_api_key(f"srk_0123456789abcdef_{secret}") == ("0123456789abcdef", secret)
    for bad in [
        "",
        "srk_",
        "srk_XYZ_abc",
        f"sk_0123456789abcdef_{secret}",
        f"srk_0123456789abcdef_{secret}extra",
        f"srk_0123456789abcde_{secret}",
    ]:
        with pytest.raises(ApiKeyError) as caught:
            parse_api_key(bad)
        assert caught.value.reason == "malformed"


# --- first-run admin token ------------------------------------------------------------------


def _embedded_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_settings(env={}, data_dir=tmp_path / "var")


def test_first_run_writes_a_private_admin_token_and_later_runs_reuse_it(tmp_path: Path) -> None:
    settings = _embedded_settings(tmp_path)
    assert is_embedded(settings)
    first = ensure_admin_token(settings)
    assert first is not None
    path = settings.effective_admin_token_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first
    principal = TokenSigner.from_settings(settings).verify(first)
    assert principal.roles == frozenset({Role.admin})
    assert principal.expires_at is not None
    assert principal.expires_at - datetime.now(UTC) > timedelta(days=300)
    assert ensure_admin_token(settings) == first


def test_admin_token_is_reissued_when_it_no_longer_verifies(tmp_path: Path) -> None:
    settings = _embedded_settings(tmp_path)
    first = ensure_admin_token(settings)
    settings.effective_admin_token_file.write_text("not-a-token\n")
    os.chmod(settings.effective_admin_token_file, 0o644)
    second = ensure_admin_token(settings)
    assert second is not None and second != first
    assert TokenSigner.from_settings(settings).verify(second).subject == "local-admin"
    assert stat.S_IMODE(settings.effective_admin_token_file.stat().st_mode) == 0o600


def test_admin_token_is_reissued_when_close_to_expiry(tmp_path: Path) -> None:
    settings = _embedded_settings(tmp_path)
    signer = TokenSigner.from_settings(settings)
    short = signer.issue(subject="local-admin", roles=["admin"], ttl_seconds=3600)
    settings.effective_admin_token_file.write_text(short)
    renewed = ensure_admin_token(settings)
    assert renewed is not None and renewed != short


def test_non_admin_token_in_the_file_is_replaced(tmp_path: Path) -> None:
    settings = _embedded_settings(tmp_path)
    signer = TokenSigner.from_settings(settings)
    settings.effective_admin_token_file.write_text(
        signer.issue(subject="x", roles=["auditor"], ttl_seconds=400 * 86400)
    )
    token = ensure_admin_token(settings)
    assert token is not None
    assert Role.admin in signer.verify(token).roles


@pytest.mark.parametrize(
    "overrides",
    [
        {"database_url": "postgresql://db.example/srhub"},
        {"amqp_url": "amqp://guest:guest@127.0.0.1:5672/"},
    ],
)
def test_production_setups_get_no_admin_token(tmp_path: Path, overrides: dict[str, str]) -> None:
    settings = load_settings(env={}, data_dir=tmp_path / "var", **overrides)
    assert ensure_admin_token(settings) is None
    assert not settings.effective_admin_token_file.exists()
