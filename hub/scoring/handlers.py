"""The scoring worker: a household's events in, its scores and eligibility re-computed.

Why a consumer of ``sr.events`` (queue ``sr.scoring``), as the crosscheck worker is: a
household's inputs change through many doors (the API, field forms, tax and GIS files, births
and deaths from the civil registry), and every door ends as a household event written with
the change. Re-scoring on those events catches them all with one rule and never slows the
write that caused it. The handler runs in the consumer's transaction
(``Registry.within``): the new score, the decisions, their ``household.eligibility_changed``
events and the record of the message as processed commit together, so a redelivered event
changes nothing twice. The worker does not read the events it writes itself
(``household.eligibility_changed`` is not bound to its queue), so it cannot loop.
"""

from __future__ import annotations

import uuid
from typing import Any

from hub.workers.handlers import HandlerContext, HandlerRegistry, HandlerResult
from hub.workers.topology import SCORING_EVENTS
from registry_core.errors import NotFound
from registry_core.service import Registry

# The household events after which its inputs may have changed (members, facts, fields).
RESCORE_EVENTS = SCORING_EVENTS
IGNORED = HandlerResult("ignored")


def scoring_handlers(runtime: Any) -> HandlerRegistry:
    """The scoring worker's handlers around one ``HubRuntime`` (its registry)."""
    handlers = HandlerRegistry("scoring", runtime.registry)
    for key in RESCORE_EVENTS:
        handlers.register(key, handle_household_event)
    handlers.register("#", lambda _e, _c: IGNORED)
    return handlers


def handle_household_event(event: dict[str, Any], ctx: HandlerContext) -> HandlerResult:
    data = event.get("data") or {}
    if not data.get("household_id"):
        return IGNORED
    registry: Registry = ctx.services
    if ctx.session is not None:
        registry = registry.within(ctx.session)
    try:
        changed = registry.scoring.rescore_household(uuid.UUID(str(data["household_id"])))
    except NotFound:
        return HandlerResult("ignored", ("household_gone",))
    return HandlerResult("rescored", (f"eligibility_changed={changed}",))
