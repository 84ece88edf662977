"""Rotating a webhook subscription's secret with an overlap window, over real databases:
``POST /api/v1/subscriptions/{code}/secret`` (owner or admin; generated secret shown once;
validation), deliveries signed with both secrets during the window, each signature verifiable
with its own secret by the hub's verifier and the sandbox program MIS mock, only the new one
after the window."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from hub.subscriptions.secret_rotation import signing_secrets
from hub.subscriptions.signing import (
    BODY_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    signature_headers,
    verify,
)
from hub.subscriptions.tables import Subscription
from sandbox_mocks.programs.notifications import check_signature

OLD = "old-secret-0123456789"
BODY = b'{"type": "household.created"}'


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path, outbound={"allow_hosts": ["127.0.0.1"]}
    )
    app = create_app(settings)
    runtime = app.extensions["srhub_runtime"]

    def auth(*roles: str, program: str | None = None) -> dict:
        token = issue_token(settings, subject="tester", roles=list(roles), program=program)
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.runtime = runtime  # type: ignore[attr-defined]
    created = client.post(
        "/api/v1/subscriptions",
        json={
            "code": "cash-hooks",
            "event_types": ["household.*"],
            "channel": "webhook",
            "target": "http://127.0.0.1:9/hook",
            "purpose": "cash_transfer",
            "secret": OLD,
        },
        headers=auth("program", program="cash"),
    )
    assert created.status_code == 201, created.get_json()
    yield client
    runtime.close()


def _row(api) -> Subscription:
    with api.runtime.sessions() as session:
        return session.scalars(select(Subscription)).one()


def _signed_now(api, at: datetime) -> dict[str, str]:
    secrets_now = signing_secrets(api.runtime.cipher, _row(api), at)
    return signature_headers(secrets_now, BODY, timestamp=int(at.timestamp()))


def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(api) -> None:
    answer = api.post(
        "/api/v1/subscriptions/cash-hooks/secret",
        json={},
        headers=api.auth("program", program="cash"),
    )
    assert answer.status_code == 200, answer.get_json()
    doc = answer.get_json()
    new = doc["secret"]  # generated, shown once
    assert len(new) >= 32 and new != OLD
    until = datetime.fromisoformat(doc["previous_secret_until"].replace("Z", "+00:00"))
    rotated_at = until - timedelta(hours=24)  # the default overlap: 24 h
    shown = api.get("/api/v1/subscriptions/cash-hooks", headers=api.auth("admin")).get_json()
    assert "secret" not in shown and shown["previous_secret_until"] == doc["previous_secret_until"]

    during = rotated_at + timedelta(hours=23)
    headers = _signed_now(api, during)
    assert len(headers[SIGNATURE_HEADER].split()) == 2
    assert len(headers[BODY_SIGNATURE_HEADER].split()) == 2
    for secret in (OLD, new):  # a receiver holding either secret verifies
        verify(secret.encode(), BODY, headers, now=during.timestamp())
        check = check_signature(secret, BODY, headers)
        assert check.verified is True, check.reason
    with pytest.raises(SignatureError):
        verify(b"someone-elses-secret", BODY, headers, now=during.timestamp())
    assert check_signature("someone-elses-secret", BODY, headers).verified is False

    after = until + timedelta(seconds=1)
    headers = _signed_now(api, after)
    assert len(headers[SIGNATURE_HEADER].split()) == 1
    verify(new.encode(), BODY, headers, now=after.timestamp())
    assert check_signature(new, BODY, headers).verified is True
    with pytest.raises(SignatureError):
        verify(OLD.encode(), BODY, headers, now=after.timestamp())
    assert check_signature(OLD, BODY, headers).verified is False


def test_a_given_secret_without_overlap_replaces_the_old_at_once(api) -> None:
    given = "brand-new-secret-0123456789"
    answer = api.post(
        "/api/v1/subscriptions/cash-hooks/secret",
        json={"secret": given, "overlap_seconds": 0},
        headers=api.auth("admin"),
    )
    assert answer.status_code == 200, answer.get_json()
    assert "secret" not in answer.get_json()  # the caller chose it: not echoed
    assert answer.get_json()["previous_secret_until"] is None
    now = datetime.now().astimezone()
    assert signing_secrets(api.runtime.cipher, _row(api), now) == [given.encode()]


def test_rotation_is_refused_to_others_and_for_bad_input(api) -> None:
    path = "/api/v1/subscriptions/cash-hooks/secret"
    other = api.post(path, json={}, headers=api.auth("program", program="food"))
    assert other.status_code == 404  # another program's subscription is not shown to exist
    auditor = api.post(path, json={}, headers=api.auth("auditor"))
    assert auditor.status_code == 403
    assert api.post(path, json={}).status_code == 401
    cash = api.auth("program", program="cash")
    for bad in (
        {"secret": "short"},
        {"overlap_seconds": -1},
        {"overlap_seconds": 31 * 24 * 3600},
        {"overlap_seconds": "1h"},
        {"unknown": 1},
    ):
        refused = api.post(path, json=bad, headers=cash)
        assert refused.status_code == 422, (bad, refused.get_json())
    assert signing_secrets(api.runtime.cipher, _row(api)) == [OLD.encode()]  # unchanged


def test_the_sandbox_program_mis_accepts_a_delivery_signed_during_the_overlap(api) -> None:
    from sandbox_mocks.programs import ProgramMisConfig, create_app

    answer = api.post("/api/v1/subscriptions/cash-hooks/secret", json={}, headers=api.auth("admin"))
    new = answer.get_json()["secret"]
    now = datetime.now().astimezone()
    for secret, expected in ((OLD, 200), (new, 200), ("a-third-secret-0123456789", 401)):
        mis = create_app(ProgramMisConfig(webhook_secret=secret, reject_unverified=True))
        headers = _signed_now(api, now)
        got = mis.test_client().post("/notifications/webhook", data=BODY, headers=headers)
        assert got.status_code == expected, (secret, got.get_json())


def test_a_real_delivery_during_the_overlap_verifies_with_either_secret(
    db_url: str, tmp_path: Path
) -> None:
    """Through the delivery worker on the embedded broker, to a loopback receiver."""
    from hub.runtime import HubRuntime
    from hub.subscriptions import service
    from hub.subscriptions.secret_rotation import rotate_secret
    from registry_core.service import Source
    from tests.integration.notification_support import (
        notification_workers,
        receiver,
        wait_until,
    )

    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path, outbound={"allow_hosts": ["127.0.0.1"]}
    )
    runtime = HubRuntime(settings)
    try:
        runtime.registry.ensure_identifier_systems()
        with receiver() as rx:
            body = {
                "code": "cash-deaths",
                "event_types": ["person.died"],
                "channel": "webhook",
                "target": rx.url,
                "purpose": "cash_transfer",
                "secret": OLD,
            }
            with runtime.sessions() as session, session.begin():
                subscription, _ = service.create(
                    session, runtime.cipher, body, program_code="cash", created_by="test"
                )
                new, _until = rotate_secret(runtime.cipher, subscription, {})
            assert new is not None
            record = {
                "admin_area_code": "R01",
                "members": [
                    {
                        "given_name": "Amina",
                        "family_name": "Otieno",
                        "sex": "female",
                        "birth_date": "1970-04-02",
                        "relationship": "head",
                    }
                ],
            }
            created = runtime.registry.register_household(record, Source("registry_staff"))
            person = created.record["members"][0]["id"]
            with notification_workers(settings, runtime):
                runtime.registry.record_death(person, "2025-01-02", Source("civil_registry"))
                wait_until(lambda: rx.requests, 20, "the death delivered")
        sent = rx.requests[0]
        received = {k.lower(): v for k, v in sent["headers"].items()}
        assert len(received[SIGNATURE_HEADER.lower()].split()) == 2
        assert len(received[BODY_SIGNATURE_HEADER.lower()].split()) == 2
        verify(OLD.encode(), sent["body"], sent["headers"])
        verify(new.encode(), sent["body"], sent["headers"])
        mis_headers = {BODY_SIGNATURE_HEADER: received[BODY_SIGNATURE_HEADER.lower()]}
        assert check_signature(OLD, sent["body"], mis_headers).verified is True
        assert check_signature(new, sent["body"], mis_headers).verified is True
    finally:
        runtime.close()
