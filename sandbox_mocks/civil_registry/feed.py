"""Pull feed of registered events: ``GET /feed?since=<cursor>&limit=N``.

Why: not every integration can receive webhooks; many civil registries offer a "changes since"
feed instead. The cursor is opaque (clients must not compute it) and stable: following ``next``
from the empty cursor visits every registered event exactly once, in registration order, and a
client that stores the cursor can resume after a crash.

Answer: ``{"entries": [{"id", "topic", "kind", "registration_number", "registration_date",
"bundle"}], "next": "<cursor>", "has_more": bool}``. ``next`` is returned even when the page is
empty, so polling with it is always safe. A malformed cursor or limit is a 400 with the reason.
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, jsonify, request

from sandbox_mocks.civil_registry.store import EventStore

CURSOR_PREFIX = "crvs-feed-v1:"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The sequence number inside a cursor; ``ValueError`` if it is not one of ours."""
    if len(cursor) > 64:
        raise ValueError("cursor too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("cursor is not a cursor this feed issued") from None
    if not raw.startswith(CURSOR_PREFIX) or not raw[len(CURSOR_PREFIX) :].isdigit():
        raise ValueError("cursor is not a cursor this feed issued")
    return int(raw[len(CURSOR_PREFIX) :])


def feed_blueprint(store: EventStore) -> Blueprint:
    bp = Blueprint("crvs_feed", __name__)

    @bp.get("/feed")
    def feed() -> Response | tuple[Response, int]:
        since = request.args.get("since", "")
        limit_text = request.args.get("limit", str(DEFAULT_LIMIT))
        try:
            seq = decode_cursor(since) if since else 0
        except ValueError as exc:
            return jsonify({"error": {"code": "bad_cursor", "message": str(exc)}}), 400
        if seq > store.counts()["released"]:
            message = "cursor points past the end of this feed"
            return jsonify({"error": {"code": "bad_cursor", "message": message}}), 400
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            message = f"limit must be an integer 1..{MAX_LIMIT}"
            return jsonify({"error": {"code": "bad_limit", "message": message}}), 400
        page, more = store.after(seq, int(limit_text))
        last = page[-1].seq if page else seq
        return jsonify(
            {
                "entries": [
                    {
                        "id": item.event_id,
                        "topic": item.topic,
                        "kind": item.event.kind,
                        "registration_number": item.event.registration_number,
                        "registration_date": item.event.registration_date.isoformat(),
                        "bundle": item.bundle,
                    }
                    for item in page
                ],
                "next": encode_cursor(last),
                "has_more": more,
            }
        )

    return bp
