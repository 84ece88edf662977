"""What every registry use case shares: who asserts a fact, what a call did, one unit of work.

A use case (``households``, ``life_events``, ``identity``, ``consents``, ``attributes``,
``reviews``, ``reads``) is a small class over one ``Workspace``: the session factory, the
identifier cipher, source precedence and the matcher, plus — when the caller already holds a
transaction (the ingest worker) — that transaction. ``Workspace.transaction`` is the only way
a use case writes, so every write gets the same guarantees: one transaction (or one SAVEPOINT
of the caller's), stale versions and constraint races turned into ``ConflictError``.

The look-ups below (a household, a person, a current membership, a version check) are the ones
several use cases need; each raises the registry's own errors, never a driver's.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from registry_core.crypto import IdentifierCipher
from registry_core.errors import ConflictError, NotFound
from registry_core.matching import PersonMatcher
from registry_core.models import Household, Identifier, Membership, Person
from registry_core.precedence import SourcePrecedence
from registry_core.recertification import RecertificationPolicy
from standards.identifiers import IdentifierProfile
from standards.timeutil import utcnow

T = TypeVar("T")

# Fields a partner or a person may assert, per entity (the rest is assigned by the registry).
PERSON_FIELDS = ("given_name", "family_name", "other_names", "sex", "birth_date")
HOUSEHOLD_FIELDS = ("admin_area_code", "address", "location")


@dataclass(frozen=True)
class Source:
    """Who asserts a fact: the source system, its record id, and when it was true/asserted."""

    system: str
    record_id: str | None = None
    asserted_at: datetime | None = None

    def at(self) -> datetime:
        return self.asserted_at or utcnow()


# The registry's own decisions (e.g. a new eligibility score) name it as their source.
REGISTRY_SOURCE = Source("registry")


@dataclass
class ChangeResult:
    """What a service call did: the record afterwards and the events it wrote."""

    record: dict[str, Any]
    events: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Workspace:
    """The database and the registry-wide rules one use case works with."""

    sessions: sessionmaker[Session]
    cipher: IdentifierCipher
    precedence: SourcePrecedence
    matcher: PersonMatcher
    outer: Session | None = None
    # When households are due for recertification (registration and confirmations reset it).
    recertification: RecertificationPolicy = field(default_factory=RecertificationPolicy)

    def within(self, session: Session) -> Workspace:
        """The same workspace, working inside the caller's open transaction ``session``."""
        return replace(self, outer=session)

    @property
    def identifier_profile(self) -> IdentifierProfile:
        """The country profile identifiers are normalised and checked with (the cipher's: the
        look-up hash is computed from its normalisation)."""
        return self.cipher.profile

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work; stale versions and constraint races become ConflictError.

        Inside a caller's transaction it is a SAVEPOINT: a refused record rolls back alone,
        and a good one commits with whatever else the caller does there (exactly-once effect).
        """
        outer = self.outer
        session = outer if outer is not None else self.sessions()
        try:
            with session.begin_nested() if outer is not None else session.begin():
                yield session
        except StaleDataError as exc:
            raise ConflictError(
                "the record was changed by someone else at the same time; read it again"
            ) from exc
        except IntegrityError as exc:
            raise ConflictError(
                "a concurrent change created the same record first; read it again"
            ) from exc
        finally:
            if outer is None:
                session.close()

    def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` on a session that writes nothing (the caller's, when there is one)."""
        if self.outer is not None:
            return work(self.outer)
        with self.sessions() as session:
            return work(session)


# ---------------------------------------------------------------------------- look-ups


def household_by_id(
    session: Session, household_id: uuid.UUID | str, *, lock: bool = False
) -> Household:
    key = uuid.UUID(str(household_id))
    household = session.get(Household, key, with_for_update=lock or None)
    if household is None:
        raise NotFound("household", key)
    return household


def person_by_id(session: Session, person_id: uuid.UUID | str, *, live: bool = False) -> Person:
    """The person ``person_id``; with ``live`` (every write) a person merged into another is a
    ``ConflictError`` naming the survivor: changes go to the live record
    (``docs/duplicates.md``)."""
    key = uuid.UUID(str(person_id))
    person = session.get(Person, key)
    if person is None:
        raise NotFound("person", key)
    if live and person.merged_into_id is not None:
        raise ConflictError(
            f"person {key} was merged into {person.merged_into_id}; change that record "
            "(or undo the merge first)"
        )
    return person


def person_by_identifier(
    session: Session, cipher: IdentifierCipher, system: str, value: str
) -> Person | None:
    """The person holding ``value`` of ``system`` (through the keyed look-up hash)."""
    digests = cipher.lookup_hashes(system, value)  # every key version still held
    return session.scalar(
        select(Person)
        .join(Identifier, Identifier.person_id == Person.id)
        .where(Identifier.system == system, Identifier.value_hash.in_(digests))
        .limit(1)
    )


def current_membership(session: Session, person_id: uuid.UUID) -> Membership | None:
    return session.scalar(
        select(Membership).where(Membership.person_id == person_id, Membership.end_date.is_(None))
    )


def current_household(session: Session, person_id: uuid.UUID) -> Household | None:
    """The household the person is a current member of, if any."""
    membership = current_membership(session, person_id)
    return household_by_id(session, membership.household_id) if membership else None


def check_version(household: Household, expected_version: int | None) -> None:
    if expected_version is not None and household.version != expected_version:
        raise ConflictError(
            f"household {household.id} is at version {household.version}, "
            f"not {expected_version}; read it again and retry",
            current_version=household.version,
        )


# ---------------------------------------------------------------------------- values


def new_registry_number() -> str:
    return "SR-" + base64.b32encode(uuid.uuid4().bytes[:8]).decode("ascii").rstrip("=")


def parse_date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)
