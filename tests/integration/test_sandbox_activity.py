"""The sandbox's own activity: the program MIS subscribed once and kept current across starts,
and the seeded households' consent to the national ID check."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub import sandbox_activity
from hub.runtime import HubRuntime
from hub.settings import load_settings
from hub.subscriptions import service
from hub.subscriptions.tables import Subscription
from registry_core.errors import ConflictError

MIS = {"webhook_url": "http://127.0.0.1:9/notifications/webhook", "webhook_secret": "s" * 24}


@pytest.fixture
def runtime(db_url: str, tmp_path: Path):
    settings = load_settings(
        env={},
        database_url=db_url,
        data_dir=tmp_path / "var",
        outbound={"allow_hosts": ["127.0.0.1"]},
    )
    built = HubRuntime(settings)
    built.registry.ensure_identifier_systems()
    try:
        yield built
    finally:
        built.close()


def test_the_mis_is_subscribed_once_and_its_new_secret_replaces_the_old(runtime):
    settings = runtime.settings
    assert sandbox_activity.subscribe_program_mis_by_amqp(settings, runtime) == []  # no RabbitMQ
    sandbox_activity.subscribe_program_mis_by_webhook(settings, runtime, MIS)
    restarted = {**MIS, "webhook_secret": "t" * 24, "webhook_url": MIS["webhook_url"] + "/x"}
    sandbox_activity.subscribe_program_mis_by_webhook(settings, runtime, restarted)
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subscription)) == 1
        found = service.get(session, sandbox_activity.MIS_WEBHOOK_CODE)
        assert found.target.endswith("/x")
        assert service.secret_of(runtime.cipher, found) == b"t" * 24
        assert found.event_types == ["person.*"]


def test_ensure_refuses_to_take_over_another_programs_subscription(runtime):
    body = sandbox_activity.webhook_subscription(MIS)
    with runtime.sessions() as session, session.begin():
        service.create(session, runtime.cipher, body, program_code="cash", created_by="t")
    with (
        pytest.raises(ConflictError),
        runtime.sessions() as session,
        session.begin(),
    ):
        service.ensure(
            session, runtime.cipher, body, program_code=sandbox_activity.MIS_PROGRAM, created_by="t"
        )


def test_the_seed_records_the_surveys_consent_for_about_the_people_asked(runtime):
    from hub.crosscheck.policy import IDENTITY_CHECK_PURPOSE
    from hub.sandbox_seed import seed_registry
    from registry_core.models import Consent
    from sandbox_mocks.population import DEFAULT_AS_OF, iter_households

    households = list(iter_households(7, 200, DEFAULT_AS_OF))
    assert seed_registry(runtime.registry, households, consenting=5) > 10
    with runtime.sessions() as session:
        consents = list(session.scalars(select(Consent)))
    assert consents, "no consent recorded"
    assert {c.purpose for c in consents} == {IDENTITY_CHECK_PURPOSE}
    assert all(c.household_id is not None and c.person_id is None for c in consents)
    assert len(consents) <= 5  # households, until about five people are covered
    # A registry already seeded is not seeded (nor asked for consent) again.
    assert seed_registry(runtime.registry, households, consenting=5) == 0
