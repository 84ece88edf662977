"""The DCI (SPDCI) vocabulary: actions, statuses, error and reason codes, identifier types.

Spelled exactly as in the spec's OpenAPI files (kept outside the repo, see
``standards.dci.openapi``) and in our schemas (``schemas/``), so a typo here shows up as a schema
failure in the tests rather than at a partner's site.
"""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = "1.0.0"
SUPPORTED_VERSIONS: Final = frozenset({"1.0.0"})

# --- actions (header.action) -----------------------------------------------------------------
SEARCH: Final = "search"
ON_SEARCH: Final = "on-search"
SUBSCRIBE: Final = "subscribe"
ON_SUBSCRIBE: Final = "on-subscribe"
NOTIFY: Final = "notify"
UNSUBSCRIBE: Final = "unsubscribe"
ON_UNSUBSCRIBE: Final = "on-unsubscribe"
TXN_STATUS: Final = "txn-status"
TXN_ON_STATUS: Final = "txn-on-status"
ALL_ACTIONS: Final = frozenset(
    {
        SEARCH,
        ON_SEARCH,
        SUBSCRIBE,
        ON_SUBSCRIBE,
        NOTIFY,
        UNSUBSCRIBE,
        ON_UNSUBSCRIBE,
        TXN_STATUS,
        TXN_ON_STATUS,
    }
)

# --- acknowledgement (message.ack_status of the immediate answer) ---------------------------
ACK: Final = "ACK"
NACK: Final = "NACK"
ERR: Final = "ERR"

# --- request status (callback header.status, per-item status) -------------------------------
RCVD: Final = "rcvd"
PDNG: Final = "pdng"
SUCC: Final = "succ"
RJCT: Final = "rjct"

# --- transport-level error codes (Error.code) ----------------------------------------------
ERR_REQUEST_BAD: Final = "err.request.bad"
ERR_UNAUTHORIZED: Final = "err.request.unauthorized"
ERR_FORBIDDEN: Final = "err.request.forbidden"
ERR_NOT_FOUND: Final = "err.request.not_found"
ERR_TIMEOUT: Final = "err.request.timeout"
ERR_TOO_MANY: Final = "err.request.too_many_requests"
ERR_VERSION: Final = "err.version.not_supported"
ERR_SENDER_ID: Final = "err.sender_id.invalid"
ERR_SENDER_URI: Final = "err.sender_uri.invalid"
ERR_RECEIVER_ID: Final = "err.receiver_id.invalid"
ERR_SIGNATURE_MISSING: Final = "err.signature.missing"
ERR_SIGNATURE_INVALID: Final = "err.signature.invalid"
ERR_ENCRYPTION: Final = "err.encryption.invalid"
ERR_UNAVAILABLE: Final = "err.service.unavailable"

# --- header-level reason codes (MsgHeaderStatusReasonCode) ----------------------------------
RJCT_VERSION: Final = "rjct.version.invalid"
RJCT_MESSAGE_ID_DUPLICATE: Final = "rjct.message_id.duplicate"
RJCT_MESSAGE_TS: Final = "rjct.message_ts.invalid"
RJCT_ACTION_INVALID: Final = "rjct.action.invalid"
RJCT_ACTION_NOT_SUPPORTED: Final = "rjct.action.not_supported"
RJCT_TOTAL_COUNT_INVALID: Final = "rjct.total_count.invalid"
RJCT_TOTAL_COUNT_LIMIT: Final = "rjct.total_count.limit_exceeded"
HEADER_REASON_CODES: Final = frozenset(
    {
        RJCT_VERSION,
        RJCT_MESSAGE_ID_DUPLICATE,
        RJCT_MESSAGE_TS,
        RJCT_ACTION_INVALID,
        RJCT_ACTION_NOT_SUPPORTED,
        RJCT_TOTAL_COUNT_INVALID,
        RJCT_TOTAL_COUNT_LIMIT,
        "rjct.errors.too_many",
    }
)

# --- per-request reason codes (SearchStatusReasonCode, Subscribe..., UnSubscribe...) --------
RJCT_REFERENCE_ID_INVALID: Final = "rjct.reference_id.invalid"
RJCT_REFERENCE_ID_DUPLICATE: Final = "rjct.reference_id.duplicate"
RJCT_TIMESTAMP: Final = "rjct.timestamp.invalid"
RJCT_SEARCH_CRITERIA: Final = "rjct.search_criteria.invalid"
RJCT_FILTER: Final = "rjct.filter.invalid"
RJCT_SORT: Final = "rjct.sort.invalid"
RJCT_PAGINATION: Final = "rjct.pagination.invalid"
RJCT_TOO_MANY_RECORDS: Final = "rjct.search.too_many_records_found"
RJCT_ALREADY_SUBSCRIBED: Final = "rjct.event.already_subscribed"
RJCT_SUBSCRIPTION_CODE: Final = "rjct.subscription_code.invalid"
RJCT_ALREADY_UNSUBSCRIBED: Final = "rjct.event.already_unsubscribed"
RJCT_REQUESTER: Final = "rjct.requester.invalid"
RJCT_NOTIFY_TYPES: Final = "rjct.notify_types.invalid"
RJCT_NOTIFY_DETAILS: Final = "rjct.notify_details.invalid"
SEARCH_REASON_CODES: Final = frozenset(
    {
        RJCT_REFERENCE_ID_INVALID,
        RJCT_REFERENCE_ID_DUPLICATE,
        RJCT_TIMESTAMP,
        RJCT_SEARCH_CRITERIA,
        RJCT_FILTER,
        RJCT_SORT,
        RJCT_PAGINATION,
        RJCT_TOO_MANY_RECORDS,
    }
)

# --- registry vocabulary --------------------------------------------------------------------
REG_TYPE_SOCIAL: Final = "ns:org:RegistryType:Social"
RECORD_TYPE_GROUP: Final = "Group"
# NotifyEventRequest.data.reg_event_type admits exactly these two values in the SR spec.
EVENT_REGISTER: Final = "REGISTER"
EVENT_NEW_MEMBER: Final = "NewHouseHoldMember"

# DCI identifier types (code directory cd.com.01) -> our identifier systems. A DCI type absent
# here is not searchable: a query naming it is rejected with rjct.search_criteria.invalid.
IDENTIFIER_TYPE_TO_SYSTEM: Final[dict[str, str]] = {
    "UIN": "national_id",
    "BRN": "birth_registration",
    "DRN": "death_registration",
    "TIN": "tax_id",  # not in the DCI code directory: a local extension for tax numbers
}
SYSTEM_TO_IDENTIFIER_TYPE: Final[dict[str, str]] = {
    system: kind for kind, system in IDENTIFIER_TYPE_TO_SYSTEM.items()
}
# Other spellings senders use for the same identifier types.
IDENTIFIER_TYPE_ALIASES: Final[dict[str, str]] = {"NIN": "UIN", "NID": "UIN"}
# The household's own number in the registry (group_identifier of an SR Group record).
GROUP_IDENTIFIER_TYPE: Final = "SRN"
GROUP_IDENTIFIER_ALIASES: Final = frozenset({"SRN", "HOUSEHOLD_ID", "group_identifier"})


def identifier_system(id_type: str) -> str | None:
    """Our identifier system for a DCI identifier type (or an alias of one), else None."""
    canonical = IDENTIFIER_TYPE_ALIASES.get(id_type, id_type)
    return IDENTIFIER_TYPE_TO_SYSTEM.get(canonical)
