"""Merging two person records that staff found to be one person, and undoing it.

A merge never deletes. The merged-away row stays with ``merged_into_id`` pointing to the
survivor (reads of it point there); everything that made it a record moves to the survivor
— memberships, identifiers, field assertions (its provenance), consents, person facts — and
the merge's ``journal`` lists each moved row by id, plus each value the merge itself changed
(a duplicate current membership it ended, a household head it renamed) with the value before.

An unmerge walks the journal back: rows the merge moved return to the restored person, the
values the merge changed get their old value back, and both people's current fields are
re-derived from their own assertions by source precedence. What happened after the merge is
kept: assertions, identifiers, memberships and consents added to the survivor since stay with
the survivor (they were made about the merged person, and nobody can tell which record they
meant); a value the merge set and someone changed since (a membership ended again, a new head
named) keeps the later value, and the unmerge lists it in ``unmerge_notes``.

The merged person's other open duplicate pairs are re-pointed to the survivor, or closed as
superseded (``pair_repointing``); an unmerge puts them back.

Events: ``person.merged`` about the survivor (which holds both records' consents by then, so
every program that knew either record learns it) and ``person.unmerged`` twice, once about each
of the two, so each one's programs learn it; then ``household.updated`` (reason
``merged_duplicate`` / ``unmerged``) for each household whose members, head or status changed.

Refused (``MergeRefused``, a 409 at the API): merging a person with themself or a person
already merged away; undoing a merge twice, or one whose survivor was merged away since.
Unsafe (``UnsafeMerge``, also 409, unless the caller forces it with a reason): the two hold
different values of an identifier system that admits one value per person (two national IDs),
or one is recorded deceased and the other not.

The survivor's current fields are re-derived by precedence over both histories, except that
where the other record's source ranks no higher, the survivor's value stays (staff chose it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from registry_core.errors import ConflictError, NotFound
from registry_core.models import (
    Consent,
    FieldAssertion,
    Household,
    HouseholdStatus,
    Identifier,
    IdentifierSystem,
    MatchReview,
    Membership,
    MergeState,
    Person,
    PersonMatchKey,
    PersonMerge,
    SocioEconomicAttribute,
)
from registry_core.precedence import Candidate, SourcePrecedence
from registry_core.reports.tables import ProgramEnrolment
from registry_core.resolution import refresh_match_keys
from registry_core.services.base import (
    PERSON_FIELDS,
    Source,
    Workspace,
    current_household,
    current_membership,
    parse_date,
)
from registry_core.services.events import PersonMerged, PersonUnmerged, emit
from registry_core.services.membership import household_updated
from registry_core.services.pair_repointing import SUPERSEDED, repoint_pairs, restore_pairs
from standards.timeutil import rfc3339, utcnow

MERGED_END_REASON = "merged_duplicate"
MERGE_SOURCE_SYSTEM = "registry_staff"
MAX_CHAIN = 20  # survivors of survivors followed when pointing a read to the live record
_DATE_FIELDS = frozenset({"birth_date"})


class MergeRefused(ConflictError):
    """The merge or unmerge cannot be done as asked; the message says what to do instead."""


class UnsafeMerge(MergeRefused):
    """The two records disagree where one person cannot: force it with a reason, or keep them
    apart. ``problems`` names each disagreement (systems and facts, never values)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "unsafe merge: "
            + "; ".join(problems)
            + ". Keep the records apart, or force the merge with a reason (administrators)"
        )
        self.problems = problems


@dataclass(frozen=True)
class Actor:
    """Who decided, for the merge row (a person's name or a token's subject)."""

    name: str


def _person(session: Session, person_id: uuid.UUID | str, *, lock: bool = False) -> Person:
    key = uuid.UUID(str(person_id))
    person = session.get(Person, key, with_for_update=lock or None)
    if person is None:
        raise NotFound("person", key)
    return person


def _lock_both(session: Session, a: uuid.UUID, b: uuid.UUID) -> dict[uuid.UUID, Person]:
    """Both persons, locked in id order (two merges of crossing pairs never deadlock)."""
    return {key: _person(session, key, lock=True) for key in sorted([a, b])}


def survivor_id(session: Session, person_id: uuid.UUID | str) -> uuid.UUID | None:
    """The live record a merged-away person now is (following merges of survivors), or None
    when ``person_id`` was never merged away."""
    current = _person(session, person_id)
    if current.merged_into_id is None:
        return None
    for _ in range(MAX_CHAIN):
        if current.merged_into_id is None:
            return current.id
        current = _person(session, current.merged_into_id)
    return current.id


def unsafe_problems(session: Session, survivor: Person, merged: Person) -> list[str]:
    """What makes merging these two unsafe (empty when nothing does)."""
    problems: list[str] = []
    single = set(
        session.scalars(
            select(IdentifierSystem.code).where(IdentifierSystem.unique_per_person.is_(True))
        )
    )
    held: dict[uuid.UUID, dict[str, set[str]]] = {survivor.id: {}, merged.id: {}}
    for row in session.scalars(
        select(Identifier).where(Identifier.person_id.in_([survivor.id, merged.id]))
    ):
        held[row.person_id].setdefault(row.system, set()).add(row.value_hash)
    for system in sorted(single & set(held[survivor.id]) & set(held[merged.id])):
        if held[survivor.id][system] != held[merged.id][system]:
            problems.append(f"the two hold different {system} identifiers")
    if survivor.is_deceased != merged.is_deceased:
        problems.append("one is recorded deceased and the other is not")
    return problems


def rederive_person_fields(
    session: Session,
    precedence: SourcePrecedence,
    person: Person,
    prefer: frozenset[int] = frozenset(),
) -> list[str]:
    """Set the person's current fields from their own assertions by precedence (a field
    nobody asserts any more becomes empty); returns the fields that changed.

    ``prefer`` (a merge: the survivor's own assertions): where the winner is not one of them
    but one of them ranks as high, that one wins instead. Precedence cannot tell two equally
    ranked sources apart except by date, and staff chose the survivor as the record to keep,
    so a merge never swaps a survivor's value for an equally trusted, merely newer one."""
    rows = session.scalars(
        select(FieldAssertion).where(
            FieldAssertion.entity_type == "person",
            FieldAssertion.entity_id == person.id,
            FieldAssertion.field.in_(PERSON_FIELDS),
        )
    ).all()
    changed: list[str] = []
    for name in PERSON_FIELDS:
        candidates = [
            Candidate(r.value, r.source_system, r.asserted_at, r.id)
            for r in rows
            if r.field == name
        ]
        best = precedence.choose("person", name, candidates)
        if best is not None and prefer and best.sequence not in prefer:
            own = precedence.choose("person", name, [c for c in candidates if c.sequence in prefer])
            if own is not None and precedence.rank("person", name, own.source_system) == (
                precedence.rank("person", name, best.source_system)
            ):
                best = own
        value = None if best is None else best.value
        typed = parse_date(value) if name in _DATE_FIELDS else value
        if getattr(person, name) != typed:
            setattr(person, name, typed)
            changed.append(name)
    return changed


def _area(session: Session, person_id: uuid.UUID) -> str | None:
    household = current_household(session, person_id)
    return household.admin_area_code if household else None


class _Mover:
    """One merge's moves, recorded in its journal as they are made."""

    def __init__(self, session: Session, survivor: Person, merged: Person) -> None:
        self.session = session
        self.survivor = survivor
        self.merged = merged
        self.journal: dict[str, Any] = {
            "memberships": [],
            "households": [],
            "identifiers": [],
            "assertions": [],
            "consents": [],
            "enrolments": [],
            "attributes": [],
            "attributes_not_moved": [],
        }
        self.households: list[uuid.UUID] = []

    def memberships(self, today: date) -> None:
        """Move every membership; a current one ends when the survivor already has one (a
        person lives in one household at a time), and its household is flagged for review
        when it loses its head that way."""
        session = self.session
        survivor_current = current_membership(session, self.survivor.id)
        rows = session.scalars(
            select(Membership)
            .where(Membership.person_id == self.merged.id)
            .order_by(Membership.start_date, Membership.id)
        ).all()
        for row in rows:
            entry: dict[str, Any] = {"id": str(row.id), "ended_by_merge": False}
            row.person_id = self.survivor.id
            if row.end_date is None and survivor_current is not None:
                row.end_date, row.end_reason = today, MERGED_END_REASON
                entry["ended_by_merge"] = True
                entry["end_date"] = today.isoformat()
            self.journal["memberships"].append(entry)
            if row.household_id not in self.households:
                self.households.append(row.household_id)
        ended = {uuid.UUID(e["id"]) for e in self.journal["memberships"] if e["ended_by_merge"]}
        ended_households = {r.household_id for r in rows if r.id in ended}
        for household in session.scalars(
            select(Household).where(Household.head_person_id == self.merged.id)
        ):
            change: dict[str, Any] = {
                "id": str(household.id),
                "head_before": str(self.merged.id),
                "status_before": household.status,
                "review_reason_before": household.review_reason,
            }
            household.head_person_id = self.survivor.id
            if household.id in ended_households and household.status == HouseholdStatus.ACTIVE:
                household.status = HouseholdStatus.NEEDS_REVIEW
                household.review_reason = (
                    "the head was merged into a person of another household; name a new head"
                )
            change["status_after"] = household.status
            change["review_reason_after"] = household.review_reason
            self.journal["households"].append(change)
            if household.id not in self.households:
                self.households.append(household.id)

    def rows(self) -> None:
        """Identifiers, assertions, consents, program enrolments and person facts move to the
        survivor."""
        session, merged_id, survivor_id_ = self.session, self.merged.id, self.survivor.id
        for ident in session.scalars(select(Identifier).where(Identifier.person_id == merged_id)):
            ident.person_id = survivor_id_
            self.journal["identifiers"].append(str(ident.id))
        assertion_ids = list(
            session.scalars(
                select(FieldAssertion.id).where(
                    FieldAssertion.entity_type == "person", FieldAssertion.entity_id == merged_id
                )
            )
        )
        if assertion_ids:
            session.execute(
                update(FieldAssertion)
                .where(FieldAssertion.id.in_(assertion_ids))
                .values(entity_id=survivor_id_)
            )
        self.journal["assertions"] = assertion_ids
        for consent in session.scalars(select(Consent).where(Consent.person_id == merged_id)):
            consent.person_id = survivor_id_
            self.journal["consents"].append(str(consent.id))
        for enrolment in session.scalars(
            select(ProgramEnrolment).where(ProgramEnrolment.person_id == merged_id)
        ):  # a program's beneficiary stays one (coverage reports count it on the survivor)
            enrolment.person_id = survivor_id_
            self.journal["enrolments"].append(str(enrolment.id))
        for fact in session.scalars(
            select(SocioEconomicAttribute).where(SocioEconomicAttribute.person_id == merged_id)
        ):
            clash = session.scalar(
                select(SocioEconomicAttribute.id).where(
                    SocioEconomicAttribute.person_id == survivor_id_,
                    SocioEconomicAttribute.household_id == fact.household_id,
                    SocioEconomicAttribute.domain == fact.domain,
                    SocioEconomicAttribute.name == fact.name,
                    SocioEconomicAttribute.period == fact.period,
                    SocioEconomicAttribute.source_system == fact.source_system,
                )
            )
            if clash is not None:  # the survivor has the same fact from the same source
                self.journal["attributes_not_moved"].append(str(fact.id))
                continue
            fact.person_id = survivor_id_
            self.journal["attributes"].append(str(fact.id))


def merge(
    ws: Workspace,
    session: Session,
    survivor_id_: uuid.UUID | str,
    merged_id: uuid.UUID | str,
    *,
    reason: str,
    actor: Actor,
    forced_reason: str | None = None,
    review_id: uuid.UUID | None = None,
) -> PersonMerge:
    """Merge ``merged_id`` into ``survivor_id_`` in ``session``'s transaction (see the module
    docstring for what moves and what is refused)."""
    if uuid.UUID(str(survivor_id_)) == uuid.UUID(str(merged_id)):
        raise MergeRefused("a person cannot be merged with themself; choose two records")
    locked = _lock_both(session, uuid.UUID(str(survivor_id_)), uuid.UUID(str(merged_id)))
    survivor = locked[uuid.UUID(str(survivor_id_))]
    merged = locked[uuid.UUID(str(merged_id))]
    for person in (survivor, merged):
        if person.merged_into_id is not None:
            raise MergeRefused(
                f"person {person.id} was already merged into {person.merged_into_id}; "
                "work on that record, or undo that merge first"
            )
    problems = unsafe_problems(session, survivor, merged)
    if problems and not forced_reason:
        raise UnsafeMerge(problems)
    now = utcnow()
    mover = _Mover(session, survivor, merged)
    mover.journal["survivor_fields_before"] = {
        name: _plain(getattr(survivor, name)) for name in PERSON_FIELDS
    }
    mover.journal["unsafe"] = problems
    own = frozenset(
        session.scalars(
            select(FieldAssertion.id).where(
                FieldAssertion.entity_type == "person", FieldAssertion.entity_id == survivor.id
            )
        )
    )
    mover.memberships(now.date())
    mover.rows()
    session.flush()
    rederive_person_fields(session, ws.precedence, survivor, prefer=own)
    session.execute(delete(PersonMatchKey).where(PersonMatchKey.person_id == merged.id))
    refresh_match_keys(session, survivor)
    merged.merged_into_id = survivor.id
    record = PersonMerge(
        id=uuid.uuid4(),
        survivor_id=survivor.id,
        merged_id=merged.id,
        review_id=review_id,
        state=MergeState.MERGED,
        reason=reason,
        forced_reason=forced_reason if problems else None,
        merged_by=actor.name,
        merged_at=now,
        journal=mover.journal,
    )
    session.add(record)
    session.flush()
    pairs = repoint_pairs(
        session,
        ws.cipher,
        survivor=survivor.id,
        merged=merged.id,
        merge_id=record.id,
        deciding_review=review_id,
    )
    if pairs:  # a new dict: the JSON column sees the change
        record.journal = {**mover.journal, "pairs": pairs}
    emit(
        session,
        PersonMerged(
            person_id=survivor.id,
            merged_person_id=merged.id,
            merge_id=record.id,
            household_ids=tuple(mover.households),
            merged_at=now,
            admin_area_code=_area(session, survivor.id),
            source=Source(MERGE_SOURCE_SYSTEM, f"merge:{record.id}"),
        ),
    )
    _households_changed(
        session,
        mover.households,
        mover.journal,
        Source(MERGE_SOURCE_SYSTEM, f"merge:{record.id}"),
        survivor.id,
        "merged_duplicate",
    )
    return record


def _households_changed(
    session: Session,
    household_ids: list[uuid.UUID],
    journal: dict[str, Any],
    source: Source,
    person_id: uuid.UUID,
    reason: str,
) -> None:
    """``household.updated`` for each household whose members (and head, status) a merge or
    an unmerge changed, so household subscribers see the version move with a reason."""
    heads = {c["id"]: c for c in journal.get("households", [])}
    for household_id in household_ids:
        household = session.get(Household, household_id)
        if household is None:
            continue
        changed = ["members"]
        head = heads.get(str(household_id))
        if head is not None:
            changed.append("head_person_id")
            if head.get("status_before") != head.get("status_after"):
                changed.append("status")
        household_updated(session, household, changed, source, person_id, reason)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def unmerge(
    ws: Workspace,
    session: Session,
    merge_id: uuid.UUID | str,
    *,
    reason: str,
    actor: Actor,
) -> PersonMerge:
    """Undo merge ``merge_id`` in ``session``'s transaction (see the module docstring)."""
    key = uuid.UUID(str(merge_id))
    record = session.get(PersonMerge, key, with_for_update=True)
    if record is None:
        raise NotFound("merge", key)
    if record.state != MergeState.MERGED:
        when = rfc3339(record.unmerged_at) if record.unmerged_at else "an earlier day"
        raise MergeRefused(f"merge {key} was already undone ({when}); nothing to undo")
    locked = _lock_both(session, record.survivor_id, record.merged_id)
    survivor, merged = locked[record.survivor_id], locked[record.merged_id]
    if survivor.merged_into_id is not None:
        raise MergeRefused(
            f"the survivor {survivor.id} was itself merged into {survivor.merged_into_id} "
            "since; undo that merge first"
        )
    journal = record.journal or {}
    notes: list[str] = []
    households = _restore_memberships(session, journal, survivor, merged, notes)
    _restore_rows(session, journal, survivor, merged, notes)
    restore_pairs(session, ws.cipher, journal.get("pairs", []), notes)
    merged.merged_into_id = None
    session.flush()
    rederive_person_fields(session, ws.precedence, survivor)
    rederive_person_fields(session, ws.precedence, merged)
    refresh_match_keys(session, survivor)
    refresh_match_keys(session, merged)
    now = utcnow()
    record.state = MergeState.UNMERGED
    record.unmerged_by = actor.name
    record.unmerged_at = now
    record.unmerge_reason = reason
    record.unmerge_notes = notes
    if record.review_id is not None:
        review = session.get(MatchReview, record.review_id)
        if review is not None:
            review.status = "unmerged"
            review.resolution = f"merge undone: {reason}"
    session.flush()
    for about in (merged, survivor):  # each one's programs learn it (consent at dispatch)
        emit(
            session,
            PersonUnmerged(
                person_id=about.id,
                restored_person_id=merged.id,
                survivor_person_id=survivor.id,
                merge_id=record.id,
                household_ids=tuple(households),
                unmerged_at=now,
                admin_area_code=_area(session, about.id),
                source=Source(MERGE_SOURCE_SYSTEM, f"unmerge:{record.id}"),
            ),
        )
    _households_changed(
        session,
        households,
        journal,
        Source(MERGE_SOURCE_SYSTEM, f"unmerge:{record.id}"),
        merged.id,
        "unmerged",
    )
    return record


def _restore_memberships(
    session: Session, journal: dict[str, Any], survivor: Person, merged: Person, notes: list[str]
) -> list[uuid.UUID]:
    households: list[uuid.UUID] = []
    for entry in journal.get("memberships", []):
        row = session.get(Membership, uuid.UUID(entry["id"]))
        if row is None or row.person_id != survivor.id:
            notes.append(f"membership {entry['id']} is no longer the survivor's; left as it is")
            continue
        row.person_id = merged.id
        if entry.get("ended_by_merge"):
            if (
                row.end_reason == MERGED_END_REASON
                and row.end_date is not None
                and row.end_date.isoformat() == entry.get("end_date")
            ):
                row.end_date, row.end_reason = None, None
            else:
                notes.append(
                    f"membership {entry['id']} was changed after the merge; its later end kept"
                )
        if row.household_id not in households:
            households.append(row.household_id)
    for change in journal.get("households", []):
        household = session.get(Household, uuid.UUID(change["id"]))
        if household is None:
            continue
        if household.head_person_id == survivor.id:
            household.head_person_id = merged.id
        else:
            notes.append(f"household {change['id']} named another head since; kept")
        if (household.status, household.review_reason) == (
            change.get("status_after"),
            change.get("review_reason_after"),
        ):
            household.status = change["status_before"]
            household.review_reason = change.get("review_reason_before")
        elif change.get("status_after") != change.get("status_before"):
            notes.append(f"household {change['id']} status changed since; kept")
        if household.id not in households:
            households.append(household.id)
    return households


def _restore_rows(
    session: Session, journal: dict[str, Any], survivor: Person, merged: Person, notes: list[str]
) -> None:
    ident_ids = [uuid.UUID(i) for i in journal.get("identifiers", [])]
    moved = session.scalars(select(Identifier).where(Identifier.id.in_(ident_ids))).all()
    for ident in moved:
        if ident.person_id == survivor.id:
            ident.person_id = merged.id
    if len(moved) != len(ident_ids):
        notes.append(f"{len(ident_ids) - len(moved)} moved identifier(s) no longer exist")
    assertion_ids = [int(i) for i in journal.get("assertions", [])]
    if assertion_ids:
        session.execute(
            update(FieldAssertion)
            .where(
                FieldAssertion.id.in_(assertion_ids),
                FieldAssertion.entity_type == "person",
                FieldAssertion.entity_id == survivor.id,
            )
            .values(entity_id=merged.id)
        )
    consent_ids = [uuid.UUID(i) for i in journal.get("consents", [])]
    for consent in session.scalars(select(Consent).where(Consent.id.in_(consent_ids))):
        if consent.person_id == survivor.id:
            consent.person_id = merged.id
    enrolment_ids = [uuid.UUID(i) for i in journal.get("enrolments", [])]
    for enrolment in session.scalars(
        select(ProgramEnrolment).where(ProgramEnrolment.id.in_(enrolment_ids))
    ):
        if enrolment.person_id == survivor.id:
            enrolment.person_id = merged.id
    fact_ids = [uuid.UUID(i) for i in journal.get("attributes", [])]
    for fact in session.scalars(
        select(SocioEconomicAttribute).where(SocioEconomicAttribute.id.in_(fact_ids))
    ):
        if fact.person_id == survivor.id:
            fact.person_id = merged.id


def merge_record(record: PersonMerge) -> dict[str, Any]:
    """A merge as the API shows it (the journal as counts and ids: no values in it)."""
    journal = record.journal or {}
    return {
        "id": str(record.id),
        "state": record.state,
        "survivor_id": str(record.survivor_id),
        "merged_id": str(record.merged_id),
        "review_id": str(record.review_id) if record.review_id else None,
        "reason": record.reason,
        "forced_reason": record.forced_reason,
        "unsafe": journal.get("unsafe", []),
        "merged_by": record.merged_by,
        "merged_at": rfc3339(record.merged_at),
        "moved": {
            "memberships": len(journal.get("memberships", [])),
            "memberships_ended": sum(
                1 for m in journal.get("memberships", []) if m.get("ended_by_merge")
            ),
            "households_head_renamed": len(journal.get("households", [])),
            "identifiers": len(journal.get("identifiers", [])),
            "assertions": len(journal.get("assertions", [])),
            "consents": len(journal.get("consents", [])),
            "attributes": len(journal.get("attributes", [])),
        },
        "unmerged_by": record.unmerged_by,
        "unmerged_at": rfc3339(record.unmerged_at) if record.unmerged_at else None,
        "unmerge_reason": record.unmerge_reason,
        "unmerge_notes": record.unmerge_notes or [],
    }


REVIEW_OPEN = "open"
REVIEW_MERGED = "merged"
REVIEW_KEPT_APART = "kept_apart"
REVIEW_UNMERGED = "unmerged"
# superseded: a merge of one of the two made the pair moot (registry_core/services/
# pair_repointing.py); an unmerge opens it again.
REVIEW_SUPERSEDED = SUPERSEDED
REVIEW_STATUSES = (
    REVIEW_OPEN,
    REVIEW_MERGED,
    REVIEW_KEPT_APART,
    REVIEW_UNMERGED,
    REVIEW_SUPERSEDED,
)


class ReviewNotDecidable(MergeRefused):
    """The review is not an open duplicate pair (decided already, or an incoming record)."""


def _open_duplicate(session: Session, review_id: uuid.UUID | str) -> MatchReview:
    from registry_core.resolution import DUPLICATE_KIND

    key = uuid.UUID(str(review_id))
    review = session.get(MatchReview, key, with_for_update=True)
    if review is None:
        raise NotFound("match review", key)
    if review.kind != DUPLICATE_KIND:
        raise ReviewNotDecidable(
            f"review {key} is about an incoming {review.kind} record, not two registered "
            "people: it cannot be merged or kept apart"
        )
    if review.status != REVIEW_OPEN:
        raise ReviewNotDecidable(
            f"review {key} was already decided ({review.status} by {review.resolved_by})"
        )
    return review


def pair_of(review: MatchReview) -> tuple[str, str]:
    """The two person ids of a duplicate review."""
    first, second = (str(c[0]) for c in review.candidates[:2])
    return first, second


# Called with the areas of the two people's current households (None: no household) once the
# review is locked; raises to refuse. Callers scoped to areas (supervisors) pass one.
PairCheck = Callable[[list[str | None]], None]


def _check_pair(session: Session, review: MatchReview, check: PairCheck | None) -> None:
    if check is None:
        return
    areas: list[str | None] = []
    for person_id in pair_of(review):
        household = current_household(session, uuid.UUID(person_id))
        areas.append(household.admin_area_code if household is not None else None)
    check(areas)


class Merges:
    """Deciding duplicate pairs (merge, keep apart), undoing merges, and pointing reads of
    merged-away persons to their survivor."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def merge_review(
        self,
        review_id: uuid.UUID | str,
        *,
        survivor_id: uuid.UUID | str | None,
        reason: str,
        actor: Actor,
        forced_reason: str | None = None,
        check: PairCheck | None = None,
    ) -> dict[str, Any]:
        """Merge the pair of an open duplicate review; the survivor defaults to the record
        registered first (the one programs most likely already know). ``check`` may refuse
        by the two people's household areas (supervisors: both inside their areas)."""
        with self._ws.transaction() as session:
            review = _open_duplicate(session, review_id)
            _check_pair(session, review, check)
            pair = pair_of(review)
            if survivor_id is None:
                people = [_person(session, p) for p in pair]
                survivor = min(people, key=lambda p: (p.created_at, str(p.id))).id
            elif str(survivor_id) in pair:
                survivor = uuid.UUID(str(survivor_id))
            else:
                raise MergeRefused(f"the survivor must be one of the pair: {', '.join(pair)}")
            other = pair[1] if str(survivor) == pair[0] else pair[0]
            record = merge(
                self._ws,
                session,
                survivor,
                other,
                reason=reason,
                actor=actor,
                forced_reason=forced_reason,
                review_id=review.id,
            )
            review.status = REVIEW_MERGED
            review.resolved_at = record.merged_at
            review.resolved_by = actor.name
            review.resolution = reason
            session.flush()
            return merge_record(record)

    def keep_apart(
        self,
        review_id: uuid.UUID | str,
        *,
        reason: str,
        actor: Actor,
        check: PairCheck | None = None,
    ) -> str:
        """Record that the pair of an open duplicate review are two people; the scan will not
        propose them again. Returns the review's new status. ``check`` as for a merge."""
        with self._ws.transaction() as session:
            review = _open_duplicate(session, review_id)
            _check_pair(session, review, check)
            review.status = REVIEW_KEPT_APART
            review.resolved_at = utcnow()
            review.resolved_by = actor.name
            review.resolution = reason
            return review.status

    def merge_persons(
        self,
        survivor_id: uuid.UUID | str,
        merged_id: uuid.UUID | str,
        *,
        reason: str,
        actor: Actor,
        forced_reason: str | None = None,
    ) -> dict[str, Any]:
        """Merge two persons without a review (e.g. a known duplicate reported by a partner)."""
        with self._ws.transaction() as session:
            record = merge(
                self._ws,
                session,
                survivor_id,
                merged_id,
                reason=reason,
                actor=actor,
                forced_reason=forced_reason,
            )
            return merge_record(record)

    def unmerge(self, merge_id: uuid.UUID | str, *, reason: str, actor: Actor) -> dict[str, Any]:
        with self._ws.transaction() as session:
            return merge_record(unmerge(self._ws, session, merge_id, reason=reason, actor=actor))

    def get_merge(self, merge_id: uuid.UUID | str) -> dict[str, Any]:
        def work(session: Session) -> dict[str, Any]:
            key = uuid.UUID(str(merge_id))
            record = session.get(PersonMerge, key)
            if record is None:
                raise NotFound("merge", key)
            return merge_record(record)

        return self._ws.read(work)

    def merges_of(self, person_id: uuid.UUID | str) -> list[dict[str, Any]]:
        """Every merge (done or undone) a person took part in, oldest first."""
        key = uuid.UUID(str(person_id))
        return self._ws.read(
            lambda s: [
                merge_record(r)
                for r in s.scalars(
                    select(PersonMerge)
                    .where((PersonMerge.survivor_id == key) | (PersonMerge.merged_id == key))
                    .order_by(PersonMerge.merged_at, PersonMerge.id)
                )
            ]
        )

    def merges_of_review(self, review_id: uuid.UUID | str) -> list[dict[str, Any]]:
        key = uuid.UUID(str(review_id))
        return self._ws.read(
            lambda s: [
                merge_record(r)
                for r in s.scalars(
                    select(PersonMerge)
                    .where(PersonMerge.review_id == key)
                    .order_by(PersonMerge.merged_at, PersonMerge.id)
                )
            ]
        )

    def survivor_of(self, person_id: uuid.UUID | str) -> str | None:
        """The live record a merged-away person now is; None when not merged away."""
        found = self._ws.read(lambda s: survivor_id(s, person_id))
        return str(found) if found else None
