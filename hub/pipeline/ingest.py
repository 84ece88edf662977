"""The ingest worker's handlers: raw partner record -> mapping -> registry.

Each routing key on ``sr.inbound`` (``<connector>.<record_type>``) names a route: how to take
the partner payload out of the envelope, which mapping spec turns it into an inbound record
(``standards/schemas/inbound``), and which registry service applies it. Handlers run inside the
worker's transaction (``Registry.within``), so the effect and the processed-message record
commit together: a redelivered message changes nothing twice.

``ingest_handlers(runtime, routes)`` builds the handler registry the ingest worker runs: one
handler per route, plus the verification requests (``hub.pipeline.verification``). What the
handlers need (the registry services, the running connectors) is passed in there and reaches
them as ``ctx.services``; nothing is registered on import and nothing is a module global.

Outcomes that are normal for a registry are not errors: a death of someone never registered is
acknowledged and counted; an ambiguous match or a birth whose mother is not registered goes to
the review queue for a person to decide. Only records that can never be applied (mapping or
schema failures, broken rules) are dead-lettered, with the reason. Each handling returns a
``HandlerResult``: the outcome, and the data-quality notes the message log keeps.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from hub.pipeline import verification
from hub.pipeline.verification import ConnectorLookup, no_connector
from hub.workers.errors import PermanentError, TransientError
from hub.workers.handlers import HandlerContext, HandlerRegistry, HandlerResult
from mappings.engine import IdentifierReview, MappingError, Note, load_spec
from registry_core.errors import (
    BusinessRuleViolation,
    ConflictError,
    InvalidRecord,
    NotFound,
)
from registry_core.service import Registry, Source
from registry_core.vital import VitalFacts
from standards.validation import SchemaViolation

log = logging.getLogger(__name__)

CloudEvent = dict[str, Any]


# ---------------------------------------------------------------------------- the services


@dataclass(frozen=True)
class IngestServices:
    """What the ingest handlers use, given by whoever builds them (``ingest_handlers``)."""

    registry: Registry
    connectors: ConnectorLookup = no_connector  # the running connector of a name, if any


class SupportsRegistry(Protocol):
    """A ``HubRuntime``, or anything else that holds the registry services."""

    @property
    def registry(self) -> Registry: ...


# ---------------------------------------------------------------------------- payloads


def _payload(event: CloudEvent) -> Any:
    """The partner payload of a raw-record envelope (JSON object, or text for bytes)."""
    data = event.get("data") or {}
    if "payload" in data:
        return data["payload"]
    body = data.get("body")
    if body is None:
        raise PermanentError("the raw record carries neither payload nor body", "EnvelopeError")
    if data.get("body_encoding") == "base64":
        raise PermanentError("binary partner payloads are not mapped", "EnvelopeError")
    return body


def _websub_bundle(event: CloudEvent) -> Any:
    """OpenCRVS webhook delivery or feed entry -> the FHIR Bundle inside it.

    A delivery is OpenCRVS's body unchanged (``{"timestamp", "id", "event": {"hub",
    "context": [Bundle]}}``); the ``bundle_path`` header says which item of ``event.context``
    this record is about (``connectors.civil_registry.bundle_of`` reads it)."""
    from connectors.civil_registry import bundle_of

    payload = _payload(event)
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise PermanentError(
                f"delivery body is not JSON ({exc.msg})", "EnvelopeError"
            ) from None
    if isinstance(payload, Mapping):
        if payload.get("resourceType") == "Bundle":
            return payload
        headers = (event.get("data") or {}).get("headers") or {}
        path = headers.get("bundle_path") if isinstance(headers, Mapping) else None
        bundle = bundle_of(payload, path if isinstance(path, str) and path else None)
        if isinstance(bundle, Mapping):
            return bundle
    raise PermanentError(
        "no FHIR Bundle found in the delivery (expected event.context[n] or bundle)",
        "EnvelopeError",
    )


def _as_is(event: CloudEvent) -> Any:
    payload = _payload(event)
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except ValueError:
            return payload
    return payload


def _xml_or_json(event: CloudEvent) -> Any:
    """Tax rows arrive as JSON objects (CSV) or XML text (one <Return> element)."""
    payload = _payload(event)
    if isinstance(payload, str) and payload.lstrip().startswith("<"):
        from lxml import etree

        from mappings.xml_records import element_to_dict

        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
        try:
            element = etree.fromstring(payload.encode("utf-8"), parser=parser)
        except etree.XMLSyntaxError as exc:
            raise PermanentError(f"XML record is not well-formed: {exc}", "EnvelopeError") from None
        return element_to_dict(element)
    return payload


# ---------------------------------------------------------------------------- applying


def _source(system: str, record_id: Any, on: Any = None) -> Source:
    asserted = None
    if isinstance(on, str) and on:
        try:
            day = date.fromisoformat(on[:10])
            asserted = datetime(day.year, day.month, day.day, tzinfo=UTC)
        except ValueError:
            asserted = None
    return Source(system, str(record_id)[:128] if record_id else None, asserted)


def _ref_with_ids(ref: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ref.items() if v is not None}


def _who(
    registry: Registry,
    reference: Mapping[str, Any],
    kind: str,
    record: dict[str, Any],
    source: Source,
    ctx: IngestContext,
) -> uuid.UUID | str:
    """The registered person ``reference`` is about, or the outcome to report instead:
    "not_registered" when nobody matches, "review" (queued for a person) when unsure."""
    found = registry.resolve(_ref_with_ids(reference))
    if found.outcome == "no_match":
        return "not_registered"
    if found.outcome != "match" or found.person_id is None:
        registry.queue_review(
            kind=kind,
            reason=found.reason,
            record=record,
            candidates=found.candidates,
            source=source,
            message_id=ctx.message_id,
        )
        return "review"
    return found.person_id


def _declaration_source(record: dict[str, Any]) -> Source:
    """Provenance of a civil-registry record: its registration number, else (provisional)
    its tracking id, else its draft id, else the event id."""
    record_id = next(
        (
            record[k]
            for k in ("registration_number", "tracking_id", "draft_id", "event_id")
            if record.get(k)
        ),
        None,
    )
    return _source("civil_registry", record_id, record.get("registered_on"))


def _vital_facts(record: dict[str, Any], event: str, subject: str) -> VitalFacts:
    """The parts of a birth/death record beyond its subject, for the registry's provenance."""
    place = {
        part: record[f"{event}_place_{part}"]
        for part in ("admin_area_code", "type", "name")
        if record.get(f"{event}_place_{part}")
    }
    related = {role: record[role] for role in ("mother", "father", "informant") if record.get(role)}
    if event == "birth" and "mother" in related:
        related["mother"] = {k: v for k, v in related["mother"].items() if k == "identifiers"}
    return VitalFacts(
        place=place,
        residence=record.get(f"{subject}_residence") or {},
        related=related,
        provisional=bool(record.get("provisional")) or not record.get("registration_number"),
    )


def _note_ignored(kind: str, record: dict[str, Any], ctx: IngestContext) -> None:
    """What the partner sent but the mapping did not read: shapes only, never values.

    At DEBUG: real bundles always carry parts the registry has no use for (Observations, the
    facility's Organization), and a line per event at INFO buried what the hub did."""
    ignored = record.get("ignored") or []
    if ignored:
        log.debug(
            "civil registry %s (message %s): %d part(s) not read: %s",
            kind,
            ctx.message_id,
            len(ignored),
            "; ".join(ignored)[:1000],
        )


def apply_birth(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """A birth: the child joins the mother's household; a later delivery of the same birth
    (the registration number after a provisional record) updates that child."""
    source = _declaration_source(record)
    facts = _vital_facts(record, "birth", "mother")
    _note_ignored("birth", record, ctx)
    child_ids = record["child"].get("identifiers", [])
    known = registry.resolve({"identifiers": child_ids}) if child_ids else None
    mother_id: uuid.UUID | None = None
    if known is None or known.outcome != "match":
        mother = registry.resolve(_ref_with_ids(record["mother"]))
        if mother.outcome != "match" or mother.person_id is None:
            reason = (
                "the mother is not registered"
                if mother.outcome == "no_match"
                else f"the mother could not be identified with certainty: {mother.reason}"
            )
            registry.queue_review(
                kind="birth",
                reason=reason,
                record=record,
                candidates=mother.candidates,
                source=source,
                message_id=ctx.message_id,
            )
            return "review"
        mother_id = mother.person_id
    try:
        result = registry.record_birth(mother_id, record["child"], source, facts)
    except BusinessRuleViolation as exc:
        registry.queue_review(
            kind="birth",
            reason=str(exc),
            record=record,
            candidates=[],
            source=source,
            message_id=ctx.message_id,
        )
        return "review"
    return "applied" if result.events else "already_applied"


_DECLARATION_SYSTEMS = ("crvs_tracking_id", "crvs_draft_id")


def apply_death(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """A death: the person is marked deceased once, their membership ending on the date of
    death; a later delivery of the same death adds its registration number, nothing else."""
    source = _declaration_source(record)
    _note_ignored("death", record, ctx)
    deceased = _who(registry, record["deceased"], "death", record, source, ctx)
    if isinstance(deceased, str):
        return deceased
    declaration_ids = [
        i for i in record["deceased"].get("identifiers", []) if i["system"] in _DECLARATION_SYSTEMS
    ]
    try:
        result = registry.record_death(
            deceased,
            record["death_date"],
            source,
            record.get("registration_number"),
            identifiers=declaration_ids,
            facts=_vital_facts(record, "death", "deceased"),
        )
    except BusinessRuleViolation as exc:
        registry.queue_review(
            kind="death",
            reason=str(exc),
            record=record,
            candidates=[(str(deceased), 1.0)],
            source=source,
            message_id=ctx.message_id,
        )
        return "review"
    return "applied" if result.events else "already_applied"


def apply_income(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    source = _source("tax", record.get("record_no") or ctx.source_id, record.get("filed_on"))
    taxpayer = _who(registry, record["taxpayer"], "income", record, source, ctx)
    if isinstance(taxpayer, str):
        return taxpayer
    known = {i["system"] for i in registry.get_person(taxpayer).get("identifiers", [])}
    missing = [i for i in record["taxpayer"].get("identifiers", []) if i["system"] not in known]
    if missing:  # the tax authority taught us an identifier we did not have
        registry.update_person(taxpayer, {"identifiers": missing}, source)
    try:
        result = registry.record_person_attributes(taxpayer, record["attributes"], source)
    except BusinessRuleViolation:
        return "not_in_household"
    return "applied" if result.events else "already_applied"


def apply_verification(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    person_id = ctx.headers.get("person_id") or record.get("person_id")
    if not person_id:
        raise PermanentError(
            "a verification answer must name the person it was asked for", "MissingReference"
        )
    source = _source("national_id", record.get("transaction_id") or ctx.source_id)
    result = registry.record_verification(
        person_id,
        bool(record["verified"]),
        source,
        matched_fields=record.get("matched_fields", []),
        mismatched_fields=record.get("mismatched_fields", []),
        reason=record.get("reason") or ("not verified" if not record["verified"] else None),
    )
    return "applied" if result.events else "already_applied"


def apply_identity(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """An eKYC record: the authority's view of a person's names, sex and birth date."""
    person = record["person"]
    found = registry.resolve({"identifiers": person.get("identifiers", [])})
    if found.outcome != "match" or found.person_id is None:
        return "not_registered"
    source = _source("national_id", record.get("transaction_id") or ctx.source_id)
    fields = {
        k: person[k]
        for k in ("given_name", "family_name", "other_names", "sex", "birth_date")
        if k in person
    }
    result = registry.update_person(found.person_id, fields, source) if fields else None
    return "applied" if result and result.events else "already_applied"


def apply_area(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """GIS: a household's location resolved to an area, with the area's risk layers."""
    household_id = ctx.headers.get("household_id") or record.get("household_id")
    if not household_id:
        return "no_household"
    source = _source("gis", ctx.source_id)
    changes: dict[str, Any] = {"admin_area_code": record["admin_area_code"]}
    if record.get("location"):
        changes["location"] = record["location"]
    registry.update_household(household_id, changes, source)
    if record.get("attributes"):
        registry.record_attributes(household_id, record["attributes"], source)
    return "applied"


def apply_area_layers(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """GIS risk and poverty layers of one locality, onto every household registered there."""
    if not record.get("attributes"):
        return "nothing_to_apply"
    source = _source("gis", ctx.source_id)
    changed = 0
    for household_id in registry.household_ids_in_area(record["admin_area_code"]):
        result = registry.record_attributes(household_id, record["attributes"], source)
        changed += bool(result.events)
    return "applied" if changed else "already_applied"


def apply_enrollment(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    source = _source(
        "programs",
        f"{record['program_code']}:{record['beneficiary_number']}",
        record.get("enrolled_on"),
    )
    who = _who(registry, record["beneficiary"], "enrollment", record, source, ctx)
    if isinstance(who, str):
        return who
    number = f"{record['program_code']}-{record['beneficiary_number']}"
    known = registry.get_person(who).get("identifiers", [])
    stored = registry.identifier_profile.normalise("program_beneficiary_id", number)
    if any(i["system"] == "program_beneficiary_id" and i["value"] == stored for i in known):
        return "already_applied"
    registry.update_person(
        who,
        {"identifiers": [{"system": "program_beneficiary_id", "value": number}]},
        source,
    )
    return "applied"


# ---------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class IngestContext:
    message_id: str
    source_id: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Route:
    spec: str
    extract: Callable[[CloudEvent], Any]
    apply: Callable[[Registry, dict[str, Any], IngestContext], str]
    subject: str | None = None  # the person the record is about: where its notes are kept


ROUTES: dict[str, Route] = {
    "civil_registry.birth": Route("civil_registry_birth", _websub_bundle, apply_birth, "child"),
    "civil_registry.death": Route("civil_registry_death", _websub_bundle, apply_death, "deceased"),
    "civil_registry.dci_birth": Route("civil_registry_dci_birth", _as_is, apply_birth, "child"),
    "civil_registry.dci_death": Route("civil_registry_dci_death", _as_is, apply_death, "deceased"),
    "national_id.verification": Route("national_id_verification", _as_is, apply_verification),
    "national_id.person": Route("national_id_person", _as_is, apply_identity, "person"),
    "tax.income_row": Route("tax_income_row", _xml_or_json, apply_income, "taxpayer"),
    "gis.location": Route("gis_area", _as_is, apply_area),
    "gis.area_layers": Route("gis_area", _as_is, apply_area_layers),
    "programs.enrollment": Route("program_enrollment", _as_is, apply_enrollment, "beneficiary"),
}


def ingest_handlers(
    runtime: SupportsRegistry,
    routes: Mapping[str, Route],
    *,
    connectors: ConnectorLookup | None = None,
) -> HandlerRegistry:
    """The ingest worker's handlers: one per route of ``routes`` (keyed by routing key) and
    the verification requests. ``runtime`` gives the registry services (a ``HubRuntime``, or
    ``IngestServices`` with the connectors too); ``connectors`` finds a running connector by
    name (verification requests call the national ID connector)."""
    if isinstance(runtime, IngestServices):
        services = runtime if connectors is None else IngestServices(runtime.registry, connectors)
    else:
        services = IngestServices(runtime.registry, connectors or no_connector)
    handlers = HandlerRegistry("ingest", services)
    apply_route = IngestHandler(routes)
    for routing_key in routes:
        handlers.register(routing_key, apply_route)
    # Verification requests call a partner: they run outside a database transaction.
    handlers.register(verification.ROUTING_KEY, verification.handle, transactional=False)
    return handlers


class IngestHandler:
    """The handler of every route: map the partner payload, apply it, report the outcome."""

    def __init__(self, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)

    def __call__(self, event: CloudEvent, ctx: HandlerContext) -> HandlerResult:
        services: IngestServices = ctx.services
        notes: list[str] = []
        try:
            outcome = _handle(event, ctx, self.routes, services.registry, notes)
        except PermanentError as exc:
            exc.notes = tuple(notes)  # what was noted before it failed goes to the log too
            raise
        return HandlerResult(outcome, tuple(notes))


def _note_line(note: Note) -> str:
    """One data-quality note for the message log: target, rule and reason (never a value)."""
    return f"{note.target}: {note.message}"


def _handle(
    event: CloudEvent,
    ctx: HandlerContext,
    routes: Mapping[str, Route],
    registry: Registry,
    log_notes: list[str],
) -> str:
    routing_key = ctx.delivery.message.routing_key
    route = routes.get(routing_key)
    if route is None:
        raise PermanentError(f"no ingest route for {routing_key}", "NoRoute")
    data = event.get("data") or {}
    context = IngestContext(
        message_id=str(event.get("id")),
        source_id=str(data.get("source_id") or ""),
        headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
    )
    if ctx.session is not None:
        registry = registry.within(ctx.session)
    # The registry's own country profile: the mapping checks identifiers by the same rules
    # (and normalises them the same way) as every other write path.
    try:
        mapped = load_spec(route.spec).map(route.extract(event), registry.identifier_profile)
    except IdentifierReview as exc:
        log_notes.append(f"review: {exc.reason}")
        log_notes.extend(_note_line(n) for n in exc.notes)
        return _review_identifiers(registry, routing_key, exc, context)
    except MappingError as exc:
        raise PermanentError(json.dumps(exc.as_dict())[:2000], "MappingError") from None
    record = mapped.record
    log_notes.extend(_note_line(n) for n in mapped.notes)
    try:
        outcome = route.apply(registry, record, context)
        if mapped.notes:
            _keep_notes(registry, route, routing_key, record, mapped.notes, outcome, context)
    except ConflictError as exc:
        raise TransientError(str(exc)) from exc
    except SchemaViolation as exc:
        raise PermanentError(
            "; ".join(f"{v.path}: {v.message}" for v in exc.violations)[:2000], "SchemaViolation"
        ) from None
    except (InvalidRecord, BusinessRuleViolation, NotFound) as exc:
        raise PermanentError(str(exc)[:2000], type(exc).__name__) from None
    log.debug("ingest %s: %s", routing_key, outcome)
    return outcome


def _connector_source(routing_key: str, ctx: IngestContext) -> Source:
    return Source(routing_key.split(".", 1)[0], ctx.source_id[:128] or None)


def _review_identifiers(
    registry: Registry, routing_key: str, exc: IdentifierReview, ctx: IngestContext
) -> str:
    """The subject's identifier broke the country profile: a person decides (never a dead
    letter). The sealed review record holds the mapped facts, which identifiers were refused
    and why, the values as received (so staff can correct them) and the notes."""
    record = {
        **exc.record,
        "identifier_problems": [p.as_dict() for p in exc.problems],
        "refused_identifiers": exc.refused,
        "data_quality_notes": [n.as_dict() for n in exc.notes],
    }
    registry.queue_review(
        kind="invalid_identifier",
        reason=f"{routing_key}: {exc.reason}"[:2000],
        record=record,
        candidates=[],
        source=_connector_source(routing_key, ctx),
        message_id=ctx.message_id,
    )
    return "review"


def _keep_notes(
    registry: Registry,
    route: Route,
    routing_key: str,
    record: Mapping[str, Any],
    notes: tuple[Note, ...],
    outcome: str,
    ctx: IngestContext,
) -> None:
    """Keep the notes where staff look: on the person the record is about (provenance) when
    the record was applied to a registered person, on the review when it went to one."""
    dicts = [n.as_dict() for n in notes]
    if outcome == "review":
        registry.add_review_notes(ctx.message_id, dicts)
        return
    subject = record.get(route.subject) if route.subject else None
    identifiers = subject.get("identifiers") if isinstance(subject, Mapping) else None
    if not identifiers:
        return
    found = registry.resolve({"identifiers": identifiers})
    if found.outcome == "match" and found.person_id is not None:
        registry.record_data_quality_notes(
            found.person_id, dicts, _connector_source(routing_key, ctx)
        )
