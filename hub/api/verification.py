"""``POST /api/v1/persons/{id}/verify``: ask the national ID authority about a registered person.

The answer comes back at once; its effect on the registry (``person.verified`` or
``person.verification_failed``) arrives through the ingest worker, like every partner fact,
because the connector publishes the authority's raw answer to ``sr.inbound`` first.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from hub.api.context import hub_registry
from hub.api.problems import ApiProblem, BadRequest
from hub.api.requests import json_object
from hub.auth.flask_auth import current_principal, require_area, requires
from hub.auth.roles import UNSCOPED_AREA_ROLES, Role

bp = Blueprint("verification", __name__, url_prefix="/api/v1/persons")

CONNECTORS_KEY = "srhub_connectors"
VERIFY_DEADLINE_S = 8.0


class PartnerUnavailable(ApiProblem):
    status = 503
    title = "Service Unavailable"
    kind = "partner-unavailable"


class NothingToVerify(ApiProblem):
    status = 422
    title = "Unprocessable Content"
    kind = "nothing-to-verify"


def _connector() -> Any:
    connector = (current_app.extensions.get(CONNECTORS_KEY) or {}).get("national_id")
    if connector is None or not hasattr(connector, "verify"):
        raise PartnerUnavailable("the national ID connector is not configured in this hub")
    return connector


@bp.post("/<uuid:person_id>/verify")
@requires(Role.admin, Role.registry_staff, Role.field_worker)
def verify_person(person_id: Any) -> Response:
    body = json_object()
    consent = body.get("consent_obtained")
    if not isinstance(consent, bool) or set(body) - {"consent_obtained"}:
        raise BadRequest('send {"consent_obtained": true|false}: the authority needs to know')
    registry = hub_registry()
    person = registry.get_person(str(person_id))
    if not current_principal().has_any(UNSCOPED_AREA_ROLES):
        require_area(registry.person_household_area(str(person_id)))
    national_id = next(
        (i["value"] for i in person.get("identifiers", []) if i["system"] == "national_id"), None
    )
    if national_id is None:
        raise NothingToVerify("the person has no national ID in the registry")
    demographics = {
        "given_name": person.get("given_name"),
        "family_name": person.get("family_name"),
        "birth_date": person.get("birth_date"),
        "sex": person.get("sex"),
    }
    from connectors.base.clock import Deadline
    from connectors.base.errors import NotAttempted, PartnerError
    from connectors.national_id.soap import NotFoundError

    connector = _connector()
    try:
        answer = connector.verify(
            national_id,
            {k: v for k, v in demographics.items() if v},
            consent,
            person_id=str(person_id),
            deadline=Deadline(VERIFY_DEADLINE_S),
        )
    except NotFoundError:
        # No answer to publish: the authority's "unknown ID" is itself the failed check.
        from registry_core.service import Source

        registry.record_verification(
            str(person_id),
            False,
            Source("national_id", "verify:unknown-id"),
            reason="the national ID authority does not know this national ID",
        )
        response = jsonify(
            {
                "person_id": str(person_id),
                "verified": False,
                "person_status": None,
                "error_codes": ["unknown_id"],
                "transaction_id": None,
                "recorded": True,
            }
        )
        response.status_code = 202
        return response
    except (PartnerError, NotAttempted) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise PartnerUnavailable(f"the national ID authority did not answer: {reason}") from None
    response = jsonify(
        {
            "person_id": str(person_id),
            "verified": answer.verified,
            "person_status": answer.person_status,
            "error_codes": answer.error_codes,
            "transaction_id": answer.transaction_id,
            "recorded": answer.message_id is not None,
        }
    )
    response.status_code = 202
    return response


@bp.post("/verifications")
@requires(Role.admin, Role.registry_staff)
def queue_verifications() -> Response:
    """Queue national ID checks for many people (e.g. everyone registered this week)."""
    import uuid as uuid_module

    from connectors.base.records import RawRecord
    from hub.connectors_host import HOST_KEY
    from hub.pipeline.verification import RECORD_TYPE

    body = json_object()
    ids = body.get("person_ids")
    consent = body.get("consent_obtained")
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= 1000
        or not isinstance(consent, bool)
        or set(body) - {"person_ids", "consent_obtained"}
    ):
        raise BadRequest('send {"person_ids": [1..1000 ids], "consent_obtained": true|false}')
    try:
        people = [str(uuid_module.UUID(str(i))) for i in ids]
    except ValueError:
        raise BadRequest("person_ids must be registry person ids (UUIDs)") from None
    registry = hub_registry()
    for person_id in people:
        registry.get_person(person_id)  # 404 before anything is queued
    batch = uuid_module.uuid4().hex
    host = current_app.extensions.get(HOST_KEY)
    if host is None:
        raise PartnerUnavailable("no connector host runs in this hub process")
    message_ids = [
        host.publish_raw(
            "registry",
            RawRecord(
                RECORD_TYPE,
                {"person_id": p, "consent_obtained": consent},
                source_id=f"{batch}:{p}",
            ),
        )
        for p in people
    ]
    response = jsonify({"queued": len(message_ids), "message_ids": message_ids})
    response.status_code = 202
    return response
