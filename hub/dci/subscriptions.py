"""``registry/subscribe`` and ``registry/unsubscribe``: storing and ending subscriptions.

A subscription's filter is parsed and checked against the searchable attributes when it is
made, so a subscriber learns at once that a filter cannot work (``rjct.notify_details.invalid``)
instead of silently never being notified. The same sender subscribing twice to the same event
type with the same filter gets ``rjct.event.already_subscribed`` and the existing code.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.dci.notify import normalise_event_type
from hub.dci.tables import DciSubscription
from registry_core.queries import HouseholdQueries
from standards.dci import codes
from standards.dci.envelope import new_id, timestamp
from standards.dci.query import QueryError, parse_query
from standards.dci.signature import canonical_json
from standards.timeutil import utcnow

MAX_REFERENCE_LENGTH = 99


def subscribe_item(
    session: Session,
    queries: HouseholdQueries,
    *,
    sender_id: str,
    transaction_id: str,
    item: dict[str, Any],
    notify_url: str,
    seen: set[str],
) -> dict[str, Any]:
    """Store one ``subscribe_request`` item; its ``subscribe_response`` item."""
    reference = str(item["reference_id"])
    answer: dict[str, Any] = {"reference_id": reference, "timestamp": timestamp()}

    def reject(code: str, text: str) -> dict[str, Any]:
        return {
            **answer,
            "status": codes.RJCT,
            "status_reason_code": code,
            "status_reason_message": text[:999],
        }

    if reference in seen or len(reference) > MAX_REFERENCE_LENGTH:
        return reject(codes.RJCT_REFERENCE_ID_DUPLICATE, "reference_id repeated or too long")
    seen.add(reference)
    criteria = item["subscribe_criteria"]
    event = normalise_event_type(criteria.get("reg_event_type"))
    if event is None:
        return reject(
            codes.RJCT_NOTIFY_TYPES,
            "reg_event_type must be one of REGISTER, UPDATE, NewHouseHoldMember, LINK, "
            "UNLINK, DELETE",
        )
    try:
        node = parse_query(criteria.get("filter_type"), criteria.get("filter"))
        queries.condition(node)  # refuses unknown attributes now, not at notify time
    except QueryError as error:
        return reject(codes.RJCT_NOTIFY_DETAILS, f"filter: {error.message}")
    record_type = str(criteria.get("notify_record_type", ""))[:64]
    digest = hashlib.sha256(
        canonical_json([event, criteria.get("filter_type"), criteria["filter"], record_type])
    ).hexdigest()
    existing = session.scalar(
        select(DciSubscription).where(
            DciSubscription.sender_id == sender_id,
            DciSubscription.filter_hash == digest,
            DciSubscription.status == "subscribe",
        )
    )
    if existing is not None:
        return reject(
            codes.RJCT_ALREADY_SUBSCRIBED, f"the same subscription exists with code {existing.code}"
        )
    code = "sub-" + new_id()
    frequency = criteria.get("frequency")
    session.add(
        DciSubscription(
            code=code,
            sender_id=sender_id,
            callback_uri=notify_url,
            transaction_id=transaction_id,
            reference_id=reference,
            reg_event_type=event,
            filter_type=criteria.get("filter_type"),
            filter=criteria["filter"],
            filter_hash=digest,
            notify_record_type=record_type,
            frequency=frequency if isinstance(frequency, dict) else None,
        )
    )
    info: dict[str, Any] = {
        "version": codes.PROTOCOL_VERSION,
        "code": code,
        "status": "subscribe",
        "timestamp": timestamp(),
        "reg_type": codes.REG_TYPE_SOCIAL,
        "reg_event_type": event,
        "filter": criteria["filter"],
        "notify_record_type": record_type,
    }
    if criteria.get("filter_type"):
        info["filter_type"] = criteria["filter_type"]
    if isinstance(frequency, dict):
        info["frequency"] = frequency
    return {**answer, "status": codes.SUCC, "subscriptions": [info]}


def unsubscribe_codes(
    session: Session, sender_id: str, wanted: list[str]
) -> tuple[list[dict[str, str]], int]:
    """End the sender's subscriptions among ``wanted`` (idempotent); (states, unknown count).

    Codes of other senders count as unknown: a sender cannot end, or even learn of, someone
    else's subscription.
    """
    rows = {
        row.code: row
        for row in session.scalars(
            select(DciSubscription).where(
                DciSubscription.code.in_(wanted), DciSubscription.sender_id == sender_id
            )
        )
    }
    states: list[dict[str, str]] = []
    unknown = 0
    for code in dict.fromkeys(wanted):
        row = rows.get(code)
        if row is None:
            unknown += 1
            continue
        if row.status != "unsubscribe":
            row.status, row.ended_at = "unsubscribe", utcnow()
        states.append({"code": code, "status": "unsubscribe"})
    return states, unknown
