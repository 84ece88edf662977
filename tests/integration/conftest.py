"""Fixtures shared by the pipeline tests (relay, worker runtime): the broker under test and a
RabbitMQ virtual host of this module's own. Modules that define their own fixture of the same
name keep theirs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pipeline_support import Target, own_amqp_vhost
from tests.services import amqp_url_or_skip


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    with own_amqp_vhost(amqp_url_or_skip()) as url:
        yield url


@pytest.fixture
def target(request: pytest.FixtureRequest, db_url: str) -> Iterator[Target]:
    """The broker under test (indirect parameter: "embedded" or "amqp")."""
    if request.param == "embedded":
        chosen = Target("embedded", db_url)
    else:
        chosen = Target("amqp", request.getfixturevalue("amqp_url"))
    try:
        yield chosen
    finally:
        chosen.cleanup()
