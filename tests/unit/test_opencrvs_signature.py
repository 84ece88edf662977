"""OpenCRVS's webhook signature and delivery body, checked against Node itself.

The vectors in ``data/opencrvs_signature_vectors.json`` were computed by Node (the runtime of
OpenCRVS's webhooks service) with its own ``crypto.createHmac`` and ``encodeURIComponent``:
hex HMAC-<alg>(secret, "<alg>:" + encodeURIComponent(body)). Both our verifier (connector) and
the sandbox mock's signer, two separate implementations, must reproduce every one. When node
is on the machine, random bodies are also compared live.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from connectors.base.webhooks import (
    encode_uri_component,
    opencrvs_signature,
    plain_signature,
    verify_signature,
)
from connectors.civil_registry.websub import DeliveryError, event_key, parse_delivery
from sandbox_mocks.civil_registry import webhooks as mock

VECTORS = json.loads(
    (Path(__file__).parent / "data" / "opencrvs_signature_vectors.json").read_text("utf-8")
)["vectors"]
TOPICS = frozenset({"BIRTH_REGISTERED", "DEATH_REGISTERED"})


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['alg']}:{v['body'][:12]!r}")
def test_node_vectors_are_reproduced_by_the_verifier_and_the_mock(vector):
    body = vector["body"].encode("utf-8")
    secret = vector["secret"]
    assert encode_uri_component(vector["body"]) == vector["encoded"]
    assert mock.encode_uri_component(vector["body"]) == vector["encoded"]
    assert opencrvs_signature(secret.encode(), body, vector["alg"]) == vector["header"]
    assert mock.sign(secret, body, vector["alg"]) == vector["header"]
    both = ("sha256", "sha1")
    assert verify_signature("opencrvs", secret.encode(), body, vector["header"], both)


def test_sha1_is_refused_unless_allowed():
    sha1 = next(v for v in VECTORS if v["alg"] == "sha1")
    body, secret = sha1["body"].encode(), sha1["secret"].encode()
    assert not verify_signature("opencrvs", secret, body, sha1["header"])
    assert verify_signature("opencrvs", secret, body, sha1["header"], ("sha256", "sha1"))


def test_the_schemes_are_not_interchangeable_and_tampering_fails():
    body = '{"event":{"hub":{"topic":"BIRTH_REGISTERED"}},"name":"Zoë O\'Neil (née Ábel)"}'
    raw, secret = body.encode(), b"1c2b9e6f-4d1a-4b7e-9c2d-0a1b2c3d4e5f"
    real = opencrvs_signature(secret, raw)
    plain = plain_signature(secret, raw)
    assert real != plain
    assert verify_signature("opencrvs", secret, raw, real)
    assert not verify_signature("opencrvs", secret, raw, plain)
    assert verify_signature("plain-hmac", secret, raw, plain)
    assert not verify_signature("plain-hmac", secret, raw, real)
    assert verify_signature("opencrvs", secret, raw, real.upper().replace("SHA256", "sha256"))
    for header in (
        real[:-1] + ("0" if real[-1] != "0" else "1"),  # one hex digit changed
        real.replace("sha256=", "sha256:"),
        real.removeprefix("sha256="),
        "sha512=" + real.removeprefix("sha256="),
        "",
        None,
    ):
        assert not verify_signature("opencrvs", secret, raw, header)
    assert not verify_signature("opencrvs", secret, raw + b" ", real)
    assert not verify_signature("opencrvs", b"other", raw, real)
    assert not verify_signature("opencrvs", b"", raw, opencrvs_signature(b"", raw))
    latin1 = body.encode("latin-1")  # not UTF-8: OpenCRVS cannot have signed it
    assert not verify_signature("opencrvs", secret, latin1, real)
    with pytest.raises(ValueError, match="unknown signature scheme"):
        verify_signature("jws", secret, raw, real)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed here")
def test_random_unicode_bodies_match_node_live():
    rng = random.Random(7)
    alphabet = [chr(c) for c in (*range(0x20, 0x7F), 0x0A, 0x09, 0xE9, 0x4E2D, 0x0644, 0x1F600)]
    bodies = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(40)]
    script = (
        "const c=require('crypto');let d='';process.stdin.on('data',x=>d+=x);"
        "process.stdin.on('end',()=>{const o=JSON.parse(d).map(b=>'sha256='+"
        "c.createHmac('sha256','k-é').update('sha256:'+encodeURIComponent(b)).digest('hex'));"
        "process.stdout.write(JSON.stringify(o))})"
    )
    done = subprocess.run(
        ["node", "-e", script],
        input=json.dumps(bodies),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    expected = json.loads(done.stdout)
    for body, header in zip(bodies, expected, strict=True):
        assert opencrvs_signature("k-é".encode(), body.encode()) == header
        assert mock.sign("k-é", body.encode()) == header


# --- the body --------------------------------------------------------------------------------


def bundle(composition_id: str | None = "c-1", **extra: object) -> dict:
    entries: list[dict] = []
    if composition_id:
        entries.append({"resource": {"resourceType": "Composition", "id": composition_id}})
    entries.append(
        {
            "resource": {
                "resourceType": "Task",
                "id": "t-1",
                "focus": extra.pop("focus", None),
                "identifier": [
                    {"system": "http://opencrvs.org/specs/id/birth-tracking-id", "value": "B7QW2"}
                ],
            }
        }
    )
    return {"resourceType": "Bundle", "type": "document", "entry": entries, **extra}


def delivery(*bundles: dict, topic: str = "BIRTH_REGISTERED", **top: object) -> bytes:
    body = {
        "timestamp": "2025-01-10T08:15:00.000Z",
        "id": "webhook-1",
        "event": {"hub": {"topic": topic}, "context": list(bundles)},
        **top,
    }
    return json.dumps(body).encode()


def test_a_delivery_names_the_event_from_the_bundle_not_from_its_id():
    parsed = parse_delivery(delivery(bundle("c-1")), TOPICS)
    assert parsed.topic == "BIRTH_REGISTERED" and parsed.record_type == "birth"
    assert parsed.webhook_id == "webhook-1"
    (event,) = parsed.events
    assert event.source_id == "BIRTH_REGISTERED:composition:c-1"
    assert event.bundle_path == "event.context[0]"
    # Another delivery of the same event (later, through another subscription) is the same
    # event with the same content; another event of the same subscription is not.
    again = parse_delivery(
        delivery(bundle("c-1"), timestamp="2025-01-11T00:00:00.000Z", id="webhook-2"), TOPICS
    ).events[0]
    assert (again.source_id, again.content_key) == (event.source_id, event.content_key)
    other = parse_delivery(delivery(bundle("c-2")), TOPICS).events[0]
    assert other.source_id != event.source_id and other.content_key != event.content_key
    changed = parse_delivery(delivery(bundle("c-1", meta={"v": 2})), TOPICS).events[0]
    assert changed.source_id == event.source_id and changed.content_key != event.content_key


def test_event_key_falls_back_from_composition_to_task_focus_tracking_id_and_digest():
    assert event_key(bundle("c-9")) == ("composition", "c-9")
    focused = bundle(None, focus={"reference": "/fhir/Composition/c-7/_history/3"})
    assert event_key(focused) == ("composition", "c-7")
    assert event_key(bundle(None)) == ("tracking_id", "B7QW2")
    bare = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Task", "id": "t"}}]}
    assert event_key(bare) == ("task", "t")
    kind, value = event_key({"resourceType": "Bundle", "entry": []})
    assert kind == "bundle_digest" and len(value) == 64


def test_several_bundles_in_context_are_each_an_event_and_junk_items_are_counted():
    parsed = parse_delivery(delivery(bundle("c-1"), "junk", bundle("c-2")), TOPICS)
    assert [e.bundle_path for e in parsed.events] == ["event.context[0]", "event.context[2]"]
    assert parsed.refused_items == 1


@pytest.mark.parametrize(
    ("raw", "status", "reason"),
    [
        (b"not json", 400, "not JSON"),
        (b"[]", 400, "not a JSON object"),
        (json.dumps({"payload": {"event": {}}}).encode(), 400, 'wrapped in {"payload"'),
        (json.dumps({"event": {"context": []}}).encode(), 400, "topic is missing"),
        (delivery(bundle(), topic="MARRIAGE_REGISTERED"), 422, "not one this connector"),
        (json.dumps({"event": {"hub": {"topic": "BIRTH_REGISTERED"}}}).encode(), 400, "context"),
        (delivery("junk", {"resourceType": "Patient"}), 400, "no FHIR Bundle"),
    ],
)
def test_deliveries_that_cannot_be_routed_say_why(raw, status, reason):
    with pytest.raises(DeliveryError) as refused:
        parse_delivery(raw, TOPICS)
    assert refused.value.status == status and reason in str(refused.value)


def test_webhook_replay_window_on_the_signed_timestamp():
    """A delivery whose signed ``timestamp`` is outside the window is a replay (issue 17)."""
    from datetime import UTC, datetime

    now = datetime(2025, 1, 10, 8, 20, tzinfo=UTC)  # five minutes after the delivery's stamp
    raw = delivery(bundle("c-1"))
    assert parse_delivery(raw, TOPICS, max_age_seconds=600, now=now).events
    with pytest.raises(DeliveryError, match="timestamp") as stale:
        parse_delivery(raw, TOPICS, max_age_seconds=60, now=now)
    assert stale.value.status == 403
    for stamp in ("yesterday", None, "2025-01-10T09:30:00.000Z"):
        with pytest.raises(DeliveryError, match="timestamp"):
            parse_delivery(
                delivery(bundle("c-1"), timestamp=stamp), TOPICS, max_age_seconds=600, now=now
            )
    assert parse_delivery(raw, TOPICS, max_age_seconds=0, now=now).events  # 0: not checked
