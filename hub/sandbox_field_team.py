"""The sandbox's field team, on the hub's side: who they are, which households they survey,
and the accounts they log in with.

``srhub run`` with the sandbox keeps a few households of the synthetic population out of the
registry's seed and gives them to a small team of enumerators (``sandbox_mocks.field_team``),
who register them over OpenRosa exactly as ODK Collect would: partly online, partly after
working offline, with one re-sent form. Two of them revisit the same registered household on
the same version of it, so the second update comes back as a conflict for review. Within the
first minute the dashboard shows field submissions, their review items and visits, the
national ID checks they trigger, and one conflict.

The enumerators' and the supervisor's passwords are random per start and never printed: the
team gets them in memory. An operator who wants to try the review queue as a supervisor
creates their own account (``srhub users add NAME --role supervisor --area R01``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.runtime import HubRuntime
from sandbox_mocks.field_team.team import Enumerator, FieldTeam, Revisit
from sandbox_mocks.population.model import Household

log = logging.getLogger("srhub.sandbox")

TEAM_SIZE = 2
HOUSEHOLDS_PER_ENUMERATOR = 12
ENUMERATOR_NAME = "sandbox-enumerator-{}"
SUPERVISOR_NAME = "sandbox-supervisor"
SEED_WAIT_SECONDS = 300.0
REVISIT_POLL_SECONDS = 0.5


def district_of(household: Household) -> str:
    """``R01-D02`` for a household of locality ``R01-D02-L003``."""
    return household.locality_code.rsplit("-", 1)[0]


@dataclass(frozen=True)
class TeamPlan:
    """Which district each enumerator covers and which households they will register."""

    districts: tuple[str, ...]
    assignments: dict[str, list[Household]] = field(default_factory=dict)  # district -> work
    # Households a partner feed changes while the team works (a birth or death from the
    # civil registry, a program's beneficiary number): a revisit of one would meet a version
    # the feed moved on.
    busy_keys: frozenset[str] = frozenset()

    @property
    def reserved_keys(self) -> frozenset[str]:
        return frozenset(h.household_key for hs in self.assignments.values() for h in hs)

    def seeded(self, households: Sequence[Household]) -> list[Household]:
        """The population without the households the team will register."""
        reserved = self.reserved_keys
        return [h for h in households if h.household_key not in reserved]


def households_with_vital_events(config: Any) -> frozenset[str]:
    """The keys of the households the sandbox's civil registry reports a birth or death of
    (its events, as ``sandbox_mocks.launcher`` configures it from the sandbox's settings)."""
    from sandbox_mocks.population import DEFAULT_AS_OF, iter_vital_events

    start = config.as_of or DEFAULT_AS_OF
    events = iter_vital_events(config.seed, config.people, start, as_of=start)
    return frozenset(e.household_key for e in events)


def households_in_programs(config: Any, households: Sequence[Household]) -> frozenset[str]:
    """The keys of the households the sandbox's program MIS enrols someone of (its starting
    beneficiaries, as ``sandbox_mocks.launcher`` configures it): the programs connector's
    first pass gives their people the program's beneficiary number, which moves the
    household's version."""
    from sandbox_mocks.population import DEFAULT_AS_OF
    from sandbox_mocks.programs import ProgramMisConfig
    from sandbox_mocks.programs.catalogue import initial_enrolments

    enrolments = initial_enrolments(
        households,
        config.as_of or DEFAULT_AS_OF,
        config.seed,
        ProgramMisConfig.coverage,
        config.noise_rate,
    )
    enrolled = {
        national_id
        for records in enrolments.values()
        for record in records
        for national_id in (record["nationalId"], *record["memberNationalIds"])
        if national_id
    }
    return frozenset(
        h.household_key for h in households if any(p.national_id in enrolled for p in h.members)
    )


def plan_team(
    households: Sequence[Household],
    size: int = TEAM_SIZE,
    per_enumerator: int = HOUSEHOLDS_PER_ENUMERATOR,
    busy_keys: frozenset[str] = frozenset(),
) -> TeamPlan:
    """The ``size`` most populous districts, one per enumerator; each enumerator gets the last
    ``per_enumerator`` households of its district (the seed keeps the rest, so a revisit
    finds registered households there too)."""
    by_district: dict[str, list[Household]] = defaultdict(list)
    for household in households:
        if household.members:
            by_district[district_of(household)].append(household)
    ranked = sorted(by_district, key=lambda d: (-len(by_district[d]), d))[:size]
    assignments = {d: by_district[d][-per_enumerator:] for d in ranked}
    return TeamPlan(tuple(ranked), assignments, busy_keys)


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    areas: tuple[str, ...]


def create_accounts(runtime: HubRuntime, plan: TeamPlan) -> list[Account]:
    """One field-worker account per district (the second also helps in the first district,
    where the revisit is) and a supervisor for all of them; passwords new at every start."""
    from hub.openrosa.accounts import save_user

    accounts = []
    for number, district in enumerate(plan.districts, start=1):
        areas = [district]
        if number == 2:
            areas.append(plan.districts[0])
        accounts.append(
            Account(ENUMERATOR_NAME.format(number), secrets.token_urlsafe(18), tuple(areas))
        )
    realm = runtime.settings.openrosa.realm
    with runtime.sessions() as session, session.begin():
        for account in accounts:
            save_user(
                session,
                runtime.cipher,
                realm,
                username=account.username,
                role="field_worker",
                areas=account.areas,
                password=account.password,
                replace=True,
            )
        if plan.districts:
            save_user(
                session,
                runtime.cipher,
                realm,
                username=SUPERVISOR_NAME,
                role="supervisor",
                areas=plan.districts,
                password=secrets.token_urlsafe(18),
                replace=True,
            )
    return accounts


def _past_the_area_layers(runtime: HubRuntime, household_id: str, locality: str) -> bool:
    """Whether the GIS connector's layers can no longer move this household's version. They
    land on every household registered in the locality when its record is applied
    (``apply_area_layers``, one transaction), so a household is past them when its locality's
    layers are on it already, or when it was registered after the ingest worker had applied
    the layer records (the message log's last ``gis.area_layers`` entry)."""
    import uuid

    from sqlalchemy import func, select

    from hub.monitoring.message_log import MessageLogEntry
    from registry_core.models import Household, SocioEconomicAttribute

    with runtime.sessions() as session:
        on_it = session.scalar(
            select(SocioEconomicAttribute.id)
            .where(
                SocioEconomicAttribute.household_id == uuid.UUID(household_id),
                SocioEconomicAttribute.source_system == "gis",
                SocioEconomicAttribute.source_record_id == f"area:{locality}",
            )
            .limit(1)
        )
        if on_it is not None:
            return True
        layers_done = session.scalar(
            select(func.max(MessageLogEntry.finished_at)).where(
                MessageLogEntry.connector == "gis",
                MessageLogEntry.routing_key == "gis.area_layers",
            )
        )
        created = session.scalar(
            select(Household.created_at).where(Household.id == uuid.UUID(household_id))
        )
    return layers_done is not None and created is not None and created > layers_done


def find_revisit(
    runtime: HubRuntime,
    plan: TeamPlan,
    households: Sequence[Household],
    seed_done: bool = True,
) -> Revisit | None:
    """A registered household of the first district, with the population household it came
    from (matched by address) and its current version.

    Only one nothing else changes while the two visits go in, so that the first visit is
    applied and the second meets the version the first made: none the civil registry reports
    a birth or death of, none the program MIS enrols someone of, none whose people the
    national ID check looks at (the seed's first households consent to it, and a check may
    correct a member), and, while the seed is still
    going (``seed_done`` false), only one the GIS layers can no longer reach (the GIS
    connector's first pass runs while the seed registers, and its layers move the version of
    every household registered by then)."""
    if not plan.districts:
        return None
    by_address = {h.address: h for h in households}
    avoid = plan.reserved_keys | plan.busy_keys
    registered, _total = runtime.registry.list_households(
        area_prefixes=[plan.districts[0]], limit=50
    )
    for record in registered:
        source = by_address.get(record.get("address") or "")
        if source is None or source.household_key in avoid:
            continue
        if runtime.registry.list_consents(household_id=str(record["id"])):
            continue
        locality = str(record["admin_area_code"])
        if not seed_done and not _past_the_area_layers(runtime, str(record["id"]), locality):
            continue
        return Revisit(source, str(record["id"]), int(record["version"]))
    return None


def build_team(
    runtime: HubRuntime,
    plan: TeamPlan,
    households: Sequence[Household],
    server_url: str,
    seeded: threading.Event,
) -> FieldTeam:
    """The team, with its accounts created. It surveys while the registry is being seeded;
    its revisit waits until the seed has registered a household of the first district (or,
    at the latest, until the seed is done: ``seeded``), since it revisits a seeded one."""
    accounts = create_accounts(runtime, plan)
    enumerators = [
        Enumerator(a.username, a.password, plan.assignments[district])
        for a, district in zip(accounts, plan.districts, strict=True)
    ]

    def revisits() -> list[Revisit]:
        # The first fitting household of the district will do: waiting for the whole seed
        # (451 households, a minute on a slow machine) would push the conflict past the
        # first minute the sandbox promises.
        deadline = time.monotonic() + SEED_WAIT_SECONDS
        while time.monotonic() < deadline:
            done = seeded.is_set()
            found = find_revisit(runtime, plan, households, seed_done=done)
            if found is not None or done:
                return [found] if found else []
            seeded.wait(timeout=REVISIT_POLL_SECONDS)
        return []

    return FieldTeam(
        server_url=f"{server_url.rstrip('/')}/openrosa",
        enumerators=enumerators,
        revisits=revisits,
    )
