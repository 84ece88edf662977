"""Onboarded DCI senders: their signing keys, the callback URIs they registered, and the
senders an operator let in without a signature.

Onboarding is an operator's act (CLI or admin tooling call these functions); a request can
never add a key, a callback URI or an exemption by itself. Callback targets are checked against
the registered base URIs here, so the registry never POSTs personal data to a host nobody
approved. Every decision is logged (who, which sender, never a key's secret part).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.dci.tables import DciSenderKey, DciSenderUri, DciUnsignedSender
from standards.dci import codes
from standards.dci.envelope import EnvelopeError, check_sender_uri
from standards.dci.signature import load_public_key, public_key_base64
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

CALLBACK_PATHS = {
    "on-search": "/registry/on-search",
    "on-subscribe": "/registry/on-subscribe",
    "on-unsubscribe": "/registry/on-unsubscribe",
    "txn-on-status": "/registry/txn/on-status",
    "notify": "/registry/notify",
}

# Last path segments that mark a sender_uri as a full callback URL rather than a base.
_CALLBACK_NAMES = frozenset(path.rsplit("/", 1)[-1] for path in CALLBACK_PATHS.values())


def register_key(
    sessions: sessionmaker[Session], sender_id: str, key_id: str, public_key: str
) -> None:
    """Register (or replace) a sender's ed25519 public key (PEM or Base64 of 32 bytes)."""
    normalised = public_key_base64(load_public_key(public_key))
    with sessions() as session, session.begin():
        row = session.scalar(
            select(DciSenderKey).where(
                DciSenderKey.sender_id == sender_id, DciSenderKey.key_id == key_id
            )
        )
        if row is None:
            session.add(DciSenderKey(sender_id=sender_id, key_id=key_id, public_key=normalised))
        else:
            row.public_key, row.revoked_at = normalised, None
    log.warning("DCI sender %.200s: signing key %.99s registered", sender_id, key_id)


def revoke_key(sessions: sessionmaker[Session], sender_id: str, key_id: str) -> bool:
    with sessions() as session, session.begin():
        row = session.scalar(
            select(DciSenderKey).where(
                DciSenderKey.sender_id == sender_id, DciSenderKey.key_id == key_id
            )
        )
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
    log.warning("DCI sender %.200s: signing key %.99s revoked", sender_id, key_id)
    return True


def active_keys(session: Session, sender_id: str) -> dict[str, Ed25519PublicKey]:
    rows = session.scalars(
        select(DciSenderKey).where(
            DciSenderKey.sender_id == sender_id, DciSenderKey.revoked_at.is_(None)
        )
    ).all()
    return {row.key_id: load_public_key(row.public_key) for row in rows}


def _unsigned_row(session: Session, sender_id: str) -> DciUnsignedSender | None:
    return session.scalar(
        select(DciUnsignedSender)
        .where(DciUnsignedSender.sender_id == sender_id, DciUnsignedSender.revoked_at.is_(None))
        .order_by(DciUnsignedSender.id.desc())
        .limit(1)
    )


def allow_unsigned(
    sessions: sessionmaker[Session], sender_id: str, *, by: str, reason: str
) -> bool:
    """Let ``sender_id`` send requests without a signature; False when it already may.

    This is the only way in for a sender that cannot sign. It does not excuse a signature that
    is present: one that does not verify is refused from every sender.
    """
    if not sender_id.strip() or not reason.strip():
        raise ValueError("a sender id and a reason are needed")
    with sessions() as session, session.begin():
        if _unsigned_row(session, sender_id) is not None:
            return False
        session.add(
            DciUnsignedSender(sender_id=sender_id, allowed_by=by[:200], reason=reason.strip()[:500])
        )
    log.warning(
        "DCI sender %.200s may now send unsigned requests (allowed by %.200s)", sender_id, by
    )
    return True


def revoke_unsigned(sessions: sessionmaker[Session], sender_id: str, *, by: str) -> bool:
    """End ``sender_id``'s exemption from signing; False when it had none."""
    with sessions() as session, session.begin():
        row = _unsigned_row(session, sender_id)
        if row is None:
            return False
        row.revoked_at, row.revoked_by = utcnow(), by[:200]
    log.warning("DCI sender %.200s must sign again (exemption revoked by %.200s)", sender_id, by)
    return True


@dataclass(frozen=True)
class SenderTrust:
    """What the registry holds to authenticate one sender's requests."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    unsigned_allowed: bool = False

    @property
    def onboarded(self) -> bool:
        return bool(self.keys) or self.unsigned_allowed


def sender_trust(session: Session, sender_id: str) -> SenderTrust:
    exempt = _unsigned_row(session, sender_id) is not None
    return SenderTrust(active_keys(session, sender_id), exempt)


class KeyDirectory:
    """Senders' active keys and signing exemptions, read through a short per-process cache.

    Every request needs its sender's keys (to know whether it must be signed, and with which
    key), and they change only when an operator acts, so a busy server should not read them
    from the database per request. A read is trusted for ``ttl`` seconds, absent keys too, so a
    key or an exemption granted or revoked by an operator (the CLI, another process) takes
    effect within ``ttl``. The cache holds at most ``max_senders`` entries, so made-up sender
    ids cannot grow it without bound.
    """

    def __init__(
        self, sessions: sessionmaker[Session], ttl: float, max_senders: int = 10_000
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._max = max_senders
        self._cache: dict[str, tuple[float, SenderTrust]] = {}
        self._lock = threading.Lock()

    def trust(self, sender_id: str) -> SenderTrust:
        now = time.monotonic()
        hit = self._cache.get(sender_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        with self._sessions() as session:
            trust = sender_trust(session, sender_id)
        with self._lock:
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[sender_id] = (now, trust)
        return trust

    def active(self, sender_id: str) -> dict[str, Ed25519PublicKey]:
        return self.trust(sender_id).keys


def senders_overview(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Every sender the registry knows, with its keys, callback bases and exemption: what an
    operator reviews (``srhub dci senders``). Public keys are shown by id only."""
    found: dict[str, dict[str, Any]] = {}

    def entry(sender_id: str) -> dict[str, Any]:
        return found.setdefault(
            sender_id, {"sender_id": sender_id, "keys": [], "callbacks": [], "unsigned": None}
        )

    with sessions() as session:
        for key in session.scalars(select(DciSenderKey).order_by(DciSenderKey.id)):
            entry(key.sender_id)["keys"].append(
                {"key_id": key.key_id, "revoked": key.revoked_at is not None}
            )
        for uri in session.scalars(select(DciSenderUri).order_by(DciSenderUri.id)):
            entry(uri.sender_id)["callbacks"].append(uri.base_uri)
        rows = session.scalars(
            select(DciUnsignedSender)
            .where(DciUnsignedSender.revoked_at.is_(None))
            .order_by(DciUnsignedSender.id)
        )
        for row in rows:
            entry(row.sender_id)["unsigned"] = {
                "allowed_by": row.allowed_by,
                "reason": row.reason,
                "allowed_at": row.allowed_at.isoformat(),
            }
    return [found[key] for key in sorted(found)]


def register_callback_uri(sessions: sessionmaker[Session], sender_id: str, base_uri: str) -> None:
    """Allow callbacks for ``sender_id`` to ``base_uri`` and anything below it."""
    normalised = check_sender_uri(base_uri).rstrip("/")
    with sessions() as session, session.begin():
        exists = session.scalar(
            select(DciSenderUri.id).where(
                DciSenderUri.sender_id == sender_id, DciSenderUri.base_uri == normalised
            )
        )
        if exists is None:
            session.add(DciSenderUri(sender_id=sender_id, base_uri=normalised))
    log.warning("DCI sender %.200s: callbacks allowed to %.300s", sender_id, normalised)


def _below(uri: str, base: str) -> bool:
    target, allowed = urlsplit(uri), urlsplit(base)
    if (target.scheme, target.netloc.lower()) != (allowed.scheme, allowed.netloc.lower()):
        return False
    if target.query or target.fragment or target.username or target.password:
        return False
    segments = target.path.split("/")
    if ".." in segments or "." in segments:
        return False
    base_path = allowed.path.rstrip("/")
    return target.path == base_path or target.path.startswith(base_path + "/")


def callback_url(session: Session, sender_id: str, sender_uri: str | None, action: str) -> str:
    """Where to POST the ``action`` callback, or EnvelopeError(err.sender_uri.invalid).

    ``sender_uri`` may be a full callback URL (ending in ``/on-search``...; its last segment is
    swapped for the one of ``action``, so ``.../on-subscribe`` also yields ``.../notify``) or a
    base to which the spec's path (``/registry/on-search``...) is appended; without one, the
    sender's first registered base is used. Either way the target must lie below a registered base.
    """
    bases = list(
        session.scalars(
            select(DciSenderUri.base_uri)
            .where(DciSenderUri.sender_id == sender_id)
            .order_by(DciSenderUri.id)
        )
    )
    if not bases:
        raise EnvelopeError(
            codes.ERR_SENDER_URI,
            "no callback URI is registered for this sender_id; ask the registry operators",
            http_status=403,
        )
    suffix = CALLBACK_PATHS[action]
    if sender_uri:
        check_sender_uri(sender_uri)
        trimmed = sender_uri.rstrip("/")
        parent, _, last = trimmed.rpartition("/")
        spec_path = next((p for p in CALLBACK_PATHS.values() if trimmed.endswith(p)), None)
        if spec_path is not None:  # <base>/registry/on-search: the spec's layout under a base
            target = trimmed[: -len(spec_path)] + suffix
        elif last in _CALLBACK_NAMES:  # some other layout: swap the last segment
            target = parent + "/" + suffix.rsplit("/", 1)[-1]
        else:
            target = trimmed + suffix
    else:
        target = bases[0] + suffix
    if not any(_below(target, base) for base in bases):
        raise EnvelopeError(
            codes.ERR_SENDER_URI,
            "header.sender_uri is not a callback URI registered for this sender_id",
            http_status=403,
        )
    return target
