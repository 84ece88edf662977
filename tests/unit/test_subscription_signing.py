"""Webhook signatures: what a receiver accepts and what it must refuse (tampering, replay,
wrong secret), plus the body-only signature the sandbox's program MIS checks."""

from __future__ import annotations

import pytest

from hub.subscriptions.signing import SignatureError, signature_headers, verify
from sandbox_mocks.programs.notifications import check_signature

SECRET = b"shared-secret-for-tests"
BODY = b'{"id":"1","type":"org.socialregistry.person.died"}'


def test_a_fresh_genuine_request_verifies():
    headers = signature_headers(SECRET, BODY, timestamp=1_700_000_000)
    assert verify(SECRET, BODY, headers, now=1_700_000_010) == 1_700_000_000


@pytest.mark.parametrize(
    ("body", "secret", "now", "why"),
    [
        (BODY + b" ", SECRET, 1_700_000_010, "does not match"),
        (BODY, b"another-secret", 1_700_000_010, "does not match"),
        (BODY, SECRET, 1_700_000_000 + 301, "replay"),
        (BODY, SECRET, 1_700_000_000 - 301, "replay"),
    ],
)
def test_tampered_foreign_or_stale_requests_are_refused(body, secret, now, why):
    headers = signature_headers(SECRET, BODY, timestamp=1_700_000_000)
    with pytest.raises(SignatureError, match=why):
        verify(secret, body, headers, now=now)


def test_a_replayed_body_with_a_new_timestamp_fails_because_the_time_is_signed():
    headers = signature_headers(SECRET, BODY, timestamp=1_700_000_000)
    headers["X-SR-Timestamp"] = "1700000500"
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, BODY, headers, now=1_700_000_500)


def test_missing_or_malformed_headers_are_refused():
    with pytest.raises(SignatureError, match="missing"):
        verify(SECRET, BODY, {})
    headers = signature_headers(SECRET, BODY)
    headers["X-SR-Timestamp"] = "yesterday"
    with pytest.raises(SignatureError, match="Unix seconds"):
        verify(SECRET, BODY, headers)


def test_the_program_mis_mock_accepts_the_body_signature():
    headers = signature_headers(SECRET, BODY)
    check = check_signature(SECRET.decode(), BODY, headers, ("X-Hub-Signature-256",))
    assert check.verified is True
    assert check_signature("wrong", BODY, headers, ("X-Hub-Signature-256",)).verified is False
