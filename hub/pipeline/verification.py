"""Identity verification as queued work: ``registry.verification_requested`` messages on
``sr.inbound`` ask the ingest worker to check a registered person with the national ID authority.

Queuing it (rather than calling the authority inside an API request) is what makes a partner
outage survivable: a transient failure is retried with backoff, then the message is
dead-lettered with the reason, and an operator replays it once the authority is back
(``srhub dead-letters replay``). The authority's answer is published raw by the connector and
applied to the registry by the ingest route ``national_id.verification``.

The handler is registered by ``hub.pipeline.ingest.ingest_handlers`` (outside a transaction:
it calls a partner) and finds the registry and the running national ID connector in
``ctx.services``: whoever built the worker decides which connectors it can reach.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connectors.base.errors import NotAttempted, PermanentPartnerError, TransientPartnerError
from hub.workers.errors import PermanentError, TransientError
from hub.workers.handlers import HandlerContext, HandlerResult
from registry_core.errors import NotFound
from registry_core.service import Source

if TYPE_CHECKING:
    from hub.pipeline.ingest import IngestServices

ROUTING_KEY = "registry.verification_requested"
RECORD_TYPE = "verification_requested"

# The running connector of a name in this process, or None (e.g. ``ConnectorHost.connector``).
ConnectorLookup = Callable[[str], Any | None]


def no_connector(_name: str) -> Any | None:
    """The lookup of a worker that runs no connectors (``srhub worker ingest``)."""
    return None


def handle(event: dict[str, Any], ctx: HandlerContext) -> HandlerResult:
    services: IngestServices = ctx.services
    request = (event.get("data") or {}).get("payload") or {}
    person_id = request.get("person_id")
    consent = request.get("consent_obtained")
    if not isinstance(person_id, str) or not isinstance(consent, bool):
        raise PermanentError(
            "a verification request needs person_id and consent_obtained", "InvalidRequest"
        )
    connector = services.connectors("national_id")
    if connector is None:
        raise TransientError("the national ID connector is not running in this worker")
    registry = services.registry
    try:
        person = registry.get_person(person_id)
    except NotFound:
        raise PermanentError("the person to verify is not in the registry", "NotFound") from None
    national_id = next(
        (i["value"] for i in person.get("identifiers", []) if i["system"] == "national_id"), None
    )
    if national_id is None:
        return HandlerResult("nothing_to_verify")
    demographics = {k: person.get(k) for k in ("given_name", "family_name", "birth_date", "sex")}
    from connectors.national_id.soap import NotFoundError

    try:
        connector.verify(
            national_id, {k: v for k, v in demographics.items() if v}, consent, person_id=person_id
        )
    except NotFoundError:
        registry.record_verification(
            person_id,
            False,
            Source("national_id", f"request:{event.get('id')}"),
            reason="the national ID authority does not know this national ID",
        )
        return HandlerResult("applied")
    except (TransientPartnerError, NotAttempted) as exc:
        raise TransientError(f"national ID authority unavailable: {type(exc).__name__}") from exc
    except PermanentPartnerError as exc:
        raise PermanentError(
            f"national ID authority refused: {type(exc).__name__}", "PartnerRefused"
        ) from exc
    return HandlerResult("verification_requested")
