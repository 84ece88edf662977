"""Change requests: propose, approve (and apply), reject, withdraw, list, read, history.

One set of rules for the API (``hub.api.change_requests``) and the dashboard
(``hub.ui.change_request_views``); every function works in the caller's session, so the
request's new state, its history step and the registry's change commit together or not at all.

States::

    proposed ──approve──► applied     (approval and application are one transaction)
        │    ──reject───► rejected    (reason required)
        └────withdraw───► withdrawn   (the proposer, or an administrator; reason required)
    direct correction ──► applied     (registry staff, a configured target, evidence required)

Who may do what (``Principal`` from ``hub.auth.roles``):

- propose: field workers and supervisors for households of their areas, registry staff and
  administrators for any household;
- approve or reject: registry staff and administrators, supervisors in their areas; never the
  person who proposed it (four eyes);
- apply directly: registry staff and administrators, for the targets in
  ``settings.corrections.direct_targets``, with an evidence reference.

Applying checks that the value the proposer saw still holds (optimistic: a changed value is a
``StaleValue``, 409, and nothing is written) and that the correction became the current value
(a higher-ranked source, e.g. the national ID for a name, makes it an ``Outranked``, 409).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from hub.auth.roles import Principal, Role
from hub.corrections import targets
from hub.corrections.tables import ChangeRequest, ChangeRequestStep
from registry_core.areas import within_areas
from registry_core.service import Registry
from standards.timeutil import iso, utcnow

STATES = ("proposed", "applied", "rejected", "withdrawn")
FINAL = frozenset({"applied", "rejected", "withdrawn"})
CHANNELS = ("in_person", "phone", "field_visit", "letter", "online", "staff_review")
ON_BEHALF_OF = ("beneficiary", "registry")
PROPOSER_ROLES = (Role.admin, Role.registry_staff, Role.supervisor, Role.field_worker)
REVIEWER_ROLES = (Role.admin, Role.registry_staff, Role.supervisor)
DIRECT_ROLES = (Role.admin, Role.registry_staff)


class RequestNotFound(LookupError):
    """No change request with this id."""


class NotAllowed(PermissionError):
    """The caller may not do this to this request (the message says why)."""


class WrongState(Exception):
    """The request is not in a state that allows this (409)."""


class StaleValue(Exception):
    """The value the proposer saw is no longer the registry's (409); nothing was written."""

    def __init__(self, current: Any) -> None:
        super().__init__(
            "the registry's value changed since this correction was proposed; "
            "reject it and propose again from the current value"
        )
        self.current = current


class Outranked(Exception):
    """A source ranked above corrections holds this field (409); nothing was written."""


@dataclass(frozen=True)
class Proposal:
    """A validated proposal (``hub.api.change_requests`` checks the JSON schema first)."""

    household_id: str
    person_id: str | None
    target: str
    old_value: Any
    proposed_value: Any
    reason: str
    on_behalf_of: str
    channel: str
    evidence_reference: str | None = None
    apply_directly: bool = False


def acting_role(principal: Principal) -> str:
    for role in (Role.admin, Role.registry_staff, Role.supervisor, Role.field_worker):
        if role in principal.roles:
            return role.value
    return sorted(principal.roles)[0].value if principal.roles else "unknown"


def load(session: Session, request_id: uuid.UUID | str, *, lock: bool = False) -> ChangeRequest:
    try:
        key = request_id if isinstance(request_id, uuid.UUID) else uuid.UUID(str(request_id))
    except ValueError:
        raise RequestNotFound(f"no change request {request_id}") from None
    query = select(ChangeRequest).where(ChangeRequest.id == key)
    if lock:
        query = query.with_for_update()
    found = session.scalars(query).first()
    if found is None:
        raise RequestNotFound(f"no change request {request_id}")
    return found


def _outside(principal: Principal, area: str | None) -> NotAllowed:
    return NotAllowed(
        f"This household is in area {area or 'none'}, outside the areas you cover "
        f"({', '.join(principal.admin_areas) or 'none'})."
    )


def may_read(principal: Principal, request: ChangeRequest) -> None:
    if principal.has_any((Role.admin, Role.registry_staff, Role.auditor)):
        return
    if principal.may_touch_area(request.admin_area_code):
        return
    raise _outside(principal, request.admin_area_code)


def may_decide(principal: Principal, request: ChangeRequest) -> None:
    if not principal.has_any(REVIEWER_ROLES):
        raise NotAllowed("Only registry staff and supervisors approve or reject corrections.")
    if not principal.may_touch_area(request.admin_area_code):
        raise _outside(principal, request.admin_area_code)
    if principal.subject == request.proposed_by:
        raise NotAllowed("You proposed this correction: another person approves or rejects it.")


def _step(
    session: Session,
    request: ChangeRequest,
    action: str,
    to_state: str,
    principal: Principal,
    via: str,
    reason: str | None,
    from_state: str | None,
) -> None:
    session.add(
        ChangeRequestStep(
            request_id=request.id,
            action=action,
            from_state=from_state,
            to_state=to_state,
            actor=principal.subject[:200],
            actor_role=acting_role(principal),
            via=via,
            reason=reason[:1000] if reason else None,
            at=utcnow(),
        )
    )


def propose(
    session: Session,
    registry: Registry,
    proposal: Proposal,
    principal: Principal,
    *,
    via: str = "api",
    direct_targets: Sequence[str] = (),
) -> dict[str, Any]:
    """Record a proposal (state ``proposed``), or apply a direct correction (``applied``).

    Raises ``NotFound`` (household), ``TargetProblem``/``SchemaViolation`` (400/422),
    ``NotAllowed`` (403), ``StaleValue``/``Outranked`` (409, direct only)."""
    reg = registry.within(session)
    target = targets.Target.parse(proposal.target)
    household = reg.get_household(proposal.household_id)
    if not principal.has_any(PROPOSER_ROLES):
        raise NotAllowed("Only staff, supervisors and field workers propose corrections.")
    if not principal.may_touch_area(household.get("admin_area_code")):
        raise _outside(principal, household.get("admin_area_code"))
    targets.check_subject(target, household, proposal.person_id)
    targets.validate_value(target, proposal.proposed_value)
    if target.name == "household.admin_area_code" and not principal.may_touch_area(
        proposal.proposed_value
    ):
        raise NotAllowed("You may not move a household into an area you do not cover.")
    if proposal.apply_directly:
        if not principal.has_any(DIRECT_ROLES):
            raise NotAllowed("Only registry staff apply corrections directly; propose it instead.")
        if target.name not in direct_targets:
            raise NotAllowed(
                f"{target.name} is not one of the corrections applied directly "
                f"({', '.join(direct_targets) or 'none'}); propose it for approval instead."
            )
        if not proposal.evidence_reference:
            raise NotAllowed("A direct correction needs an evidence reference.")
    if not proposal.reason.strip():
        raise targets.TargetProblem("say why the value is wrong: reason must not be blank")
    if targets.same_value(proposal.old_value, proposal.proposed_value):
        raise targets.TargetProblem("the proposed value is the value already seen: nothing to do")
    now = utcnow()
    request = ChangeRequest(
        id=uuid.uuid4(),
        state="proposed",
        household_id=uuid.UUID(household["id"]),
        person_id=uuid.UUID(proposal.person_id) if proposal.person_id else None,
        admin_area_code=household.get("admin_area_code"),
        target=target.name,
        old_value=proposal.old_value,
        proposed_value=proposal.proposed_value,
        evidence_reference=proposal.evidence_reference,
        reason=proposal.reason[:1000],
        on_behalf_of=proposal.on_behalf_of,
        channel=proposal.channel,
        direct=proposal.apply_directly,
        proposed_by=principal.subject[:200],
        proposer_role=acting_role(principal),
        proposed_at=now,
        version=1,
    )
    session.add(request)
    session.flush()
    _step(session, request, "proposed", "proposed", principal, via, proposal.reason, None)
    if proposal.apply_directly:
        _apply(session, reg, request, principal, via, "applied directly with evidence")
    session.flush()
    return record(session, request, history=True)


def _apply(
    session: Session,
    registry: Registry,
    request: ChangeRequest,
    principal: Principal,
    via: str,
    reason: str | None,
) -> None:
    target = targets.Target.parse(request.target)
    household_id = str(request.household_id)
    person_id = str(request.person_id) if request.person_id else None
    household = registry.get_household(household_id)
    targets.check_subject(target, household, person_id)
    before = targets.current_value(session, registry, target, household_id, person_id)
    if not targets.same_value(before, request.old_value):
        raise StaleValue(before)
    targets.apply(
        registry, target, household_id, person_id, request.proposed_value, str(request.id)
    )
    after = targets.current_value(session, registry, target, household_id, person_id)
    if not targets.same_value(after, request.proposed_value):
        holder = targets.current_source(registry, target, household_id, person_id)
        raise Outranked(
            f"{holder or 'a source'} holds {request.target} and is ranked above corrections "
            "(docs/corrections.md): correct it at that source"
        )
    now = utcnow()
    previous = request.state
    request.state = "applied"
    request.replaced_value = before
    request.applied_at = now
    request.decided_by = principal.subject[:200]
    request.decided_at = now
    request.decision_reason = reason[:1000] if reason else None
    request.version += 1
    if previous == "proposed" and not request.direct:
        _step(session, request, "approved", "applied", principal, via, reason, previous)
    else:
        _step(session, request, "applied", "applied", principal, via, reason, previous)


def decide(
    session: Session,
    registry: Registry,
    request_id: uuid.UUID | str,
    action: str,
    reason: str | None,
    principal: Principal,
    *,
    via: str = "api",
    expected_version: int | None = None,
) -> dict[str, Any]:
    """``approve`` (and apply), ``reject`` or ``withdraw`` one proposed request."""
    request = load(session, request_id, lock=True)
    if action == "withdraw":
        if principal.subject != request.proposed_by and Role.admin not in principal.roles:
            raise NotAllowed("Only the person who proposed a correction withdraws it.")
    else:
        may_decide(principal, request)
    if expected_version is not None and expected_version != request.version:
        raise WrongState(
            f"the request changed since you read it (now version {request.version}); read it again"
        )
    if request.state != "proposed":
        raise WrongState(f"the request is {request.state}: nothing more may be decided on it")
    if action in ("reject", "withdraw") and not (reason or "").strip():
        raise ValueError(f"say why: a {action} needs a reason the proposer can act on")
    if action == "approve":
        _apply(session, registry.within(session), request, principal, via, reason)
    else:
        to_state = "rejected" if action == "reject" else "withdrawn"
        now = utcnow()
        request.state = to_state
        request.decided_by = principal.subject[:200]
        request.decided_at = now
        request.decision_reason = (reason or "")[:1000]
        request.version += 1
        _step(session, request, to_state, to_state, principal, via, reason, "proposed")
    session.flush()
    return record(session, request, history=True)


def list_requests(
    session: Session,
    *,
    state: str | None = None,
    area: str | None = None,
    household_id: uuid.UUID | None = None,
    area_prefixes: Sequence[str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A page of requests, newest first. ``area_prefixes`` limits an area-scoped caller."""
    conditions: list[ColumnElement[bool]] = []
    if state:
        conditions.append(ChangeRequest.state == state)
    if area:
        conditions.append(within_areas(ChangeRequest.admin_area_code, [area]))
    if household_id is not None:
        conditions.append(ChangeRequest.household_id == household_id)
    if area_prefixes is not None:
        conditions.append(within_areas(ChangeRequest.admin_area_code, area_prefixes))
    total = session.scalar(select(func.count()).select_from(ChangeRequest).where(*conditions))
    rows = session.scalars(
        select(ChangeRequest)
        .where(*conditions)
        .order_by(ChangeRequest.proposed_at.desc(), ChangeRequest.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [record(session, r, history=household_id is not None) for r in rows], int(total or 0)


def record(session: Session, request: ChangeRequest, *, history: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": str(request.id),
        "state": request.state,
        "household_id": str(request.household_id),
        "person_id": str(request.person_id) if request.person_id else None,
        "admin_area_code": request.admin_area_code,
        "target": request.target,
        "old_value": request.old_value,
        "proposed_value": request.proposed_value,
        "replaced_value": request.replaced_value,
        "evidence_reference": request.evidence_reference,
        "reason": request.reason,
        "on_behalf_of": request.on_behalf_of,
        "channel": request.channel,
        "direct": request.direct,
        "proposed_by": request.proposed_by,
        "proposer_role": request.proposer_role,
        "proposed_at": iso(request.proposed_at),
        "decided_by": request.decided_by,
        "decided_at": iso(request.decided_at) if request.decided_at else None,
        "decision_reason": request.decision_reason,
        "applied_at": iso(request.applied_at) if request.applied_at else None,
        "version": request.version,
    }
    if history:
        steps = session.scalars(
            select(ChangeRequestStep)
            .where(ChangeRequestStep.request_id == request.id)
            .order_by(ChangeRequestStep.id)
        )
        found["history"] = [
            {
                "at": iso(s.at),
                "action": s.action,
                "from": s.from_state,
                "to": s.to_state,
                "actor": s.actor,
                "actor_role": s.actor_role,
                "via": s.via,
                "reason": s.reason,
            }
            for s in steps
        ]
    return found
