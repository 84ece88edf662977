"""What the sandbox does on its own so a newcomer sees the hub's promise in the first minute.

A fresh ``make run`` registers households and receives births and deaths, but nothing would
reach a program and nobody would be verified: the sandbox's program MIS was never subscribed
and the national ID cross-check runs only when someone asks for it. So, with the sandbox on:

- the program MIS is subscribed to person events (``person.born``, ``person.died``,
  ``person.verified``, ``person.verification_failed``) by signed webhook, and by AMQP when a
  RabbitMQ for subscribers exists (the hub's own, or ``SRHUB_DELIVERY_AMQP_URL``) — the queue
  ``sr.deliver.program-mis`` the MIS's AMQP consumer reads, declared before it looks for it;
- the national ID cross-check needs no round of its own any more: the seeded households
  register like any other, the first of them with the survey's consent to the check, and the
  registration cross-check (``hub.crosscheck``, policy ``first``) queues their checks, so
  ``person.verified`` events appear (``hub.embedded_services.sandbox_activity_in_background``).

Subscribing is re-done at every start and is idempotent: the subscriptions are brought up to date
(the MIS's webhook secret is new at every start), never duplicated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hub.runtime import HubRuntime
from hub.settings import Settings
from hub.subscriptions import service
from hub.subscriptions.queues import declare_queues
from hub.subscriptions.tables import CHANNEL_AMQP, CHANNEL_WEBHOOK
from hub.workers.egress import EgressPolicy

log = logging.getLogger("srhub.sandbox")

MIS_PROGRAM = "program-mis"
MIS_WEBHOOK_CODE = "program-mis-webhook"
MIS_AMQP_CODE = "program-mis"  # queue sr.deliver.program-mis: what the MIS's consumer reads
MIS_EVENT_TYPES = ("person.*",)
MIS_PURPOSE = "social_protection"
CREATED_BY = "sandbox"


def webhook_subscription(mis: Mapping[str, Any]) -> dict[str, Any]:
    """The MIS's webhook subscription, from its connector table (URL and this start's secret)."""
    return {
        "code": MIS_WEBHOOK_CODE,
        "channel": CHANNEL_WEBHOOK,
        "target": str(mis["webhook_url"]),
        "secret": str(mis["webhook_secret"]),
        "event_types": list(MIS_EVENT_TYPES),
        "purpose": MIS_PURPOSE,
    }


def amqp_subscription() -> dict[str, Any]:
    """The MIS's AMQP subscription: its queue is ``sr.deliver.program-mis``."""
    return {
        "code": MIS_AMQP_CODE,
        "channel": CHANNEL_AMQP,
        "event_types": list(MIS_EVENT_TYPES),
        "purpose": MIS_PURPOSE,
    }


def subscribe_program_mis_by_amqp(settings: Settings, runtime: HubRuntime) -> list[str]:
    """Before the sandbox starts: the MIS's consumer must find its queue at its first look
    (else RabbitMQ closes its channel with NOT_FOUND at every reconnect). Nothing without a
    RabbitMQ for subscribers."""
    if not settings.offers_amqp_channel:
        return []
    return _ensure(settings, runtime, amqp_subscription())


def subscribe_program_mis_by_webhook(
    settings: Settings, runtime: HubRuntime, mis: Mapping[str, Any]
) -> list[str]:
    """Once the sandbox runs: its webhook URL and secret are known then."""
    return _ensure(settings, runtime, webhook_subscription(mis))


def _ensure(settings: Settings, runtime: HubRuntime, body: dict[str, Any]) -> list[str]:
    service.validate_create(
        body,
        amqp_available=settings.offers_amqp_channel,
        egress=EgressPolicy.from_settings(settings),
    )
    with runtime.sessions() as session, session.begin():
        subscription, new = service.ensure(
            session, runtime.cipher, body, program_code=MIS_PROGRAM, created_by=CREATED_BY
        )
        code = subscription.code
    declare_queues(settings, code, body["channel"])
    log.info(
        "sandbox: program MIS %s by %s (%s)",
        "subscribed" if new else "subscription renewed",
        body["channel"],
        code,
    )
    return [code]
