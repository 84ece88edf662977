"""The quality worker: registry events in, data-quality issues kept up to date.

Why a consumer of ``sr.events`` (queue ``sr.quality``) and not a hook in the registry's write
path: a check must never slow down, block or fail a registry write. Changes arrive by many
doors (API, field forms, partner feeds, staff pages) and all end as events written in the same
transaction as the change; reacting to the events catches every door with one rule, after the
change is committed. The handler runs in the consumer's transaction, which also records the
message as processed: a crash re-runs the check, a redelivered event changes nothing twice
(checks are idempotent anyway: one row per kind and subject).

What the event says is only a hint of *which* subjects to re-check; the check reads the
registry as it is now, so events handled late or out of order still leave the right issues.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.quality.checks import check_subjects, subjects_of_event
from hub.settings.quality import QualitySettings
from hub.workers.handlers import HandlerContext, HandlerRegistry, HandlerResult
from hub.workers.topology import QUALITY_EVENTS
from standards.timeutil import utcnow


@dataclass(frozen=True)
class QualityServices:
    config: Callable[[], QualitySettings]
    clock: Callable[[], datetime] = utcnow


def quality_handlers(runtime: Any, *, clock: Callable[[], datetime] = utcnow) -> HandlerRegistry:
    """The quality worker's handlers around one ``HubRuntime`` (its settings)."""
    settings = runtime.settings
    handlers = HandlerRegistry("quality", QualityServices(lambda: settings.quality, clock))
    for key in QUALITY_EVENTS:
        handlers.register(key, handle_change)
    handlers.register("#", lambda _e, _c: HandlerResult("ignored"))
    return handlers


def handle_change(event: dict[str, Any], ctx: HandlerContext) -> HandlerResult:
    """Re-check the subjects the event may have changed, in the consumer's transaction."""
    services: QualityServices = ctx.services
    session = ctx.session
    assert session is not None  # registered transactional
    data = event.get("data") or {}
    subjects = subjects_of_event(session, ctx.delivery.message.routing_key, data)
    if not subjects.households and not subjects.persons:
        return HandlerResult("no_subject")
    done = check_subjects(
        session,
        services.config(),
        services.clock(),
        households=subjects.households,
        persons=subjects.persons,
    )
    notes = (f"opened={done.opened}", f"resolved={done.resolved}")
    return HandlerResult("checked", notes)
