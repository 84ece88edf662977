"""Household search for the dashboard: by member name, registry number or household id, by
national ID, by area prefix and status, one page at a time.

Everything is decided in the database, so a page and its count agree and an area-scoped
viewer's page is filtered before it is counted (``within_areas``, the rule of
``Principal.may_touch_area``). Names match when every word of the query is part of the same
current member's given, family or other names, ignoring case (a word is also tried in its
folded form, ``fold_text``: ``O'Brien`` finds ``O Brien``). A national ID is never compared in
clear: the value is checked by the country profile and looked up through its keyed hash, as
the persons API does. Identifier values in the rows are masked here for viewers who may not
see them (``hub.api.visibility``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session

from hub.api.visibility import identifiers_visible_to, masked_household
from hub.auth.roles import Principal
from registry_core.areas import within_areas
from registry_core.crypto import IdentifierCipher
from registry_core.matching.normalise import fold_text
from registry_core.models import Household, HouseholdStatus, Identifier, Membership, Person
from registry_core.query_filters import holds_identifier
from registry_core.records import household_record

NATIONAL_ID_SYSTEM = "national_id"
MAX_WORDS = 6
MAX_TEXT = 200
PAGE_SIZE = 25


class SearchRefused(ValueError):
    """A search that cannot be run as asked; the message says what to change (no value)."""


@dataclass(frozen=True)
class SearchCriteria:
    """What the search form asked; empty fields do not filter."""

    text: str = ""  # member name words, a registry number or a household id
    national_id: str = ""
    area: str = ""
    status: str = ""

    @property
    def empty(self) -> bool:
        return not (self.text or self.national_id or self.area or self.status)

    def check(self) -> None:
        """Refuse what no household can match, with the reason (never echoing a value)."""
        if len(self.text) > MAX_TEXT:
            raise SearchRefused(f"the search text is longer than {MAX_TEXT} characters")
        if len(self.national_id) > 64:
            raise SearchRefused("a national ID is at most 64 characters")
        if len(self.area) > 64:
            raise SearchRefused("an area code is at most 64 characters")
        if self.status and self.status not in HouseholdStatus.ALL:
            raise SearchRefused("status must be one of " + ", ".join(HouseholdStatus.ALL))
        if len(self.text.split()) > MAX_WORDS:
            raise SearchRefused(f"give at most {MAX_WORDS} words of a name")


def _name_word(word: str) -> ColumnElement[bool]:
    """One word of a name inside one of the member's names (case ignored)."""
    variants = {v for v in (word.casefold(), fold_text(word)) if v}
    columns = (Person.given_name, Person.family_name, Person.other_names)
    return or_(
        *(
            func.lower(column).contains(variant, autoescape=True)
            for column in columns
            for variant in variants
        )
    )


def _member_named(words: Sequence[str]) -> ColumnElement[bool]:
    """Some current member of the household carries every word in their names."""
    return exists(
        select(Membership.id)
        .join(Person, Person.id == Membership.person_id)
        .where(
            Membership.household_id == Household.id,
            Membership.end_date.is_(None),
            *(_name_word(w) for w in words),
        )
        .correlate(Household)
    )


def _text_condition(text: str) -> ColumnElement[bool]:
    """A household id (exact), else a registry number (exact, or typed in lower case) or
    member name words."""
    try:
        return Household.id == uuid.UUID(text)
    except ValueError:
        pass
    words = text.split()
    # Registry numbers are issued upper case (``SR-...``); one typed in lower case is found.
    numbers = sorted({text, text.upper()})
    return or_(Household.registry_number.in_(numbers), _member_named(words))


def _national_id_condition(cipher: IdentifierCipher, value: str) -> ColumnElement[bool]:
    problem = cipher.profile.problem(NATIONAL_ID_SYSTEM, value)
    if problem is not None:
        raise SearchRefused(f"the national ID searched for is not valid: {problem.reason}")
    digests = cipher.lookup_hashes(NATIONAL_ID_SYSTEM, value)
    return holds_identifier(
        NATIONAL_ID_SYSTEM, Identifier.value_hash.in_(digests), [Membership.end_date.is_(None)]
    )


def search_households(
    session: Session,
    cipher: IdentifierCipher,
    criteria: SearchCriteria,
    viewer: Principal,
    *,
    limit: int = PAGE_SIZE,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A page of households matching ``criteria`` (newest first) and the total count.

    The area asked for is narrowed to ``viewer``'s own areas when the viewer is area-scoped
    (the recertification list's rule, ``hub.api.recertification.area_prefixes``). Rows are
    household records, identifiers masked unless ``viewer`` may see them."""
    from hub.api.recertification import area_prefixes as prefixes_for

    criteria.check()
    area_prefixes = prefixes_for(criteria.area or None, viewer)
    conditions: list[ColumnElement[bool]] = []
    if criteria.text:
        conditions.append(_text_condition(criteria.text))
    if criteria.national_id:
        conditions.append(_national_id_condition(cipher, criteria.national_id))
    if criteria.status:
        conditions.append(Household.status == criteria.status)
    if area_prefixes is not None:
        conditions.append(
            within_areas(Household.admin_area_code, area_prefixes) if area_prefixes else false()
        )
    query = select(Household).where(and_(*conditions)) if conditions else select(Household)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Household.created_at.desc(), Household.id).limit(limit).offset(offset)
    ).all()
    records = [household_record(session, h, cipher) for h in rows]
    if not identifiers_visible_to(viewer):
        records = [masked_household(r) for r in records]
    return records, total
