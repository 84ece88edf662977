"""The read audit for dashboard pages that show people without being a household page.

A page calls ``record_page_read`` with what it is about to render; the households and persons
those objects name (``ReadRecords.found_in``: any ``*household_id``, ``*person_id``,
``person_ids``, ``members`` and the ids of household records) are recorded as a read by the
staff user, channel ``ui``, before the page is rendered. Nothing named, nothing recorded.
"""

from __future__ import annotations

from typing import Any

from flask import g

from hub.api.audit_reads import record_read
from hub.readaudit.records import ReadRecords


def record_page_read(*shown: Any, households: tuple[Any, ...] = (), query_kind: str = "") -> None:
    """Record the read of what the page shows; ``households`` are household records shown
    whole (their own ids count, as well as their members')."""
    named = [{"household_id": str(h["id"])} for h in households if h and h.get("id")]
    records = ReadRecords.found_in([*named, *households, *shown])
    if records:
        record_read(records, "ui", principal=g.staff.principal(), query_kind=query_kind)
