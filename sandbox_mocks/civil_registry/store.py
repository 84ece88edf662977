"""The registry's books: which vital events exist, and which are registered as of the clock.

Why: a civil registry only knows an event once it is registered. Events come in with a future
``registration_date``; ``release_due(today)`` moves the ones whose date has come into the
registered list, in registration order, and hands the newly registered back exactly once so the
caller can notify subscribers. Everything the mock serves (feed, DCI search, webhooks) reads
from the registered list only.

Each released event gets a sequence number (its place in the list), used by the feed cursor.
With ``noise_rate`` > 0 the registry shows its own noisy copy of each person
(``population.noise.partner_view``), the same copy in the feed, webhooks and DCI answers.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sandbox_mocks.civil_registry.fhir_bundles import (
    TOPIC_BY_KIND,
    build_bundle,
    event_id,
    make_messy,
)
from sandbox_mocks.population.model import Person, VitalEvent
from sandbox_mocks.population.noise import partner_view

PARTNER = "civil_registry"


@dataclass(frozen=True)
class Released:
    """A registered event as the registry shows it."""

    seq: int
    event_id: str
    event: VitalEvent
    topic: str
    bundle: dict[str, Any]
    messy: bool

    @property
    def reg_event_type(self) -> str:
        return "live_birth" if self.event.kind == "birth" else "death"


class EventStore:
    """Pending and released vital events; thread-safe."""

    def __init__(
        self,
        events: Iterable[VitalEvent],
        messy_rate: float = 0.0,
        seed: int = 0,
        noise_rate: float = 0.0,
    ) -> None:
        if not 0.0 <= messy_rate <= 1.0:
            raise ValueError("messy_rate must be within 0..1")
        if not 0.0 <= noise_rate <= 1.0:
            raise ValueError("noise_rate must be within 0..1")
        self._noise_rate = noise_rate
        self._lock = threading.Lock()
        pending = [e for e in events if e.kind in TOPIC_BY_KIND]
        pending.sort(key=lambda e: (e.registration_date, e.registration_number))
        self._pending = pending
        self._next = 0  # index of the first pending event not yet released
        self._released: list[Released] = []
        self._messy_rate = messy_rate
        self._seed = seed

    def _is_messy(self, event: VitalEvent) -> bool:
        if self._messy_rate <= 0:
            return False
        # Seeded per event, so one event is messy in the feed and in webhooks alike.
        draw = random.Random(f"{self._seed}:{event.registration_number}").random()
        return draw < self._messy_rate

    def _registry_view(self, event: VitalEvent) -> VitalEvent:
        """The registry's own (noisy) copy of the people in an event; stable per person.

        The registration number is the registry's key and stays exact; everything else may
        carry the data-entry errors of ``population.noise``.
        """
        if self._noise_rate <= 0:
            return event

        def view(person: Person | None, keep: frozenset[str]) -> Person | None:
            if person is None:
                return None
            return partner_view(person, PARTNER, self._seed, self._noise_rate, keep)

        subject = view(event.person, frozenset({"birth_registration_number"}))
        assert subject is not None
        return replace(
            event,
            person=subject,
            mother=view(event.mother, frozenset()),
            father=view(event.father, frozenset()),
        )

    def release_due(self, today: date) -> list[Released]:
        """Register every pending event whose registration date is on or before ``today``."""
        fresh: list[Released] = []
        with self._lock:
            while (
                self._next < len(self._pending)
                and self._pending[self._next].registration_date <= today
            ):
                event = self._registry_view(self._pending[self._next])
                self._next += 1
                messy = self._is_messy(event)
                bundle = build_bundle(event)
                released = Released(
                    seq=len(self._released) + 1,
                    event_id=event_id(event),
                    event=event,
                    topic=TOPIC_BY_KIND[event.kind],
                    bundle=make_messy(bundle, self._seed) if messy else bundle,
                    messy=messy,
                )
                self._released.append(released)
                fresh.append(released)
        return fresh

    def released(self) -> list[Released]:
        with self._lock:
            return list(self._released)

    def after(self, seq: int, limit: int) -> tuple[list[Released], bool]:
        """Released events with sequence number above ``seq``; also whether more follow."""
        with self._lock:
            page = self._released[seq : seq + limit]
            more = seq + limit < len(self._released)
        return page, more

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "released": len(self._released),
                "pending": len(self._pending) - self._next,
                "total": len(self._pending),
            }
