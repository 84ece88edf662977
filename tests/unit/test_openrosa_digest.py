"""RFC 7616 Digest pieces of the OpenRosa server: the RFC's and the OpenRosa page's worked
example, signed nonces (fresh, stale, forged), nonce-count replay memory, header checks, and
the sealed password-equivalents."""

from __future__ import annotations

import pytest

from hub.openrosa import digest
from hub.openrosa.credentials import FailedLogins, open_digest_secret, seal_digest_secrets
from registry_core.crypto import IdentifierCipher

KEY = b"k" * 32


def test_md5_response_matches_the_openrosa_pages_worked_example() -> None:
    # docs.getodk.org/openrosa-authentication: "Mufasa" / "Circle Of Life".
    ha1 = digest.ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    assert ha1 == "939e7578ed9e3c518a452acee763bce9"
    response = digest.expected_response(
        "MD5",
        ha1,
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        nc="00000001",
        cnonce="0a4f113b",
        qop="auth",
        method="GET",
        uri="/dir/index.html",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_sha256_response_matches_rfc7616_section_3_9_1() -> None:
    ha1 = digest.ha1("SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life")
    response = digest.expected_response(
        "SHA-256",
        ha1,
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        qop="auth",
        method="GET",
        uri="/dir/index.html",
    )
    assert response == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def test_nonces_are_fresh_then_stale_and_forgeries_are_invalid() -> None:
    signer = digest.NonceSigner.from_secret(KEY, ttl_seconds=60)
    nonce = signer.issue(now=1_000.0)
    assert signer.check(nonce, now=1_030.0) == "fresh"
    assert signer.check(nonce, now=1_061.0) == "stale"
    other = digest.NonceSigner.from_secret(b"x" * 32, ttl_seconds=60)
    assert other.check(nonce, now=1_030.0) == "invalid", "signed with another key"
    flipped = ("A" if nonce[0] != "A" else "B") + nonce[1:]
    assert signer.check(flipped, now=1_030.0) == "invalid"
    assert signer.check("", now=1_030.0) == "invalid"
    assert signer.check("not base64 at all!", now=1_030.0) == "invalid"
    assert signer.check(signer.issue(now=2_000.0), now=1_000.0) == "invalid", "from the future"
    assert signer.issue() != signer.issue(), "each nonce is random"
    assert "k" not in repr(signer)


def test_nonce_counts_refuse_a_repeated_nc_but_take_out_of_order_ones() -> None:
    counts = digest.NonceCounts(ttl_seconds=60, max_counts=3)
    assert counts.first_use("n1", 2, now=0.0)
    assert counts.first_use("n1", 1, now=0.0), "requests on one nonce may arrive out of order"
    assert not counts.first_use("n1", 2, now=1.0), "a replay"
    assert counts.first_use("n2", 2, now=1.0), "counts are per nonce"
    assert counts.first_use("n1", 3, now=1.0)
    assert not counts.first_use("n1", 4, now=1.0), "more uses of one nonce than anyone needs"
    assert counts.first_use("n1", 2, now=1_000.0), "forgotten once the nonce has expired"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"qop": "auth-int"}, "qop"),
        ({"algorithm": "MD5-sess"}, "algorithm"),
        ({"nc": "1"}, "nc"),
        ({"userhash": "true"}, "userhash"),
        ({"response": None}, "response"),
    ],
)
def test_digest_headers_outside_what_is_offered_are_malformed(
    change: dict[str, str | None], reason: str
) -> None:
    params: dict[str, str | None] = {
        "username": "u",
        "realm": "srhub",
        "nonce": "n",
        "uri": "/openrosa/formList",
        "response": "ab",
        "qop": "auth",
        "nc": "00000001",
        "cnonce": "c",
        **change,
    }
    with pytest.raises(digest.MalformedDigest, match=reason):
        digest.parse_credentials(params)


def test_the_challenge_names_realm_qop_algorithm_nonce_domain_and_stale() -> None:
    text = digest.challenge("srhub", "abc", "MD5", "/openrosa", stale=True)
    assert text.startswith("Digest ")
    for part in ('realm="srhub"', 'qop="auth"', "algorithm=MD5", 'nonce="abc"', "stale=true"):
        assert part in text
    assert 'domain="/openrosa"' in text
    assert "stale" not in digest.challenge("srhub", "abc", "MD5", "/openrosa", stale=False)


def test_sealed_password_equivalents_open_only_for_their_realm_and_user() -> None:
    cipher = IdentifierCipher(b"e" * 32, b"h" * 32)
    sealed = seal_digest_secrets(cipher, "srhub", "amina", "a long passphrase")
    assert b"a long passphrase" not in sealed
    md5 = open_digest_secret(cipher, "srhub", "amina", sealed, "MD5")
    assert md5 == digest.ha1("MD5", "amina", "srhub", "a long passphrase")
    sha = open_digest_secret(cipher, "srhub", "amina", sealed, "SHA-256")
    assert sha == digest.ha1("SHA-256", "amina", "srhub", "a long passphrase")
    assert open_digest_secret(cipher, "srhub", "someone", sealed, "MD5") is None
    assert open_digest_secret(cipher, "other-realm", "amina", sealed, "MD5") is None
    other_key = IdentifierCipher(b"f" * 32, b"h" * 32)
    assert open_digest_secret(other_key, "srhub", "amina", sealed, "MD5") is None


def test_failed_logins_lock_one_user_at_one_address_until_a_success() -> None:
    failures = FailedLogins(limit=2, window_seconds=60)
    failures.failed("Amina", "10.0.0.1")
    assert failures.retry_after("amina", "10.0.0.1") == 0
    failures.failed("amina", "10.0.0.1")
    assert 0 < failures.retry_after("AMINA", "10.0.0.1") <= 61
    assert failures.retry_after("amina", "10.0.0.2") == 0, "another address"
    assert failures.retry_after("baraka", "10.0.0.1") == 0, "another user"
    failures.succeeded("amina", "10.0.0.1")
    assert failures.retry_after("amina", "10.0.0.1") == 0
