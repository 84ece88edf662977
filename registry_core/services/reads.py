"""Reads: households and people as canonical records, pages, provenance, the outbox.

Nothing here writes. Records come from ``registry_core.records`` (the canonical shape, with
identifier values opened for callers allowed to see them; the API decides who is). Searches
by attribute for the standard APIs are ``registry_core.queries``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry_core.areas import within_areas
from registry_core.models import Household, HouseholdStatus, OutboxEvent
from registry_core.records import household_record, person_record
from registry_core.services.base import (
    Workspace,
    current_household,
    household_by_id,
    person_by_id,
)
from registry_core.services.provenance import assertions_of


class Reads:
    """The registry's reads."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def get_household(self, household_id: uuid.UUID | str) -> dict[str, Any]:
        """One household with its current members (none once every member has died)."""
        cipher = self._ws.cipher
        return self._ws.read(
            lambda s: household_record(s, household_by_id(s, household_id), cipher)
        )

    def get_person(self, person_id: uuid.UUID | str) -> dict[str, Any]:
        cipher = self._ws.cipher
        return self._ws.read(lambda s: person_record(s, person_by_id(s, person_id), cipher))

    def person_household_area(self, person_id: uuid.UUID | str) -> str | None:
        """Admin area of the person's current household (for area-scoped access checks)."""

        def work(session: Session) -> str | None:
            household = current_household(session, person_by_id(session, person_id).id)
            return household.admin_area_code if household else None

        return self._ws.read(work)

    def list_households(
        self,
        *,
        area_prefixes: Sequence[str] | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of households (newest first) and the total count, filtered by area prefixes."""
        cipher = self._ws.cipher

        def work(session: Session) -> tuple[list[dict[str, Any]], int]:
            query = select(Household)
            if area_prefixes is not None:
                if not area_prefixes:
                    return [], 0
                query = query.where(within_areas(Household.admin_area_code, area_prefixes))
            if status:
                query = query.where(Household.status == status)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(Household.created_at.desc(), Household.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return [household_record(session, h, cipher) for h in rows], total

        return self._ws.read(work)

    def household_ids_in_area(self, admin_area_code: str, limit: int = 100_000) -> list[str]:
        """Ids of the active households whose area is ``admin_area_code`` or inside it."""

        def work(session: Session) -> list[str]:
            rows = session.scalars(
                select(Household.id)
                .where(
                    within_areas(Household.admin_area_code, [admin_area_code]),
                    Household.status != HouseholdStatus.DISSOLVED,
                )
                .order_by(Household.id)
                .limit(limit)
            )
            return [str(r) for r in rows]

        return self._ws.read(work)

    def provenance(self, entity: str, entity_id: uuid.UUID | str) -> list[dict[str, Any]]:
        """Every assertion about an entity with a flag marking the current value per field.

        Data-quality notes (field ``data_quality_note``) are listed too; they are never a
        current value."""
        if entity not in ("person", "household"):
            raise ValueError("entity must be person or household")
        precedence = self._ws.precedence

        def work(session: Session) -> list[dict[str, Any]]:
            key = uuid.UUID(str(entity_id))
            if entity == "person":
                person_by_id(session, key)
            else:
                household_by_id(session, key)
            return assertions_of(session, precedence, entity, key)

        return self._ws.read(work)

    def outbox_since(self, after_sequence: int = 0, limit: int = 100) -> list[OutboxEvent]:
        return self._ws.read(
            lambda s: list(
                s.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.sequence > after_sequence)
                    .order_by(OutboxEvent.sequence)
                    .limit(limit)
                )
            )
        )
