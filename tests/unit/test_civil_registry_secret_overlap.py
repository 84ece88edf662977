"""The civil registry connector accepts webhook deliveries signed with the registry's
previous secret while the configured overlap lasts (the registry rotating its secret), and
only the current one afterwards; a malformed end time is refused with the settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import ConnectorContext
from connectors.base.testing import CollectingPublisher
from connectors.base.webhooks import opencrvs_signature
from connectors.civil_registry import CivilRegistryConnector

NEW, OLD = "new-secret-0123456789", "old-secret-0123456789"
BODY = b'{"event": "birth"}'


def _connector(**extra: str) -> CivilRegistryConnector:
    settings = {"base_url": "http://127.0.0.1:9", "webhook_secret": NEW, "subscriptions": []}
    settings.update(extra)
    return CivilRegistryConnector(
        settings, ConnectorContext("civil_registry", CollectingPublisher())
    )


def test_previous_secret_is_accepted_only_during_the_overlap() -> None:
    connector = _connector(
        previous_webhook_secret=OLD, previous_webhook_secret_until="2030-01-01T00:00:00Z"
    )
    before, after = datetime(2029, 12, 31, tzinfo=UTC), datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)
    old_signed = opencrvs_signature(OLD.encode(), BODY)
    assert connector.verify_signature(BODY, old_signed, now=before)
    assert not connector.verify_signature(BODY, old_signed, now=after)
    assert connector.verify_signature(BODY, opencrvs_signature(NEW.encode(), BODY), now=after)
    wrong = opencrvs_signature(b"another-secret-0123456789", BODY)
    assert not connector.verify_signature(BODY, wrong, now=before)


def test_without_an_overlap_only_the_current_secret_verifies() -> None:
    connector = _connector(previous_webhook_secret=OLD)  # no end time: never accepted
    assert not connector.verify_signature(BODY, opencrvs_signature(OLD.encode(), BODY))
    assert connector.verify_signature(BODY, opencrvs_signature(NEW.encode(), BODY))


def test_a_malformed_overlap_end_is_a_settings_problem() -> None:
    with pytest.raises(Exception, match="previous_webhook_secret_until"):
        _connector(previous_webhook_secret=OLD, previous_webhook_secret_until="tomorrow")
