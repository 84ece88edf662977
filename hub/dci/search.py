"""One ``search_request`` item -> one ``search_response`` item.

Everything a single request can get wrong (duplicate reference_id, a query we cannot read, an
unknown attribute, a bad sort or page) rejects that item alone with the spec's reason code;
the other items of the batch are answered normally.

What the caller may see is decided before the query runs (``ReadScope``): a program's search
runs on ``HouseholdQueries.scoped`` (only households and members its consents cover; the
request's ``search_criteria.consent.purpose.code``, when given, narrows it to consents for that
purpose), and a caller that may read nothing personal gets an empty success saying why.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from registry_core.consent import NOTHING_TO_READ, ReadScope
from registry_core.queries import SORTABLE, FoundHousehold, HouseholdQueries
from standards.dci import codes
from standards.dci.envelope import timestamp
from standards.dci.query import QueryError, parse_pagination, parse_query, parse_sort
from standards.dci.sr_record import group_record

LOCALE_LENGTH = 3  # ISO 639-3


def consent_purpose(criteria: dict[str, Any]) -> str | None:
    """``search_criteria.consent.purpose.code`` when the sender names one."""
    consent = criteria.get("consent")
    purpose = consent.get("purpose") if isinstance(consent, dict) else None
    code = purpose.get("code") if isinstance(purpose, dict) else None
    return code[:64] if isinstance(code, str) and code.strip() else None


def _reject(answer: dict[str, Any], reason_code: str, message: str) -> dict[str, Any]:
    return {
        **answer,
        "status": codes.RJCT,
        "status_reason_code": reason_code,
        "status_reason_message": message[:999],
    }


def answer_item(
    item: dict[str, Any],
    seen: set[str],
    queries: HouseholdQueries,
    scope: ReadScope,
    *,
    default_page_size: int,
    max_page_size: int,
    connection: Connection | None = None,
    touched: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One item's answer; the household records it returns are added to ``touched`` (for
    the read audit)."""
    reference = str(item["reference_id"])
    answer: dict[str, Any] = {"reference_id": reference, "timestamp": timestamp()}
    locale = item.get("locale")
    if isinstance(locale, str) and len(locale) == LOCALE_LENGTH and locale.isalpha():
        answer["locale"] = locale.lower()
    if reference in seen:
        return _reject(
            answer,
            codes.RJCT_REFERENCE_ID_DUPLICATE,
            "this reference_id appears twice in the message",
        )
    seen.add(reference)
    criteria = item["search_criteria"]
    try:
        if criteria.get("response_entity") == "Member":
            raise QueryError(
                codes.RJCT_SEARCH_CRITERIA, "this registry answers with Group records only"
            )
        node = parse_query(criteria.get("query_type"), criteria.get("query"))
        sort = parse_sort(criteria.get("sort"), SORTABLE)
        page = parse_pagination(
            criteria.get("pagination"), default_size=default_page_size, max_size=max_page_size
        )
        found: list[FoundHousehold]
        if scope.nothing:
            found, total = [], 0
            answer["status_reason_message"] = NOTHING_TO_READ
        else:
            view = queries.scoped(scope.consent(consent_purpose(criteria)))
            found, total = view.search(node, sort, page, connection=connection)
    except QueryError as error:
        return _reject(answer, error.reason_code, error.message)
    if touched is not None:
        touched.extend(f.record for f in found)
    records = [
        group_record(
            f.record, poverty_score=f.poverty_score, poverty_score_type=f.poverty_score_type
        )
        for f in found
    ]
    return {
        **answer,
        "status": codes.SUCC,
        "data": {
            "version": codes.PROTOCOL_VERSION,
            "reg_type": codes.REG_TYPE_SOCIAL,
            "reg_record_type": codes.RECORD_TYPE_GROUP,
            "reg_records": records,
        },
        "pagination": {"page_size": page.size, "page_number": page.number, "total_count": total},
    }


def failed_answer(
    message: dict[str, Any], correlation_id: str, reason: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``rjct`` on-search message of a search that failed on our side, and its items: the
    sender learns it gets no records (with the ids to match and the reason), not silence."""
    items = [
        {
            "reference_id": str(item["reference_id"]),
            "timestamp": timestamp(),
            "status": codes.RJCT,
            "status_reason_message": reason[:999],
        }
        for item in message["search_request"]
    ]
    answer = {
        "transaction_id": message["transaction_id"],
        "correlation_id": correlation_id,
        "search_response": items,
    }
    return answer, items
