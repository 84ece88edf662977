"""The crosscheck worker: registry events in, national ID verification requests out.

Why here, as a consumer of ``sr.events`` (queue ``sr.crosscheck``), and not in the API or the
registry core: a registration arrives by three doors (the API, a field form through the intake
core, a partner feed through the ingest worker), and all three end as the same registry events
in the same transaction as the change. Reacting to the events catches every door with one
rule, never calls a partner inside a request or a registry transaction, and survives a crash:
the event is redelivered until handled.

Each request is published to ``sr.inbound`` as ``registry.verification_requested`` with a
**stable message id** (a UUIDv5 of the triggering event id and the person id, the raw-record
envelope's own rule), so a redelivered event publishes a copy the ingest worker's
processed-message store recognises and drops: one event, one check. The handler runs outside
the consumer's transaction (``transactional=False``, as the dispatch worker does), writes each
person's ``pending`` row first and publishes after the commit; on the embedded broker in SQLite
that keeps one writer at a time.

The same worker reads ``person.verified`` / ``person.verification_failed`` (whoever asked: this
worker, staff through ``POST /api/v1/persons/verifications``, an operator's replay) to keep each
person's last outcome and a failure's reason for the household record, and ``consent.granted``
of the identity-check purpose to check people whose registration was waiting for it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from connectors.base.envelope import raw_event, routing_key
from connectors.base.records import RawRecord
from hub.broker import connect
from hub.broker.base import EXCHANGE_INBOUND, Broker, Message
from hub.broker.errors import BrokerError
from hub.crosscheck.policy import (
    IDENTITY_CHECK_PURPOSE,
    NOT_CHECKED_REASONS,
    PersonFacts,
    decide,
)
from hub.crosscheck.tables import IdentityCheck
from hub.pipeline.verification import RECORD_TYPE
from hub.settings.intake import CrossCheckPolicy
from hub.workers.errors import TransientError
from hub.workers.handlers import HandlerContext, HandlerRegistry, HandlerResult
from registry_core.consent import household_of
from registry_core.models import Consent, Identifier, Membership, Person, VerificationStatus
from standards.cloudevents import to_json_bytes
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

REGISTRATION_EVENTS = ("household.created", "household.member_added", "household.updated")
RESULT_EVENTS = ("person.verified", "person.verification_failed")
CONSENT_EVENT = "consent.granted"
# A change to one of these fields of a member is a re-registration of who they say they are.
IDENTITY_FIELDS = frozenset({"given_name", "family_name", "birth_date", "sex", "identifiers"})
REQUESTER = "registry"  # the connector name the requests are published under (as the API's)
IGNORED = HandlerResult("ignored")

Publish = Callable[[Sequence[Message]], None]


def request_message(trigger_event_id: str, person_id: str) -> Message:
    """The verification request for one person on one triggering event. Its id depends only
    on the two (``raw_record_id``): a redelivered event gives the same message."""
    record = RawRecord(
        RECORD_TYPE,
        {"person_id": person_id, "consent_obtained": True},
        source_id=f"crosscheck:{trigger_event_id}:{person_id}",
    )
    event = raw_event(REQUESTER, record, time=utcnow())
    return Message(to_json_bytes(event), routing_key(REQUESTER, RECORD_TYPE), event["id"])


class BrokerPublisher:
    """This thread's connection to publish on ``sr.inbound`` (pika's one-thread rule)."""

    def __init__(self, connect_broker: Callable[[], Broker]) -> None:
        self._connect = connect_broker
        self._local = threading.local()

    def __call__(self, messages: Sequence[Message]) -> None:
        broker: Broker | None = getattr(self._local, "broker", None)
        try:
            if broker is None:
                broker = self._local.broker = self._connect()
            broker.publish(EXCHANGE_INBOUND, list(messages))
        except BrokerError as exc:
            self._local.broker = None
            if broker is not None:
                try:
                    broker.close()
                except BrokerError:
                    log.debug("closing a failed crosscheck broker connection failed")
            raise TransientError(f"could not queue verification requests: {exc}") from exc


@dataclass(frozen=True)
class CrosscheckServices:
    sessions: Callable[[], Session]
    policy: Callable[[], CrossCheckPolicy]
    publish: Publish


def crosscheck_handlers(runtime: Any, *, publish: Publish | None = None) -> HandlerRegistry:
    """The crosscheck worker's handlers around one ``HubRuntime`` (sessions, settings).
    ``publish`` sends request messages to ``sr.inbound`` (default: this runtime's broker)."""
    settings = runtime.settings
    services = CrosscheckServices(
        sessions=runtime.sessions,
        policy=lambda: settings.intake.crosscheck_policy,
        publish=publish or BrokerPublisher(lambda: connect(settings, wait_for=0)),
    )
    handlers = HandlerRegistry("crosscheck", services)
    for key in REGISTRATION_EVENTS:
        handlers.register(key, handle_registration, transactional=False)
    handlers.register(CONSENT_EVENT, handle_consent, transactional=False)
    for key in RESULT_EVENTS:
        handlers.register(key, handle_result, transactional=False)
    handlers.register("#", lambda _e, _c: IGNORED, transactional=False)
    return handlers


# --- the registry's facts -------------------------------------------------------------------


def person_facts(session: Session, person_id: uuid.UUID) -> PersonFacts | None:
    """What ``decide`` needs to know of one person (None: not in the registry)."""
    person = session.get(Person, person_id)
    if person is None:
        return None
    national = session.execute(
        select(Identifier.verified).where(
            Identifier.person_id == person_id, Identifier.system == "national_id"
        )
    ).first()
    row = session.get(IdentityCheck, person_id)
    household = household_of(session, person_id)
    subject = [Consent.person_id == person_id]
    if household is not None:
        subject.append(Consent.household_id == household)
    consent = bool(
        session.scalar(
            select(
                exists().where(
                    and_(
                        Consent.purpose == IDENTITY_CHECK_PURPOSE,
                        Consent.revoked_at.is_(None),
                        or_(*subject),
                    )
                )
            )
        )
    )
    return PersonFacts(
        has_national_id=national is not None,
        national_id_verified=bool(national and national[0]),
        has_result=person.verification_status
        in (VerificationStatus.VERIFIED, VerificationStatus.FAILED)
        or (row is not None and row.status in ("verified", "failed")),
        pending=row is not None and row.status == "pending",
        consent=consent,
        deceased=bool(person.is_deceased),
    )


def _people_of(event: dict[str, Any], routing: str) -> list[str]:
    data = event.get("data") or {}
    if routing == "household.created":
        return [str(m["person_id"]) for m in data.get("members") or [] if m.get("person_id")]
    if routing == "household.member_added":
        return [str(data["person_id"])] if data.get("person_id") else []
    # household.updated: a member's identity fields changed (a re-registration of them)
    changed = {str(f).removeprefix("person.") for f in data.get("changed_fields") or []}
    if data.get("person_id") and changed & IDENTITY_FIELDS:
        return [str(data["person_id"])]
    return []


def _members(session: Session, household_id: uuid.UUID) -> list[str]:
    return [
        str(p)
        for p in session.scalars(
            select(Membership.person_id).where(
                Membership.household_id == household_id, Membership.end_date.is_(None)
            )
        )
    ]


# --- the handlers ---------------------------------------------------------------------------


def handle_registration(event: dict[str, Any], ctx: HandlerContext) -> HandlerResult:
    routing = ctx.delivery.message.routing_key
    return _evaluate(event, ctx, _people_of(event, routing), only_waiting_for_consent=False)


def handle_consent(event: dict[str, Any], ctx: HandlerContext) -> HandlerResult:
    """A consent to the identity check: check the people it covers whose registration found
    none (their row says so), by the same policy."""
    data = event.get("data") or {}
    if data.get("purpose") != IDENTITY_CHECK_PURPOSE:
        return IGNORED
    services: CrosscheckServices = ctx.services
    with services.sessions() as session:
        if data.get("person_id"):
            people = [str(data["person_id"])]
        elif data.get("household_id"):
            people = _members(session, uuid.UUID(str(data["household_id"])))
        else:
            people = []
    return _evaluate(event, ctx, people, only_waiting_for_consent=True)


def _evaluate(
    event: dict[str, Any],
    ctx: HandlerContext,
    people: Iterable[str],
    *,
    only_waiting_for_consent: bool,
) -> HandlerResult:
    services: CrosscheckServices = ctx.services
    policy = services.policy()
    event_id = str(event.get("id"))
    trigger = ctx.delivery.message.routing_key[:64]
    messages: list[Message] = []
    counts: dict[str, int] = {}
    now = utcnow()
    with services.sessions() as session, session.begin():
        for person in people:
            person_id = uuid.UUID(person)
            row = session.get(IdentityCheck, person_id)
            if only_waiting_for_consent and not (
                row is not None and row.status == "not_checked" and row.reason == _NO_CONSENT
            ):
                continue
            facts = person_facts(session, person_id)
            if facts is None:
                continue
            decision = decide(policy, facts)
            counts[decision] = counts.get(decision, 0) + 1
            if decision == "skip":
                continue
            if row is None:
                row = IdentityCheck(person_id=person_id)
                session.add(row)
            if decision == "check":
                message = request_message(event_id, person)
                if row.message_id == message.message_id and row.status != "not_checked":
                    continue  # this very request was queued (and maybe answered) already
                messages.append(message)
                row.status, row.reason = "pending", None
                row.message_id, row.requested_at = message.message_id, now
            elif row.status in ("verified", "failed"):
                continue  # the last outcome stays what the household shows
            else:
                row.status, row.reason = "not_checked", NOT_CHECKED_REASONS[decision]
            row.trigger, row.updated_at = trigger, now
    if messages:
        services.publish(messages)
    notes = tuple(f"{k}={v}" for k, v in sorted(counts.items()))
    return HandlerResult("checks_queued" if messages else "no_check", notes)


_NO_CONSENT = NOT_CHECKED_REASONS["no_consent"]


def handle_result(event: dict[str, Any], ctx: HandlerContext) -> HandlerResult:
    """Keep a person's last outcome (and a failure's reason) for the household record."""
    services: CrosscheckServices = ctx.services
    data = event.get("data") or {}
    if not data.get("person_id"):
        return IGNORED
    person_id = uuid.UUID(str(data["person_id"]))
    verified = ctx.delivery.message.routing_key == "person.verified"
    with services.sessions() as session, session.begin():
        row = session.get(IdentityCheck, person_id)
        if row is None:
            row = IdentityCheck(person_id=person_id)
            session.add(row)
        row.status = "verified" if verified else "failed"
        row.reason = None if verified else str(data.get("reason") or "")[:500] or None
        row.updated_at = utcnow()
    return HandlerResult("recorded")
