"""One event, many subscribers: who gets it and with what content (consent applied).

Consent is decided here, per subscriber and per event, at the moment of dispatch: a program
with an active (not revoked) consent for the subscription's purpose, given by the person or by
their household (the rule is ``registry_core.consent``'s, shared with the DCI and FHIR reads),
receives the event data enriched with personal data from the registry (names, sex, dates of
birth and death, identifier values decrypted). A program without it receives only what cannot
identify anyone: the event type and time, the admin area, and an opaque reference (an HMAC of
the subject, different for every program, so it can count and de-duplicate but
cannot link people across programs or back to the registry).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.broker.base import Message
from hub.subscriptions.matching import program_matches, subscription_matches
from hub.subscriptions.tables import Subscription
from registry_core.consent import consent_purposes
from registry_core.crypto import IdentifierCipher
from registry_core.models import Household, Identifier, Membership, Person
from registry_core.records import identifier_record
from standards.cloudevents import copy_event

DELIVER_PREFIX = "deliver"
H_EVENT_ID = "x-sr-event-id"
H_SEQUENCE = "x-sr-sequence"
H_PERSONAL = "x-sr-personal"
H_SUBSCRIPTION = "x-sr-subscription"
H_REDRIVE = "x-sr-redrive"
CONTENT_TYPE = "application/cloudevents+json"

PERSON_FIELDS = ("given_name", "family_name", "other_names", "sex", "birth_date", "death_date")


def deliver_key(code: str) -> str:
    """Routing key (on ``sr.events``) of one subscription's deliveries: ``deliver.<code>``."""
    return f"{DELIVER_PREFIX}.{code}"


@dataclass(frozen=True)
class Planned:
    subscription: Subscription
    message: Message
    personal: bool
    cloudevent: dict[str, Any]


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def subject_ids(data: Any) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(person_id, household_id) an event is about, from its data."""
    if not isinstance(data, dict):
        return None, None
    return _uuid(data.get("person_id")), _uuid(data.get("household_id"))


def opaque_ref(key: bytes, program: str, subject: str) -> str:
    """A per-program pseudonym of ``subject``: stable for that program, unlinkable across."""
    return hmac.new(key, f"{program}|{subject}".encode(), hashlib.sha256).hexdigest()[:32]


def _person_details(session: Session, person_id: uuid.UUID, cipher: IdentifierCipher) -> Any:
    person = session.get(Person, person_id)
    if person is None:
        return None
    details: dict[str, Any] = {"id": str(person.id)}
    for name in PERSON_FIELDS:
        value = getattr(person, name)
        if value is not None:
            details[name] = value.isoformat() if hasattr(value, "isoformat") else value
    details["identifiers"] = _identifiers(session, person.id, cipher)
    return details


def _identifiers(session: Session, person_id: uuid.UUID, cipher: IdentifierCipher) -> list[Any]:
    rows = session.scalars(
        select(Identifier).where(Identifier.person_id == person_id).order_by(Identifier.system)
    )
    return [
        {"system": r["system"], "value": r["value"], "verified": r["verified"]}
        for r in (identifier_record(i, cipher) for i in rows)
    ]


def _household_details(session: Session, household_id: uuid.UUID) -> Any:
    household = session.get(Household, household_id)
    if household is None:
        return None
    members = session.execute(
        select(Person.id, Person.given_name, Person.family_name)
        .join(Membership, Membership.person_id == Person.id)
        .where(Membership.household_id == household_id, Membership.end_date.is_(None))
        .order_by(Membership.start_date, Person.id)
    ).all()
    return {
        "id": str(household.id),
        "registry_number": household.registry_number,
        "admin_area_code": household.admin_area_code,
        "head_person_id": str(household.head_person_id) if household.head_person_id else None,
        "members": [
            {"person_id": str(m.id), "given_name": m.given_name, "family_name": m.family_name}
            for m in members
        ],
    }


class Fanout:
    """Builds per-subscriber deliveries; holds the keys, not any state between events."""

    def __init__(self, cipher: IdentifierCipher, pseudonym_key: bytes) -> None:
        self.cipher = cipher
        self.pseudonym_key = pseudonym_key

    def content(
        self,
        session: Session,
        subscription: Subscription,
        event: dict[str, Any],
        sequence: int | None,
    ) -> tuple[dict[str, Any], bool] | None:
        """The CloudEvent this subscriber gets, and whether it carries personal data;
        None when the enrolment filter excludes the subject."""
        raw_data = event.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        person_id, household_id = subject_ids(data)
        purposes = consent_purposes(session, subscription.program_code, person_id, household_id)
        if (subscription.filters or {}).get("enrolled_only") and not purposes:
            return None
        personal = subscription.purpose in purposes
        extensions: dict[str, str | int | bool] = {"srsubscription": subscription.code}
        if sequence is not None:
            extensions["srsequence"] = str(sequence)
        extensions["srpersonal"] = personal
        if personal:
            enriched = dict(data)
            if person_id is not None:
                enriched["person"] = _person_details(session, person_id, self.cipher)
            if household_id is not None and event.get("subject", "").startswith("household/"):
                enriched["household"] = _household_details(session, household_id)
            out = copy_event(
                event, subject=event.get("subject"), data=enriched, extensions=extensions
            )
        else:
            ref = opaque_ref(
                self.pseudonym_key, subscription.program_code, str(event.get("subject", ""))
            )
            out = copy_event(
                event,
                subject=f"ref/{ref}",
                data={
                    "admin_area_code": data.get("admin_area_code"),
                    "subject_ref": ref,
                    "personal_data": False,
                },
                extensions=extensions,
            )
        return out, personal

    def plan(
        self,
        session: Session,
        subscriptions: Sequence[Subscription],
        routing_key: str,
        event: dict[str, Any],
        sequence: int | None,
        *,
        redrive: bool = False,
    ) -> list[Planned]:
        """The messages for every subscription this event matches, in the given order."""
        planned: list[Planned] = []
        for subscription in subscriptions:
            if not subscription_matches(
                subscription.event_types, subscription.filters or {}, routing_key, event.get("data")
            ) or not program_matches(subscription.program_code, routing_key, event.get("data")):
                continue
            built = self.content(session, subscription, event, sequence)
            if built is None:
                continue
            cloudevent, personal = built
            headers: dict[str, Any] = {
                H_EVENT_ID: str(event.get("id")),
                H_SUBSCRIPTION: subscription.code,
                H_PERSONAL: personal,
            }
            if sequence is not None:
                headers[H_SEQUENCE] = sequence
            if redrive:
                headers[H_REDRIVE] = True
            body = json.dumps(cloudevent, separators=(",", ":"), sort_keys=True).encode()
            message = Message(
                body=body,
                routing_key=deliver_key(subscription.code),
                message_id=f"{event.get('id')}.{subscription.code}"[:255],
                headers=headers,
                content_type=CONTENT_TYPE,
            )
            planned.append(Planned(subscription, message, personal, cloudevent))
        return planned
