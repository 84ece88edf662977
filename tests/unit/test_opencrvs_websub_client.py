"""The OpenCRVS subscription handshake, answer by answer, for one client (``responses``).

Each answer is the one OpenCRVS's code gives (``packages/webhooks`` ``subscribeWebhooksHandler``
and ``packages/auth`` ``oauthToken``); the integration tests run the same handshake against the
sandbox mock over real HTTP. What is checked here: the token request's form, the subscribe
body, how each answer becomes a per-topic state with a reason, that one topic's failure never
stops the other, and that the connector's health says so.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.base import ConnectorContext, FakeClock
from connectors.base.errors import SettingsError
from connectors.base.resilience import PartnerLimiters
from connectors.base.testing import CollectingPublisher
from connectors.civil_registry import CivilRegistryConnector

HOOKS = "http://crvs.test/webhooks"
TOKEN = "http://auth.crvs.test/token"
CALLBACK = "http://hub.test/connectors/civil_registry/webhook"
SHA_SECRET = "1c2b9e6f-4d1a-4b7e-9c2d-0a1b2c3d4e5f"
BIRTH, DEATH = "BIRTH_REGISTERED", "DEATH_REGISTERED"


def jwt_with_exp(exp: float) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'sub': 'sys-1', 'exp': exp})}.c2lnbmF0dXJl"


def settings(**extra: Any) -> dict[str, Any]:
    base = {
        "base_url": "http://crvs.test",
        "auth_url": "http://auth.crvs.test",
        "client_id": "client-1",
        "client_secret": "client-secret-1",
        "webhook_secret": SHA_SECRET,
        "callback_base_url": "http://hub.test/connectors/civil_registry",
        "dci_callback_token": "t" * 20,
        "resubscribe_initial_seconds": 3600,
        "resilience": {"max_attempts": 2, "initial_backoff_seconds": 0, "jitter_seconds": 0},
    }
    base.update(extra)
    return base


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def connector(clock: FakeClock) -> Iterator[CivilRegistryConnector]:
    context = ConnectorContext(
        "civil_registry", CollectingPublisher(), clock=clock, limiters=PartnerLimiters(clock)
    )
    made = CivilRegistryConnector(settings(), context)
    yield made
    made.close()


def token_answer(clock: FakeClock, lifetime: float = 600) -> None:
    exp = clock.now().timestamp() + lifetime
    responses.add(
        responses.POST,
        TOKEN,
        json={"access_token": jwt_with_exp(exp), "token_type": "Bearer"},
        headers={"Cache-Control": "no-store"},
    )


def no_existing() -> None:
    responses.add(responses.GET, HOOKS, json={"entries": []})


def accept_after_challenge(connector: CivilRegistryConnector, status: int = 202) -> Any:
    """OpenCRVS calls our challenge view before it answers 202 with an empty body."""

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        topic = json.loads(request.body)["hub"]["topic"]
        assert connector.subscriptions.confirm(topic)  # what the GET challenge view does
        connector.challenge_answered(topic)
        return status, {}, ""

    return answer


def denied(topic: str, reason: str) -> dict[str, Any]:
    return {"hub": {"mode": "denied", "topic": topic, "reason": reason}}


def posts() -> list[Any]:
    return [
        c.request for c in responses.calls if c.request.url == HOOKS and c.request.method == "POST"
    ]


@responses.activate
def test_202_after_the_challenge_makes_each_topic_active(connector, clock):
    token_answer(clock)
    no_existing()
    responses.add_callback(responses.POST, HOOKS, callback=accept_after_challenge(connector))
    assert connector.subscribe() == {BIRTH: "active", DEATH: "active"}

    token_call = responses.calls[0].request
    assert token_call.method == "POST" and token_call.body in (None, b"", "")
    assert parse_qs(urlsplit(token_call.url).query) == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-1"],
        "client_secret": ["client-secret-1"],
    }
    sent = posts()
    assert [json.loads(r.body) for r in sent] == [
        {"hub": {"callback": CALLBACK, "mode": "subscribe", "topic": t, "secret": SHA_SECRET}}
        for t in (BIRTH, DEATH)
    ]
    assert all(r.headers["Authorization"].startswith("Bearer ey") for r in sent)
    assert connector.system_token is not None and connector.system_token.fetched == 1  # cached
    snapshot = connector.status.snapshot()
    assert snapshot["state"] == "up" and snapshot["problems"] == []
    assert snapshot["subscriptions"]["websub:BIRTH_REGISTERED"]["verified"] == "yes"


@responses.activate
def test_one_topic_denied_does_not_stop_the_other_and_health_says_why(connector, clock):
    token_answer(clock)
    no_existing()
    responses.add(responses.POST, HOOKS, json=denied(BIRTH, "hub.secret is incorrect"), status=400)
    responses.add_callback(responses.POST, HOOKS, callback=accept_after_challenge(connector))
    assert connector.subscribe() == {BIRTH: "refused", DEATH: "active"}
    snapshot = connector.status.snapshot()
    assert snapshot["state"] == "degraded"
    birth = snapshot["subscriptions"]["websub:BIRTH_REGISTERED"]
    assert birth["state"] == "refused"
    assert birth["reason"] == "OpenCRVS denied the subscription: hub.secret is incorrect"
    assert snapshot["problems"] == [
        "websub:BIRTH_REGISTERED: refused (OpenCRVS denied the subscription: hub.secret is "
        "incorrect)"
    ]
    assert connector.websub.waiting_retries() == []  # a refusal waits for an operator
    assert SHA_SECRET not in json.dumps(snapshot) and "client-secret-1" not in json.dumps(snapshot)


@responses.activate
def test_a_failed_callback_check_is_retried_later_and_says_whether_we_saw_it(connector, clock):
    token_answer(clock)
    no_existing()
    responses.add(responses.POST, HOOKS, body="Subscription callback check failed", status=400)
    responses.add(responses.POST, HOOKS, status=503)
    responses.add(responses.POST, HOOKS, status=503)
    assert connector.subscribe() == {BIRTH: "failed", DEATH: "failed"}
    subs = connector.status.snapshot()["subscriptions"]
    assert "its challenge never reached " + CALLBACK in subs["websub:BIRTH_REGISTERED"]["reason"]
    assert "http_503" in subs["websub:DEATH_REGISTERED"]["reason"]
    assert connector.websub.waiting_retries() == [BIRTH, DEATH]
    assert connector.describe()["websub"]["pending"] == []  # nothing left answerable


@responses.activate
def test_an_expired_token_is_renewed_once_and_the_call_repeated(connector, clock):
    token_answer(clock)
    token_answer(clock)
    no_existing()
    unauthorized = {"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"}
    responses.add(responses.POST, HOOKS, json=unauthorized, status=401)
    responses.add_callback(responses.POST, HOOKS, callback=accept_after_challenge(connector))
    assert connector.websub_subscribe(CALLBACK) == {BIRTH: "active"} | {DEATH: "active"}
    assert connector.system_token is not None and connector.system_token.fetched == 2


@responses.activate
def test_tokens_are_renewed_before_they_expire(connector, clock):
    token_answer(clock, lifetime=120)
    token_answer(clock, lifetime=400)
    token = connector.system_token
    assert token is not None
    first = token.bearer()
    clock.advance(30)
    assert token.bearer() == first and token.fetched == 1
    clock.advance(31)  # within a minute of its exp
    assert token.bearer() != first and token.fetched == 2


@responses.activate
def test_refused_client_credentials_refuse_every_topic_without_calling_webhooks(connector):
    refusal = {
        "error": "invalid_client",
        "error_description": "Invalid client id or secret",
        "error_uri": "Refer to https://documentation.opencrvs.org/...",
    }
    for _ in range(3):
        responses.add(responses.POST, TOKEN, json=refusal, status=401)
    assert connector.subscribe() == {BIRTH: "refused", DEATH: "refused"}
    reason = connector.status.snapshot()["subscriptions"]["websub:DEATH_REGISTERED"]["reason"]
    assert "invalid_client: Invalid client id or secret" in reason
    assert "check client_id and client_secret" in reason
    assert posts() == []


@responses.activate
def test_existing_subscriptions_are_reused_and_copies_removed(connector, clock):
    token_answer(clock)
    entries = [
        {"id": "w-1", "callback": CALLBACK, "topic": BIRTH},
        {"id": "w-2", "callback": CALLBACK, "topic": BIRTH},
        {"id": "w-3", "callback": "http://old.hub/webhook", "topic": DEATH},
    ]
    responses.add(responses.GET, HOOKS, json={"entries": entries})
    responses.add(responses.DELETE, HOOKS + "/w-2", status=204)
    responses.add_callback(responses.POST, HOOKS, callback=accept_after_challenge(connector))
    assert connector.subscribe() == {BIRTH: "active", DEATH: "active"}
    assert [json.loads(r.body)["hub"]["topic"] for r in posts()] == [DEATH]  # only the new one
    birth = connector.status.snapshot()["subscriptions"]["websub:BIRTH_REGISTERED"]
    assert birth["webhook_id"] == "w-1" and birth["reused"] == "yes"
    assert any(c.request.method == "DELETE" for c in responses.calls)


@responses.activate
def test_plain_websub_hub_waits_for_its_challenge_then_times_out(clock):
    context = ConnectorContext(
        "civil_registry", CollectingPublisher(), clock=clock, limiters=PartnerLimiters(clock)
    )
    dropped = ("client_id", "client_secret", "auth_url", "webhook_secret")
    given = {k: v for k, v in settings().items() if k not in dropped}
    plain = CivilRegistryConnector(
        given | {"signature_scheme": "plain-hmac", "pending_ttl_seconds": 60}, context
    )
    try:
        responses.add(responses.POST, HOOKS, json={"id": "sub-1"}, status=202)
        assert plain.subscribe() == {BIRTH: "awaiting_confirmation", DEATH: "awaiting_confirmation"}
        assert "Authorization" not in posts()[0].headers  # no system client here
        assert plain.generated_secrets == ["webhook_secret"]  # allowed in plain-hmac only
        assert plain.subscriptions.confirm(BIRTH)
        plain.challenge_answered(BIRTH)
        clock.advance(61)
        snapshot = plain.status.snapshot()
        assert snapshot["subscriptions"]["websub:BIRTH_REGISTERED"]["state"] == "active"
        death = snapshot["subscriptions"]["websub:DEATH_REGISTERED"]
        assert death["state"] == "unconfirmed" and "never verified" in death["reason"]
        assert snapshot["state"] == "degraded"
    finally:
        plain.close()


def test_opencrvs_scheme_refuses_to_start_without_what_opencrvs_issued():
    context = ConnectorContext("civil_registry", CollectingPublisher(), limiters=PartnerLimiters())
    incomplete = {
        k: v
        for k, v in settings().items()
        if k not in ("webhook_secret", "client_secret", "auth_url")
    }
    with pytest.raises(SettingsError) as refused:
        CivilRegistryConnector(incomplete, context)
    text = str(refused.value)
    assert "$.webhook_secret: is required with signature_scheme" in text
    assert "shaSecret" in text and "$.client_secret" in text and "$.auth_url" in text
    # Without WebSub (DCI only) nothing of it is needed, and nothing is generated either.
    dci_only = CivilRegistryConnector(incomplete | {"subscriptions": ["dci"]}, context)
    assert dci_only.webhook_secret == "" and "webhook_secret" not in dci_only.generated_secrets
    dci_only.close()


def test_token_expiry_is_read_from_the_jwt():
    from connectors.civil_registry.opencrvs_auth import token_expiry

    moment = FakeClock().now() + timedelta(minutes=10)
    assert token_expiry(jwt_with_exp(moment.timestamp())) == moment
    assert token_expiry("not-a-jwt") is None
    assert token_expiry("a.b.c") is None


@responses.activate
def test_without_a_feed_nothing_is_polled(clock):
    context = ConnectorContext(
        "civil_registry", CollectingPublisher(), clock=clock, limiters=PartnerLimiters(clock)
    )
    given = {k: v for k, v in settings().items() if k != "base_url"}
    with pytest.raises(SettingsError, match=r"\$\.fhir_feed_url: is required"):
        CivilRegistryConnector(
            given | {"webhooks_url": HOOKS, "dci_base_url": "http://crvs.test/dci"}, context
        )
    quiet = CivilRegistryConnector(
        given | {"webhooks_url": HOOKS, "dci_base_url": "http://crvs.test/dci", "feed": False},
        context,
    )
    try:
        result = quiet.poll("cursor-7")
        assert (list(result.records), result.next_checkpoint, result.more) == (
            [],
            "cursor-7",
            False,
        )
        assert len(responses.calls) == 0  # OpenCRVS has no feed: nothing was asked
    finally:
        quiet.close()
