"""Who sent a DCI request: the rule every request passes before anything else is read.

- A sender signs every request with an ed25519 key registered for it (``srhub dci add-key``).
- A sender an operator let in without a signature (``srhub dci allow-unsigned``, stored,
  logged and revocable) may leave ``signature`` out, or empty.
- A signature that is present must verify, whoever sends it: a sender with no key has nothing
  it could be verified with, so its signature is refused too, never ignored.
- A sender that is neither is not onboarded: refused, telling it how to get onboarded.

Pure: the sender's keys and exemption come in as a ``SenderTrust``; the errors carry the spec's
codes and an HTTP status, rendered by the server like every other refusal.
"""

from __future__ import annotations

from hub.dci.senders import SenderTrust
from standards.dci import codes
from standards.dci.envelope import EnvelopeError, ParsedEnvelope
from standards.dci.signature import SignatureError, parse_signature, verify_envelope


def authenticate(
    envelope: ParsedEnvelope,
    trust: SenderTrust,
    clock_skew_seconds: int,
    max_lifetime_seconds: int | None = None,
) -> bool:
    """Raise EnvelopeError unless the request is authenticated; True when it was signed.
    A signature whose ``expires`` lies more than ``max_lifetime_seconds`` after its
    ``created`` is refused (``settings.dci.max_signature_lifetime_seconds``)."""
    text = envelope.signature
    present = isinstance(text, str) and bool(text.strip())
    if not trust.onboarded:
        raise EnvelopeError(
            codes.ERR_SENDER_ID,
            f"sender_id {envelope.sender_id[:80]!r} is not onboarded here: no signing key is "
            "registered for it. Send your ed25519 public key and key id to the registry's "
            "operators (they run `srhub dci add-key`), then sign every request",
            http_status=403,
        )
    if not present:
        if trust.keys:
            raise EnvelopeError(
                codes.ERR_SIGNATURE_MISSING,
                "this sender_id has a registered signing key: every request must carry a "
                "signature made with it",
                http_status=401,
            )
        return False  # an operator's explicit exemption
    if not trust.keys:
        raise EnvelopeError(
            codes.ERR_SIGNATURE_INVALID,
            "the signature cannot be verified: no signing key is registered for this "
            "sender_id. It may send unsigned requests: leave signature out (or empty), or "
            "have its key registered",
            http_status=401,
        )
    try:
        params = parse_signature(text)
        if params.sender_id != envelope.sender_id:
            raise SignatureError(
                codes.ERR_SIGNATURE_INVALID, "the signature's kidId names another sender"
            )
        key = trust.keys.get(params.key_id)
        if key is None:
            raise SignatureError(
                codes.ERR_SIGNATURE_INVALID, "the signature's key id is not registered"
            )
        verify_envelope(
            text,
            envelope.header,
            envelope.message,
            key,
            clock_skew_seconds=clock_skew_seconds,
            max_lifetime_seconds=max_lifetime_seconds,
        )
    except SignatureError as error:
        raise EnvelopeError(error.code, error.message, http_status=401) from None
    return True
