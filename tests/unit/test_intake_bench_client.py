"""The intake bench's device client signs requests the way the hub's OpenRosa server checks
them (a client that computed Digest wrongly would measure 401s, not submissions)."""

from __future__ import annotations

import re

from bench.intake import DeviceAuth, digest_nonce, multipart, request_bytes
from hub.openrosa import digest


def test_digest_headers_are_what_the_server_expects_with_a_fresh_count_each() -> None:
    signer = digest.NonceSigner.from_secret(b"k" * 32, 300)
    nonce = signer.issue()
    challenge = digest.challenge("srhub", nonce, "MD5", "/openrosa", False)
    head = b"HTTP/1.1 401 UNAUTHORIZED\r\nWWW-Authenticate: " + challenge.encode()
    assert digest_nonce(head) == nonce
    auth = DeviceAuth("digest", "enumerator", "correct horse battery", "srhub", nonce)
    counts = digest.NonceCounts(300)
    ha1 = digest.ha1("MD5", "enumerator", "srhub", "correct horse battery")
    for expected_nc in (1, 2):
        line = auth.header("POST", "/openrosa/submission?deviceID=x").decode()
        params = dict(re.findall(r'(\w+)="?([^",\r\n]+)"?', line.split(" ", 2)[2]))
        sent = digest.parse_credentials(params)
        assert sent.nc_value == expected_nc and signer.check(sent.nonce) == "fresh"
        wanted = digest.expected_response(
            "MD5",
            ha1,
            nonce=sent.nonce,
            nc=sent.nc,
            cnonce=sent.cnonce,
            qop=sent.qop,
            method="POST",
            uri=sent.uri,
        )
        assert sent.response == wanted
        assert counts.first_use(sent.nonce, sent.nc_value)


def test_a_stale_challenge_renews_the_nonce_and_restarts_the_count() -> None:
    auth = DeviceAuth("digest", "u", "p" * 12, "srhub", "old")
    auth.header("GET", "/x")
    head = b'WWW-Authenticate: Digest realm="srhub", qop="auth", algorithm=MD5, nonce="new"'
    assert auth.renew(head) and auth.nonce == "new" and auth.renewals == 1
    assert "nc=00000001" in auth.header("GET", "/x").decode()
    assert not DeviceAuth("basic", "u", "p", "srhub").renew(head)


def test_a_submission_request_is_one_multipart_part_with_its_length() -> None:
    body = multipart(b"<data/>")
    request = request_bytes("POST", "/openrosa/submission", 8000, None, body)
    head, _, sent = request.partition(b"\r\n\r\n")
    assert sent == body and f"Content-Length: {len(body)}".encode() in head
    assert b'name="xml_submission_file"' in body and b"X-OpenRosa-Version: 1.0" in head
