"""DCI (SPDCI) CRVS messages on the client side: what we send, and reading what comes back or
is pushed to us. No I/O.

Envelope headers, acknowledgements and the envelope checks come from ``standards.dci`` (the same
code the hub's own DCI server uses); this module adds the CRVS-specific parts: search and
subscribe criteria, the on-search / notify message shapes, and turning ``reg_records`` into raw
records. Damage is handled at two levels, as the DCI spec does: a message that is not the
promised shape is refused whole (``EnvelopeError`` with an ``err.*`` code), while one bad record
inside a good message is rejected with a reason and its neighbours still go through.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from connectors.base import RawRecord
from connectors.civil_registry.feed import Rejection
from connectors.civil_registry.settings import DCI_RECORD_TYPE_BY_EVENT, VITAL_EVENTS
from standards.dci import codes
from standards.dci.envelope import EnvelopeError, timestamp

CRVS_REG_TYPE = "ns:org:RegistryType:Civil"  # the CRVS API's example reg_type
PERSON_RECORD_TYPE = "spdci-extensions-dci:Person"  # the CRVS API's example reg_record_type
LOCALE = "eng"  # ISO 639-3, as the spec's LanguageCode pattern ^[a-z]{3}$ requires
ID_TYPES = ("UIN", "BRN", "DRN", "MRN")
DATE_ATTRIBUTES = ("birth_date", "death_date", "registration_date", "event_date")
MAX_ITEMS = 1000  # notify events / search responses per message we are willing to read


class DciAnswerError(ValueError):
    """The registry's answer is not the DCI shape promised; the message names the place."""


def new_id() -> str:
    return uuid.uuid4().hex


# Every spelling of a vital event seen in DCI texts, squashed (lower case, no "_", "-", " "):
# the spec's codes (live_birth), its RegistryEventType names (LiveBirth), and BIRTH.
_EVENT_WORDS: dict[str, str] = {
    **{code.replace("_", ""): code for code in VITAL_EVENTS},
    **{name.lower(): code for code, name in VITAL_EVENTS.items()},
    "birth": "live_birth",
}
_SQUASH = re.compile(r"[\s_\-]+")


def vital_event(value: Any) -> str | None:
    """The spec's vital-event code (``live_birth``, ``death``, ``fetal_death``, ``marriage``,
    ``divorce``, ``adoption``) from any spelling registries use:
    ``spdci-common:RegistryEventType:LiveBirth``, ``LiveBirth``, ``ns:org:..:death``,
    ``live_birth``, ``BIRTH``; None when it names no vital event."""
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        return None
    word = _SQUASH.sub("", value.rsplit(":", 1)[-1]).lower()
    return _EVENT_WORDS.get(word)


def normalise_event_type(value: Any) -> str | None:
    """``live_birth`` / ``death`` (the events this hub takes in) from any spelling; else None."""
    code = vital_event(value)
    return code if code in DCI_RECORD_TYPE_BY_EVENT else None


# --- building --------------------------------------------------------------------------------


def id_criteria(id_type: str, value: str, event_type: str | None = None) -> dict[str, Any]:
    """``search_criteria`` for one identifier (``idtype-value``)."""
    kind = id_type.strip().upper()
    if kind not in ID_TYPES:
        raise ValueError(f"identifier type must be one of {', '.join(ID_TYPES)}")
    if not isinstance(value, str) or not value.strip():
        raise ValueError("an identifier value is required")
    criteria: dict[str, Any] = {
        "version": codes.PROTOCOL_VERSION,
        "query_type": "idtype-value",
        "query": {"type": kind, "value": value.strip()},
    }
    if event_type:
        criteria["reg_event_type"] = event_type
    return criteria


def _day(value: date | datetime | str) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def date_criteria(
    attribute: str,
    *,
    since: date | datetime | str | None = None,
    until: date | datetime | str | None = None,
    event_type: str | None = None,
    page_size: int | None = None,
    page_number: int = 1,
) -> dict[str, Any]:
    """``search_criteria`` for a date range (a ``predicate`` list: ``ge since`` and ``le
    until``), optionally paged and narrowed to one event type."""
    if attribute not in DATE_ATTRIBUTES:
        raise ValueError(f"date attribute must be one of {', '.join(DATE_ATTRIBUTES)}")
    if since is None and until is None:
        raise ValueError("give since, until or both")
    predicate: list[dict[str, Any]] = []
    for operator, bound in (("ge", since), ("le", until)):
        if bound is not None:
            predicate.append(
                {
                    "seq_num": len(predicate) + 1,
                    "expression1": {
                        "attribute_name": attribute,
                        "operator": operator,
                        "attribute_value": _day(bound),
                    },
                }
            )
    criteria: dict[str, Any] = {
        "version": codes.PROTOCOL_VERSION,
        "query_type": "predicate",
        "query": predicate,
        "sort": [{"attribute_name": attribute, "sort_order": "asc"}],
    }
    if event_type:
        criteria["reg_event_type"] = event_type
    if page_size is not None:
        criteria["pagination"] = {"page_size": page_size, "page_number": page_number}
    return criteria


def search_message(
    criteria_list: Sequence[Mapping[str, Any]],
    *,
    locale: str = LOCALE,
    reg_type: str = CRVS_REG_TYPE,
) -> dict[str, Any]:
    """A ``SearchRequest``: one ``search_request`` item per criteria block."""
    if not criteria_list:
        raise ValueError("a search needs at least one criteria block")
    return {
        "transaction_id": new_id(),
        "search_request": [
            {
                "reference_id": new_id(),
                "timestamp": timestamp(),
                "search_criteria": {"reg_type": reg_type, **criteria},
                "locale": locale,
            }
            for criteria in criteria_list
        ],
    }


def registered_since(day: date) -> list[dict[str, Any]]:
    """The subscribe ``filter`` for "every event registered on or after ``day``": a predicate
    list (the spec's ExpPredicateWithConditionList, its own example of a subscribe filter being
    "any new birth ... after 1/jan/2023")."""
    return [
        {
            "seq_num": 1,
            "expression1": {
                "attribute_name": "registration_date",
                "operator": "ge",
                "attribute_value": day.isoformat(),
            },
        }
    ]


def filter_type_of(value: Any) -> str:
    """The spec's ``filter_type`` (a ``query_type``) for a filter value."""
    if isinstance(value, list):
        return "predicate"
    if isinstance(value, dict) and isinstance(value.get("value"), dict):
        return "expression"
    return "idtype-value"


def subscribe_message(
    event_types: Iterable[str],
    *,
    filter: Any,
    filter_type: str | None = None,
    locale: str = LOCALE,
    reg_type: str = CRVS_REG_TYPE,
    record_type: str = PERSON_RECORD_TYPE,
) -> dict[str, Any]:
    """A ``SubscribeRequest``: one ``subscribe_request`` item per event type, each with the
    ``filter`` and ``notify_record_type`` the spec requires."""
    if not filter:
        raise ValueError("a DCI subscribe needs a filter (subscribe_criteria.filter)")
    return {
        "transaction_id": new_id(),
        "subscribe_request": [
            {
                "reference_id": new_id(),
                "timestamp": timestamp(),
                "subscribe_criteria": {
                    "version": codes.PROTOCOL_VERSION,
                    "reg_type": reg_type,
                    "reg_event_type": event_type,
                    "filter_type": filter_type or filter_type_of(filter),
                    "filter": filter,
                    "notify_record_type": record_type,
                },
                "locale": locale,
            }
            for event_type in event_types
        ],
    }


def subscribe_references(message: Mapping[str, Any]) -> dict[str, str]:
    """reference_id -> event type of a subscribe message (to read its on-subscribe by)."""
    return {
        str(item["reference_id"]): str(item["subscribe_criteria"]["reg_event_type"])
        for item in message["subscribe_request"]
    }


def unsubscribe_message(codes_: Sequence[str]) -> dict[str, Any]:
    return {
        "transaction_id": new_id(),
        "timestamp": timestamp(),
        "subscription_codes": list(codes_),
    }


# --- reading ---------------------------------------------------------------------------------

_RECORDS = {"type": ["array", "object"]}
_DATA = {"type": "object", "properties": {"reg_records": _RECORDS}}
_ITEMS = {"type": "array", "maxItems": MAX_ITEMS, "items": {"type": "object"}}
MESSAGE_SCHEMAS: dict[str, dict[str, Any]] = {
    codes.NOTIFY: {
        "type": "object",
        "required": ["notify_event"],
        "properties": {
            "notify_event": {
                "type": ["array", "object"],
                "maxItems": MAX_ITEMS,
                "items": {"type": "object"},
            }
        },
    },
    codes.ON_SEARCH: {
        "type": "object",
        "required": ["transaction_id", "search_response"],
        "properties": {
            "transaction_id": {"type": ["string", "integer"]},
            "search_response": _ITEMS,
        },
    },
    codes.ON_SUBSCRIBE: {
        "type": "object",
        "required": ["transaction_id"],
        "properties": {
            "transaction_id": {"type": ["string", "integer"]},
            "subscribe_response": _ITEMS,
        },
    },
    codes.ON_UNSUBSCRIBE: {
        "type": "object",
        "required": ["transaction_id"],
        "properties": {"transaction_id": {"type": ["string", "integer"]}},
    },
}
_VALIDATORS = {action: Draft202012Validator(s) for action, s in MESSAGE_SCHEMAS.items()}


def check_message(action: str, message: Any) -> dict[str, Any]:
    """The message of an incoming ``action`` call, or ``EnvelopeError(err.request.bad)``."""
    error = best_match(_VALIDATORS[action].iter_errors(message))
    if error is not None:
        where = ".".join(["message", *(str(p) for p in error.absolute_path)])
        reason = "rjct.total_count.limit_exceeded" if error.validator == "maxItems" else None
        raise EnvelopeError(codes.ERR_REQUEST_BAD, _explain(error, where), reason_code=reason)
    assert isinstance(message, dict)
    return message


def _explain(error: Any, where: str) -> str:
    """What is wrong and where, without echoing the sender's values (they may name people)."""
    expected = error.validator_value
    if error.validator == "required":
        missing = [name for name in expected if name not in (error.instance or {})]
        return f"{where}: {', '.join(missing) or 'a field'} is required"
    if error.validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return f"{where}: must be of type {' or '.join(kinds)}"
    if error.validator == "maxItems":
        return f"{where}: at most {expected} items"
    return f"{where}: violates {error.validator}"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _identifier(record: Mapping[str, Any], kind: str) -> str | None:
    for item in _as_list(record.get("identifier")):
        if isinstance(item, dict) and item.get("identifier_type") == kind:
            value = item.get("identifier_value")
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    return None


def carries(record: Mapping[str, Any], id_type: str, value: str) -> bool:
    """True if ``record`` holds identifier ``id_type`` = ``value`` (a registration number
    counts as the BRN / DRN of its event)."""
    if _identifier_values(record, id_type) & {value}:
        return True
    number = record.get("registration_number")
    event_type = normalise_event_type(record.get("reg_event_type"))
    own_type = {"live_birth": "BRN", "death": "DRN"}.get(event_type or "")
    return own_type == id_type and number is not None and str(number) == value


def _identifier_values(record: Mapping[str, Any], kind: str) -> set[str]:
    return {
        str(item.get("identifier_value"))
        for item in _as_list(record.get("identifier"))
        if isinstance(item, dict) and str(item.get("identifier_type", "")).upper() == kind
    }


@dataclass
class Extracted:
    records: list[RawRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def extract_records(
    data: Any,
    *,
    reference_id: str,
    origin: str,
    into: Extracted | None = None,
) -> Extracted:
    """Raw ``dci_birth`` / ``dci_death`` records from one ``data`` block (``reg_records`` as a
    list or a single object); the payload of each is the person record, unchanged."""
    out = into or Extracted()
    where = f"{origin} reference {reference_id[:64]}"
    if not isinstance(data, dict):
        out.rejected.append(Rejection(where, "data is not an object"))
        return out
    block_type = data.get("reg_event_type")
    for index, record in enumerate(_as_list(data.get("reg_records")), start=1):
        place = f"{where}, record {index}"
        if not isinstance(record, dict):
            out.rejected.append(Rejection(place, "the record is not a JSON object"))
            continue
        named = vital_event(block_type) or vital_event(record.get("reg_event_type"))
        event_type = named if named in DCI_RECORD_TYPE_BY_EVENT else None
        if event_type is None:
            reason = (
                f"reg_event_type {named} is not taken in by this hub (only live births and deaths)"
                if named
                else "reg_event_type is missing or not a vital event of the spec "
                "(e.g. spdci-common:RegistryEventType:LiveBirth, live_birth, death)"
            )
            out.rejected.append(Rejection(place, reason))
            continue
        number = record.get("registration_number")
        if not (isinstance(number, str | int) and not isinstance(number, bool) and str(number)):
            number = _identifier(record, "BRN" if event_type == "live_birth" else "DRN")
        source_id = str(number)[:256] if number else f"{reference_id[:200]}:{index}"
        out.records.append(
            RawRecord(
                DCI_RECORD_TYPE_BY_EVENT[event_type],
                record,
                source_id,
                headers={
                    "origin": origin,
                    "reference_id": reference_id[:200],
                    "reg_event_type": event_type,
                },
            )
        )
    return out


def notify_records(message: Mapping[str, Any]) -> Extracted:
    out = Extracted()
    for index, event in enumerate(_as_list(message.get("notify_event")), start=1):
        reference = event.get("reference_id") if isinstance(event, dict) else None
        reference_id = str(reference) if reference not in (None, "") else f"event-{index}"
        if not isinstance(event, dict):
            out.rejected.append(Rejection(f"notify event {index}", "not a JSON object"))
            continue
        extract_records(event.get("data"), reference_id=reference_id, origin="dci_notify", into=out)
    return out


@dataclass(frozen=True)
class SearchResult:
    """One ``search_response`` item: its status and the person records found."""

    reference_id: str
    status: str
    reason_code: str | None
    reason_message: str | None
    records: list[dict[str, Any]]
    event_type: str | None
    data: dict[str, Any] | None
    pagination: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.status == codes.SUCC


def search_results(message: Any) -> list[SearchResult]:
    """Read the ``message`` of an on-search body (sync answer or callback)."""
    if not isinstance(message, dict):
        raise DciAnswerError("the answer has no message object")
    if message.get("ack_status") in (codes.ERR, codes.NACK):
        found = message.get("error")
        error = found if isinstance(found, dict) else {}
        raise DciAnswerError(f"the registry refused the search: {str(error.get('code'))[:60]}")
    items = message.get("search_response")
    if not isinstance(items, list):
        raise DciAnswerError("message.search_response is not a list")
    results: list[SearchResult] = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise DciAnswerError(f"message.search_response[{index}] is not an object")
        data = item.get("data") if isinstance(item.get("data"), dict) else None
        records = [r for r in _as_list((data or {}).get("reg_records")) if isinstance(r, dict)]
        results.append(
            SearchResult(
                reference_id=str(item.get("reference_id", "")),
                status=str(item.get("status", "")),
                reason_code=item.get("status_reason_code"),
                reason_message=item.get("status_reason_message"),
                records=records,
                event_type=normalise_event_type((data or {}).get("reg_event_type")),
                data=data,
                pagination=item.get("pagination")
                if isinstance(item.get("pagination"), dict)
                else None,
            )
        )
    return results
