"""Prefill a household from a national ID: ask every partner at once, answer by a deadline.

The story (the Turkey ISAS case in the seed): at the counter, staff type the applicant's
national ID and expect the form to fill itself from what the state already knows, in about two
seconds, even when one agency is slow. So:

- the national ID is checked (format, Verhoeff check digit) before any partner is called;
- national ID (eKYC), civil registry (DCI search by UIN) and tax (taxpayer look-up) are asked
  in parallel on one bounded thread pool shared by the process; GIS is asked as soon as any of
  them gives a place (a point, else an admin area code);
- at the deadline the answer is built from what has arrived; a source still running is
  reported ``timeout`` (its thread finishes on its own, bounded by the same deadline passed to
  the connector, so the pool is not clogged);
- each answer is mapped with the partner's mapping spec, every value keeps its provenance
  (source, field, value, retrieved_at), and the registry's source precedence picks the value
  shown when two sources disagree.

Only the asked person's own data is used: the civil registry's parent identifiers, other
taxpayers and other records a partner might add are dropped.

A prefill only *proposes*: nothing a partner answers is published to the ingest or applied to
the registry here (the national ID's eKYC answer is asked for with ``publish=False``). The
values reach the registry when the household is registered, with their provenance. So a
refused prefill (a field worker outside their areas) and a repeated one write nothing.
The answer carries, under ``AUTHORITY_AREA_KEY``, the admin area the national ID authority
gives for the person: the one fact the view's area rule uses for someone not yet registered,
whatever order the partners answered in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.base import Connector, Deadline, NotAttempted, PartnerError
from connectors.base.errors import (
    CircuitOpenError,
    DeadlineExceeded,
    PartnerTimeout,
    RateLimitTimeout,
    safe_reason,
)
from connectors.civil_registry.dci_messages import normalise_event_type
from connectors.lookups import AreaLookup, AreaNotFound, TaxpayerLookup, TaxpayerNotFound
from connectors.national_id import NationalIdConnector, NotFoundError, national_id_problem
from connectors.national_id.crvs_lookup import CivilRegistryNotFound, CivilRegistryUinLookup
from mappings.engine import MappingError, load_spec
from registry_core.precedence import Candidate, SourcePrecedence
from standards.identifiers import IdentifierProfile, default_profile

log = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = ("national_id", "civil_registry", "tax", "gis")
LOCATION_SOURCES: tuple[str, ...] = ("national_id", "civil_registry", "tax")
DEFAULT_DEADLINE_S = 2.0
MAX_DEADLINE_S = 10.0
OK, TIMEOUT, NOT_FOUND, ERROR = "ok", "timeout", "not_found", "error"
NOT_CONFIGURED = "not configured"
#: Key of the answer holding the national ID authority's area code (for the view, not shown).
AUTHORITY_AREA_KEY = "authority_area_code"

# Person fields a source may propose for the head, in the order they are shown.
PERSON_FIELDS = (
    "given_name",
    "family_name",
    "other_names",
    "sex",
    "birth_date",
    "person_status",
    "death_date",
)


class InvalidNationalId(ValueError):
    """The national ID is malformed; the message says what is wrong without repeating it."""


@dataclass(frozen=True)
class Claim:
    """One value a source proposes: ``entity.field`` (precedence key), where it came from."""

    entity: str  # "person" (the head) or "household"
    field: str
    value: Any
    source_field: str  # where in the partner's answer, e.g. "$.identity.givenName"


@dataclass(frozen=True)
class Place:
    """Where the person lives, as far as a source knows: a point and/or an area code."""

    lon: float | None = None
    lat: float | None = None
    area_code: str | None = None

    @property
    def has_point(self) -> bool:
        return self.lon is not None and self.lat is not None


@dataclass
class SourceOutcome:
    source: str
    status: str
    ms: float | None = None
    reason: str | None = None
    retrieved_at: datetime | None = None
    claims: list[Claim] = field(default_factory=list)
    attributes: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    place: Place | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "ms": None if self.ms is None else round(self.ms, 1),
        }
        if self.reason:
            out["reason"] = self.reason
        return out


# --- one function per source: (connector, national ID, deadline) -> outcome --------------------


def _mapped(
    spec: str, record: Mapping[str, Any], identifiers: IdentifierProfile | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    result = load_spec(spec).map(dict(record), identifiers)
    return result.record, result.sources


def _person_claims(
    person: Mapping[str, Any], prefix: str, sources: Mapping[str, str]
) -> list[Claim]:
    claims = []
    for name in PERSON_FIELDS:
        if person.get(name) not in (None, ""):
            claims.append(Claim("person", name, person[name], sources.get(f"$.{prefix}{name}", "")))
    for index, ident in enumerate(person.get("identifiers") or []):
        system = ident.get("system")
        if system and ident.get("value"):
            where = sources.get(f"$.{prefix}identifiers[{index}].value") or sources.get(
                f"$.{prefix}identifiers[{index}]", ""
            )
            claims.append(Claim("person", f"identifiers.{system}", dict(ident), where))
    return claims


def ask_national_id(connector: Connector, national_id: str, deadline: Deadline) -> SourceOutcome:
    if not isinstance(connector, NationalIdConnector):
        raise TypeError("the national_id connector is not a NationalIdConnector")
    # A proposal, not a fact for the registry: nothing is published (see the module docstring).
    answer = connector.get_person(national_id, consent=True, deadline=deadline, publish=False)
    if not answer.kyc_status or answer.identity is None:
        codes = ",".join(answer.error_codes) or "none"
        return SourceOutcome(
            "national_id", ERROR, reason=f"the authority gave no identity (error codes {codes})"
        )
    record, sources = _mapped("national_id_person", answer.payload, connector.context.identifiers)
    claims = _person_claims(record["person"], "person.", sources)
    for name in ("person_status", "death_date"):
        if record.get(name):
            claims.append(Claim("person", name, record[name], sources.get(f"$.{name}", "")))
    for name in ("address", "admin_area_code"):
        if record.get(name):
            claims.append(Claim("household", name, record[name], sources.get(f"$.{name}", "")))
    return SourceOutcome(
        "national_id", OK, claims=claims, place=Place(area_code=record.get("admin_area_code"))
    )


def ask_civil_registry(
    client: CivilRegistryUinLookup,
    national_id: str,
    deadline: Deadline,
    identifiers: IdentifierProfile | None = None,
) -> SourceOutcome:
    records = client.find(national_id, deadline)
    claims: list[Claim] = []
    for raw in records:
        if normalise_event_type(raw.get("reg_event_type")) == "death":  # any DCI spelling
            record, sources = _mapped("civil_registry_dci_death", raw, identifiers)
            claims += _person_claims(record.get("deceased") or {}, "deceased.", sources)
            claims.append(Claim("person", "person_status", "deceased", "$.reg_event_type"))
            if record.get("death_date"):
                claims.append(
                    Claim(
                        "person",
                        "death_date",
                        record["death_date"],
                        sources.get("$.death_date", ""),
                    )
                )
        else:
            record, sources = _mapped("civil_registry_dci_birth", raw, identifiers)
            # Only the child (the person asked about): parents are other people.
            claims += _person_claims(record.get("child") or {}, "child.", sources)
    return SourceOutcome("civil_registry", OK, claims=claims)


def ask_tax(
    client: TaxpayerLookup,
    national_id: str,
    deadline: Deadline,
    identifiers: IdentifierProfile | None = None,
) -> SourceOutcome:
    answer = client.find(national_id, deadline)
    claims: list[Claim] = []
    attributes: list[tuple[dict[str, Any], str]] = []
    names_done = False
    for index, row in enumerate(answer["returns"]):
        try:
            record, sources = _mapped("tax_income_row", row, identifiers)
        except MappingError as error:  # one unreadable return does not hide the others
            log.info(
                "prefill: a tax return could not be mapped (%d problem(s))", len(error.problems)
            )
            continue
        taxpayer = record.get("taxpayer") or {}
        if not names_done:
            for name in ("given_name", "family_name", "other_names"):
                if taxpayer.get(name):
                    claims.append(
                        Claim("person", name, taxpayer[name], f"$.returns[{index}].TAXPAYER_NAME")
                    )
            names_done = True
        for attr_index, attribute in enumerate(record.get("attributes") or []):
            path = sources.get(f"$.attributes[{attr_index}].value", "")
            if path.startswith("$"):
                path = f"$.returns[{index}]{path[1:]}"
            attributes.append((dict(attribute), path or "(derived)"))
    place = None
    for index, taxpayer in enumerate(answer["taxpayers"]):
        address = taxpayer.get("registered_address") or {}
        if address.get("line"):
            claims.append(
                Claim(
                    "household",
                    "address",
                    address["line"],
                    f"$.taxpayers[{index}].registered_address.line",
                )
            )
        if isinstance(address.get("lon"), int | float) and isinstance(
            address.get("lat"), int | float
        ):
            point = {"lat": float(address["lat"]), "lon": float(address["lon"])}
            claims.append(
                Claim("household", "location", point, f"$.taxpayers[{index}].registered_address")
            )
            place = place or Place(
                lon=point["lon"], lat=point["lat"], area_code=address.get("locality_code")
            )
    return SourceOutcome("tax", OK, claims=claims, attributes=attributes, place=place)


def ask_gis(client: AreaLookup, place: Place, deadline: Deadline) -> SourceOutcome:
    attributes: list[tuple[dict[str, Any], str]] = []
    claims: list[Claim] = []
    if place.has_point:
        assert place.lon is not None and place.lat is not None
        answer = client.by_point(place.lon, place.lat, deadline)
        record, sources = _mapped("gis_area", answer)
        for name in ("admin_area_code", "admin_area_name"):
            if record.get(name):
                claims.append(Claim("household", name, record[name], sources.get(f"$.{name}", "")))
        if record.get("location"):
            claims.append(Claim("household", "location", record["location"], "$.point"))
        for index, attribute in enumerate(record.get("attributes") or []):
            attributes.append((dict(attribute), sources.get(f"$.attributes[{index}].value", "")))
    else:
        assert place.area_code
        answer = client.by_code(place.area_code, deadline)
        # No mapping spec reads /areas/<code>; its fields are canonical already.
        claims.append(Claim("household", "admin_area_code", str(answer["code"]).upper(), "$.code"))
        if answer.get("name"):
            claims.append(Claim("household", "admin_area_name", answer["name"], "$.name"))
        for name in ("flood_risk", "poverty_rate"):
            if isinstance(answer.get(name), int | float):
                attributes.append(
                    (
                        {"name": name, "domain": "other", "value": answer[name], "unit": "share"},
                        f"$.{name}",
                    )
                )
    return SourceOutcome("gis", OK, claims=claims, attributes=attributes)


# --- running them -----------------------------------------------------------------------------


def _failure(source: str, error: BaseException) -> SourceOutcome:
    """The status a failed source gets; reasons are our own texts (no payloads, no IDs)."""
    if isinstance(error, NotFoundError | CivilRegistryNotFound | TaxpayerNotFound | AreaNotFound):
        return SourceOutcome(source, NOT_FOUND, reason=error.detail or "not found")
    if isinstance(error, PartnerTimeout | DeadlineExceeded):
        return SourceOutcome(source, TIMEOUT, reason=safe_reason(error))
    if isinstance(error, CircuitOpenError | RateLimitTimeout | NotAttempted | PartnerError):
        return SourceOutcome(source, ERROR, reason=safe_reason(error))
    if isinstance(error, MappingError):
        return SourceOutcome(
            source,
            ERROR,
            reason=f"the answer could not be mapped "
            f"({len(error.problems)} problem(s) with spec {error.spec})",
        )
    log.error("prefill: %s failed unexpectedly: %s", source, type(error).__name__)
    return SourceOutcome(source, ERROR, reason=f"unexpected error ({type(error).__name__})")


class _Run:
    """One prefill in flight: outcomes arrive from pool threads; the caller waits on them."""

    def __init__(
        self,
        service: PrefillService,
        national_id: str,
        seconds: float,
        connectors: Mapping[str, Connector],
    ) -> None:
        self.service = service
        self.national_id = national_id
        self.seconds = seconds
        self.connectors = connectors
        self.started = time.monotonic()
        self.deadline = Deadline(seconds)
        self.cond = threading.Condition()
        self.outcomes: dict[str, SourceOutcome] = {}
        self.gis_started = False

    def finish(self, outcome: SourceOutcome) -> None:
        if outcome.ms is None:
            outcome.ms = (time.monotonic() - self.started) * 1000
        outcome.retrieved_at = outcome.retrieved_at or datetime.now(UTC)
        start_gis: Place | None = None
        gis_nothing = False
        with self.cond:
            if outcome.source in self.outcomes:
                return
            self.outcomes[outcome.source] = outcome
            if outcome.source in LOCATION_SOURCES and not self.gis_started:
                if outcome.place is not None and (
                    outcome.place.has_point or outcome.place.area_code
                ):
                    self.gis_started, start_gis = True, outcome.place
                elif all(s in self.outcomes for s in LOCATION_SOURCES):
                    self.gis_started, gis_nothing = True, True
            self.cond.notify_all()
        if start_gis is not None:
            self.launch("gis", lambda: self.service.gis_task(self, start_gis))
        elif gis_nothing:
            self.finish(
                SourceOutcome(
                    "gis", NOT_FOUND, reason="no source gave an address or a point to look up"
                )
            )

    def launch(self, source: str, work: Callable[[], SourceOutcome]) -> None:
        def run() -> None:
            if self.deadline.expired:  # waited in the pool queue past the deadline
                self.finish(
                    SourceOutcome(
                        source, TIMEOUT, reason="not started before the deadline (the hub is busy)"
                    )
                )
                return
            try:
                outcome = work()
            except Exception as error:
                outcome = _failure(source, error)
            self.finish(outcome)

        self.service.pool.submit(run)

    def wait(self) -> dict[str, SourceOutcome]:
        with self.cond:
            self.cond.wait_for(
                lambda: all(s in self.outcomes for s in SOURCES), timeout=self.seconds
            )
            done = dict(self.outcomes)
        for source in SOURCES:
            if source not in done:
                done[source] = SourceOutcome(
                    source,
                    TIMEOUT,
                    ms=self.seconds * 1000,
                    reason=f"no answer within the {self.seconds:g} s deadline",
                )
        return done


class PrefillService:
    """Holds the shared pool and the look-up clients; ``prefill`` answers one request.

    ``connectors`` is a mapping (or a callable returning one) of configured connector name ->
    connector instance, as the hub keeps them in ``app.extensions["srhub_connectors"]``.
    """

    def __init__(
        self,
        connectors: Mapping[str, Connector] | Callable[[], Mapping[str, Connector]],
        *,
        max_workers: int = 16,
        precedence: SourcePrecedence | None = None,
        identifiers: IdentifierProfile | None = None,
    ) -> None:
        self._connectors = connectors
        self.identifiers = identifiers or default_profile()
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="prefill")
        self.precedence = precedence or SourcePrecedence.default()
        self._clients: dict[tuple[str, int], tuple[Connector, Any]] = {}
        self._lock = threading.Lock()

    def connectors(self) -> Mapping[str, Connector]:
        found = self._connectors() if callable(self._connectors) else self._connectors
        return found or {}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _client(self, source: str, connector: Connector, build: Callable[[Connector], Any]) -> Any:
        key = (source, id(connector))
        with self._lock:
            held = self._clients.get(key)
            if held is None or held[0] is not connector:
                held = (connector, build(connector))
                self._clients[key] = held
            return held[1]

    def gis_task(self, run: _Run, place: Place) -> SourceOutcome:
        connector = run.connectors["gis"]
        client = self._client("gis", connector, AreaLookup.from_connector)
        return ask_gis(client, place, run.deadline)

    def normalised(self, national_id: str) -> str:
        """``national_id`` as the registry stores it; ``InvalidNationalId`` when it breaks
        the country profile's rule (nothing is called)."""
        problem = national_id_problem(national_id, "UIN", self.identifiers)
        if problem:
            raise InvalidNationalId(problem)
        return self.identifiers.normalise("national_id", national_id)

    def prefill(self, national_id: str, deadline_s: float = DEFAULT_DEADLINE_S) -> dict[str, Any]:
        """The household proposal for ``national_id`` (see the module docstring).

        Raises ``InvalidNationalId`` before anything is called. Sources whose connector is
        not configured are reported ``error`` / ``not configured``; ``missing`` lists them.
        """
        national_id = self.normalised(national_id)
        if not 0 < deadline_s <= MAX_DEADLINE_S:
            raise ValueError(f"the deadline must be more than 0 and at most {MAX_DEADLINE_S:g} s")
        configured = self.connectors()
        run = _Run(self, national_id, deadline_s, configured)
        missing = [s for s in SOURCES if s not in configured]
        run.gis_started = "gis" in missing
        for source in missing:
            run.finish(SourceOutcome(source, ERROR, ms=0.0, reason=NOT_CONFIGURED))
        tasks: dict[str, Callable[[], SourceOutcome]] = {}
        if "national_id" in configured:
            tasks["national_id"] = lambda: ask_national_id(
                configured["national_id"], national_id, run.deadline
            )
        if "civil_registry" in configured:
            tasks["civil_registry"] = lambda: ask_civil_registry(
                self._client(
                    "civil_registry",
                    configured["civil_registry"],
                    CivilRegistryUinLookup.from_connector,
                ),
                national_id,
                run.deadline,
                self.identifiers,
            )
        if "tax" in configured:
            tasks["tax"] = lambda: ask_tax(
                self._client("tax", configured["tax"], TaxpayerLookup.from_connector),
                national_id,
                run.deadline,
                self.identifiers,
            )
        for source, work in tasks.items():
            run.launch(source, work)
        outcomes = run.wait()
        answer = build_proposal(national_id, outcomes, self.precedence)
        answer["deadline_ms"] = round(deadline_s * 1000)
        answer["elapsed_ms"] = round((time.monotonic() - run.started) * 1000, 1)
        answer["missing"] = missing
        authority = outcomes.get("national_id")
        place = authority.place if authority is not None and authority.status == OK else None
        answer[AUTHORITY_AREA_KEY] = place.area_code if place is not None else None
        return answer


# --- merging -------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def build_proposal(
    national_id: str, outcomes: Mapping[str, SourceOutcome], precedence: SourcePrecedence
) -> dict[str, Any]:
    """Merge the sources' claims by precedence into a household proposal with provenance."""
    provenance: list[dict[str, Any]] = []
    candidates: dict[tuple[str, str], list[tuple[Candidate, int]]] = {}
    sequence = 0
    for source in SOURCES:
        outcome = outcomes[source]
        if outcome.status != OK:
            continue
        at = outcome.retrieved_at or datetime.now(UTC)
        for claim in outcome.claims:
            sequence += 1
            entry = {
                "source": source,
                "field": ("head." if claim.entity == "person" else "") + claim.field,
                "value": claim.value,
                "retrieved_at": _iso(at),
                "source_field": claim.source_field,
                "selected": False,
            }
            provenance.append(entry)
            key = (claim.entity, claim.field)
            candidates.setdefault(key, []).append(
                (Candidate(claim.value, source, at, sequence), len(provenance) - 1)
            )
        for attribute, path in outcome.attributes:
            provenance.append(
                {
                    "source": source,
                    "field": f"attributes.{attribute.get('name')}"
                    + (f"[{attribute['period']}]" if attribute.get("period") else ""),
                    "value": attribute.get("value"),
                    "retrieved_at": _iso(at),
                    "source_field": path,
                    "selected": True,
                }
            )
    head: dict[str, Any] = {}
    household: dict[str, Any] = {}
    identifiers: list[dict[str, Any]] = []
    for (entity, name), options in candidates.items():
        precedence_field = name.split(".", 1)[0]
        if precedence_field == "admin_area_name":  # the name goes with the code
            precedence_field = "admin_area_code"
        chosen = precedence.choose(entity, precedence_field, [c for c, _ in options])
        if name.startswith("identifiers."):
            # The issuer of an identifier is its authority (the national ID authority for
            # national IDs), whatever the precedence of the person's other fields.
            issuer = [c for c, _ in options if c.source_system == name.split(".", 1)[1]]
            chosen = issuer[0] if issuer else chosen
        if chosen is None:
            continue
        for candidate, index in options:
            if candidate is chosen:
                provenance[index]["selected"] = True
        if entity == "person" and name.startswith("identifiers."):
            identifiers.append(chosen.value)
        elif entity == "person":
            head[name] = chosen.value
        else:
            household[name] = chosen.value
    if identifiers:
        head["identifiers"] = sorted(identifiers, key=lambda i: i.get("system", ""))
    if head:
        head["relationship"] = "head"
    attributes = _attributes(outcomes)
    proposal: dict[str, Any] = {
        "head": head or None,
        "address": household.get("address"),
        "location": household.get("location"),
        "admin_area_code": household.get("admin_area_code"),
        "admin_area_name": household.get("admin_area_name"),
        "attributes": attributes,
    }
    statuses = {source: outcomes[source].summary() for source in SOURCES}
    return {
        "national_id": national_id,
        "household": proposal,
        "sources": statuses,
        # Partial: a source that should have answered did not (timeout, error). A source
        # that answered "not found" has said all it knows.
        "partial": any(s["status"] in (TIMEOUT, ERROR) for s in statuses.values()),
        "provenance": provenance,
    }


def _attributes(outcomes: Mapping[str, SourceOutcome]) -> list[dict[str, Any]]:
    """Income per tax year (returns of one year summed), employment, area attributes."""
    merged: dict[tuple[str, str | None], dict[str, Any]] = {}
    for source in SOURCES:
        outcome = outcomes[source]
        if outcome.status != OK:
            continue
        for attribute, _path in outcome.attributes:
            name = str(attribute.get("name"))
            key = (name, attribute.get("period"))
            item = {**attribute, "source": source}
            if key in merged and name == "gross_income":
                merged[key]["value"] = merged[key]["value"] + attribute.get("value", 0)
            elif key in merged and name == "formal_employment":
                merged[key]["value"] = bool(merged[key]["value"] or attribute.get("value"))
            else:
                merged[key] = item
    return sorted(merged.values(), key=lambda a: (a["name"], str(a.get("period") or "")))
