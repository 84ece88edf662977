"""The DCI server under test, a signing sender, a callback receiver and body checks, shared by
the DCI integration tests.

Every answer and every callback is validated against our own DCI schemas (always) and against
the spec's OpenAPI files when they are available (``SRHUB_DCI_SPEC_DIR``, see
``standards.dci.openapi``; kept outside the repo). With the spec present, every request the
tests send that the spec accepts must also pass our request schemas. Every signature the hub
sends is verified here independently (ed25519 over our own rebuild of the signing string).
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import random
import re
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from hub.api import create_app
from hub.api.dci import close_app
from hub.auth.tokens import issue_token
from hub.dci import senders
from hub.settings import load_settings
from registry_core.service import Source
from standards.dci import openapi, validation
from standards.dci.envelope import request_header
from standards.dci.signature import public_key_base64, sign_envelope

SENDER = "spmis.example.org"
KEY_ID = "k1"
TODAY = date.today()


# --------------------------------------------------------------------------- helpers

SPEC = openapi.available()  # raises when SRHUB_DCI_SPEC_DIR names a folder without the files

# Spec path of each endpoint these tests post to (the unknown ones are not validated).
REQUEST_PATHS = {
    name: "/registry/" + name
    for name in (
        "search",
        "sync/search",
        "subscribe",
        "unsubscribe",
        "txn/status",
        "sync/txn/status",
    )
}


def check_answer(path: str, body: Any) -> None:
    """A body the hub sent with a header: our schema always, the spec's too when present."""
    problems = validation.answer_problems(path, body)
    assert problems == [], problems
    if SPEC:
        problems = openapi.answer_problems(path, body)
        assert problems == [], problems


def check_ack_body(body: Any) -> None:
    problems = validation.ack_problems(body)
    assert problems == [], problems
    if SPEC:
        problems = openapi.ack_problems(body)
        assert problems == [], problems


def check_errors_body(body: Any) -> None:
    problems = validation.http_error_problems(body)
    assert problems == [], problems
    if SPEC:
        problems = openapi.http_error_problems(body)
        assert problems == [], problems


def check_request_agreement(path: str, body: Any) -> None:
    """What the spec accepts (with its documented relaxation), our request schema accepts."""
    if SPEC and not openapi.request_problems(path, body):
        assert validation.request_problems(path, body) == [], (path, body)


def born(years: int, days: int = 10) -> str:
    return (TODAY.replace(year=TODAY.year - years) - timedelta(days=days)).isoformat()


def household(area: str, head: tuple[str, str, str, int], others: list[tuple]) -> dict:
    """head/others: (given, family, sex, age[, nid])."""

    def person(spec: tuple, relationship: str) -> dict:
        item = {
            "given_name": spec[0],
            "family_name": spec[1],
            "sex": spec[2],
            "birth_date": born(spec[3]),
            "relationship": relationship,
        }
        if len(spec) > 4:
            item["identifiers"] = [{"system": "national_id", "value": spec[4]}]
        return item

    return {
        "admin_area_code": area,
        "address": f"{area} main road",
        "members": [person(head, "head")] + [person(o, "child") for o in others],
    }


class Receiver:
    """A real HTTP server on 127.0.0.1:<ephemeral> that records DCI callbacks."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.gate = threading.Event()  # cleared: callbacks wait (to hold the hub's workers busy)
        self.gate.set()
        self.server = make_server("127.0.0.1", 0, self._app)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @Request.application
    def _app(self, request: Request) -> Response:
        self.gate.wait(10)
        self.received.put((request.path, json.loads(request.get_data(as_text=True))))
        body = {
            "message": {
                "ack_status": "ACK",
                "timestamp": "2025-01-01T00:00:00Z",
                "correlation_id": "x",
            }
        }
        return Response(json.dumps(body), mimetype="application/json")

    def next(self, timeout: float = 10.0) -> tuple[str, dict]:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.thread.join(5)


def verify_hub_signature(body: dict, public_pem: bytes) -> None:
    """Independent check: rebuild the signing string and verify with the hub's public key."""
    params = dict(re.findall(r'([A-Za-z]+)="([^"]*)"', body["signature"]))
    assert params["algorithm"] == "ed25519"
    assert params["headers"] == "(created) (expires) digest"
    assert params["kidId"].startswith("social-registry|") and params["kidId"].endswith("|ed25519")
    canonical = json.dumps(
        {"header": body["header"], "message": body.get("message")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    digest = base64.b64encode(hashlib.blake2b(canonical, digest_size=64).digest()).decode()
    signing = (
        f"(created): {params['created']}\n(expires): {params['expires']}\n"
        f"digest: BLAKE-512={digest}"
    ).encode()
    public = serialization.load_pem_private_key(public_pem, password=None).public_key()
    public.verify(base64.b64decode(params["signature"]), signing)  # raises if invalid


class Dci:
    """The app under test, a signing sender and helpers to talk DCI to it."""

    def __init__(
        self,
        db_url: str,
        tmp_path: Path,
        extra: dict | None = None,
        roles: tuple[str, ...] = ("admin",),
        program: str | None = None,
    ) -> None:
        """``roles``/``program``: the caller's credential (an admin reads every record; the
        consent tests pass a program's)."""
        self.settings = load_settings(
            env={},
            database_url=db_url,
            data_dir=tmp_path,
            extra={"dci": extra or {}},
            # The callback receiver runs on loopback: allowed explicitly, as an operator would.
            outbound={"allow_hosts": ["127.0.0.1"]},
        )
        self.app = create_app(self.settings)
        self.runtime = self.app.extensions["srhub_runtime"]
        self.runtime.registry.ensure_identifier_systems()
        self.client = self.app.test_client()
        self.key = Ed25519PrivateKey.generate()
        self.headers = self.auth(*roles, program=program)
        self.receiver = Receiver()
        senders.register_key(
            self.runtime.sessions, SENDER, KEY_ID, public_key_base64(self.key.public_key())
        )
        senders.register_callback_uri(self.runtime.sessions, SENDER, self.receiver.base)

    def auth(self, *roles: str, program: str | None = None) -> dict[str, str]:
        token = issue_token(self.settings, subject="spmis", roles=list(roles), program=program)
        return {"Authorization": f"Bearer {token}"}

    def close(self) -> None:
        server = self.app.extensions.get("srhub_dci")
        close_app(self.app)
        assert "srhub_dci" not in self.app.extensions
        if server is not None:
            assert server.outgoing_problems == []
        self.receiver.close()
        self.runtime.close()

    def hub_key_pem(self) -> bytes:
        return (Path(self.settings.data_dir) / "dci-signing-key.pem").read_bytes()

    def envelope(self, action: str, message: dict, /, *, sign: bool = True, **header: Any) -> dict:
        count = header.pop("total_count", None)
        if count is None:
            items = message.get("search_request") or message.get("subscribe_request") or [1]
            count = len(items) if isinstance(items, list) else 1
        head = request_header(action, sender_id=SENDER, total_count=count)
        head.update(header)
        body = {"header": head, "message": message}
        if sign:
            body["signature"] = sign_envelope(
                head, message, self.key, sender_id=SENDER, key_id=KEY_ID
            )
        return body

    def post(self, path: str, body: Any, **kwargs: Any):
        kwargs.setdefault("headers", self.headers)
        if path in REQUEST_PATHS:
            check_request_agreement(REQUEST_PATHS[path], body)
        if isinstance(body, dict | list):
            return self.client.post(f"/dci/registry/{path}", json=body, **kwargs)
        return self.client.post(f"/dci/registry/{path}", data=body, **kwargs)

    def add(self, record: dict, score: float | None = None) -> dict:
        created = self.runtime.registry.register_household(record, Source("registry_staff"))
        if score is not None:
            self.runtime.registry.record_eligibility_score(
                created.record["id"], "pmt-2025", score, {}
            )
        return created.record


def search_message(*criteria: dict, refs: list[str] | None = None) -> dict:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "transaction_id": "txn-" + str(random.randrange(10**9)),
        "search_request": [
            {
                "reference_id": (refs or [f"ref-{i}" for i in range(len(criteria))])[i],
                "timestamp": now,
                "search_criteria": c,
            }
            for i, c in enumerate(criteria)
        ],
    }


def check_sync(response, path: str = "/registry/sync/search") -> dict:
    assert response.status_code < 500
    body = response.get_json()
    check_answer(path, body)
    return body


def check_ack(response) -> dict:
    assert response.status_code < 500
    body = response.get_json()
    check_ack_body(body)
    if response.status_code in (401, 403):
        check_errors_body(body)
    return body


def numbers(body: dict, index: int = 0) -> list[str]:
    item = body["message"]["search_response"][index]
    return [r["group_identifier"][0]["identifier_value"] for r in item["data"]["reg_records"]]


def idtype(dci: Dci, /, *, sign: bool = True, **header: Any) -> dict:
    message = search_message(
        {"query_type": "idtype-value", "query": {"type": "UIN", "value": "1111111111"}}
    )
    return dci.envelope("search", message, sign=sign, **header)


def seed_population(dci: Dci) -> dict[str, dict]:
    """Four households in two regions, three with a poverty score."""
    return {
        "otieno": dci.add(
            household(
                "R01-D01",
                ("Amina", "Otieno", "female", 40, "1111111111"),
                [("Cleo", "Otieno", "female", 12), ("Dan", "Otieno", "male", 8)],
            ),
            score=2.1,
        ),
        "kamau": dci.add(
            household("R01-D02", ("Peter", "Kamau", "male", 67, "2222222222"), []), score=4.5
        ),
        "wanjiru": dci.add(
            household(
                "R02-D01",
                ("Grace", "Wanjiru", "female", 30, "3333333333"),
                [("Eve", "Wanjiru", "female", 3)],
            ),
            score=1.2,
        ),
        "odhiambo": dci.add(
            household(
                "R02-D02",
                ("Tom", "Odhiambo", "male", 52, "4444444444"),
                [
                    ("Ann", "Odhiambo", "female", 50),
                    ("Joy", "Odhiambo", "female", 20),
                    ("Sam", "Odhiambo", "male", 17),
                ],
            ),
        ),
    }


def check_problem(response: Any, code: str) -> dict:
    """A refusal: the HTTP status, the spec's ``errors`` and the RFC 9457 members agree, and a
    DCI body rides along (an ``ERR`` ack, a ``rjct`` header, or a top-level message text)."""
    body = response.get_json()
    assert body["status"] == response.status_code, body
    assert body["code"] == code and body["errors"][0]["code"] == code, body
    assert body["title"] and body["detail"] == body["errors"][0]["message"], body
    assert body["type"] == "about:blank"
    check_errors_body(body)
    message = body.get("message")
    if isinstance(message, dict):  # async: the ERR acknowledgement
        check_ack_body(body)
        assert message["ack_status"] in ("ERR", "NACK") and message["error"]["code"] == code
    elif "header" in body:  # sync: the signed rjct answer
        assert body["header"]["status"] == "rjct"
    else:
        assert message == body["detail"]
    return body
