"""The sections of the dashboard's household page, assembled in one place.

Each section is built by one function from a ``SectionContext`` (the household as the viewer
may see it, who the viewer is, what they may do) and rendered by one template include
(``ui/household/_<key>.html``). ``SECTIONS`` lists the builders in page order; a new section
(data-quality issues, change requests) is one builder, one include and one line here:

    def issues_section(ctx: SectionContext) -> Section | None:
        with ctx.sessions() as session:
            issues = issues_for_household(session, ctx.household_id)
        return Section("issues", "Data-quality issues", {"issues": issues})

A builder returns None to leave its section out (nothing to show this viewer).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from hub.auth.roles import Principal, Role
from hub.corrections.service import PROPOSER_ROLES, list_requests
from hub.corrections.targets import HOUSEHOLD_FIELDS, PERSON_FIELDS
from hub.quality.service import issues_for_household
from registry_core.identifiers import NOTE_FIELD
from registry_core.models import OutboxEvent
from registry_core.service import Registry
from standards.timeutil import utcnow

# Who changes things from the household page (record consent, confirm recertification):
# the dashboard's staff, as on the consent page. Supervisors and auditors read.
CHANGER_ROLES = (Role.admin, Role.registry_staff)
CONSENT_CHANNELS = ("paper", "verbal", "electronic", "sms", "form", "other")
HISTORY_LIMIT = 100
# Event data worth a line in the history (never names, identifiers or dates of birth).
_HISTORY_KEYS = (
    "changed_fields",
    "reason",
    "relationship",
    "status",
    "program_code",
    "purpose",
    "channel",
    "due_on",
    "model",
)


@dataclass(frozen=True)
class SectionContext:
    """What every section builder gets: the household (identifiers already masked for this
    viewer), the viewer, and the registry and database to read more from."""

    household: Mapping[str, Any]
    viewer: Principal
    registry: Registry
    sessions: sessionmaker[Session]

    @property
    def household_id(self) -> uuid.UUID:
        return uuid.UUID(str(self.household["id"]))

    @property
    def may_change(self) -> bool:
        return self.viewer.has_any(CHANGER_ROLES)

    @property
    def member_names(self) -> dict[str, str]:
        return {
            m["id"]: f"{m.get('given_name') or ''} {m.get('family_name') or ''}".strip()
            for m in self.household.get("members", [])
        }


@dataclass(frozen=True)
class Section:
    """One section of the page: its ``key`` names the include (``ui/household/_<key>.html``)
    and the element id; ``data`` is what the include reads (as ``section.data``)."""

    key: str
    title: str
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def template(self) -> str:
        return f"ui/household/_{self.key}.html"


SectionBuilder = Callable[[SectionContext], "Section | None"]


def display_value(value: Any) -> str:
    """An asserted value as a cell shows it (a location as ``lat, lon``)."""
    if value is None:
        return ""
    if isinstance(value, dict) and {"lat", "lon"} <= value.keys():
        return f"{value['lat']}, {value['lon']}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# --- members ---------------------------------------------------------------------------------


def members_section(ctx: SectionContext) -> Section:
    """Current members, head first, with relationship and identifiers (masked by role)."""
    return Section(
        "members",
        "Members",
        {
            "members": ctx.household.get("members", []),
            "head": ctx.household.get("head_person_id"),
        },
    )


# --- provenance ------------------------------------------------------------------------------


def _fields(assertions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Assertions grouped per field: the current value's (the precedence winner) and the
    others it overrode, newest first. Data-quality notes are not fields."""
    by_field: dict[str, list[dict[str, Any]]] = {}
    for row in assertions:
        if row["field"] != NOTE_FIELD:
            by_field.setdefault(row["field"], []).append(row)
    found = []
    for name in sorted(by_field):
        rows = sorted(by_field[name], key=lambda r: r["asserted_at"], reverse=True)
        current = next((r for r in rows if r["current"]), None)
        found.append(
            {
                "field": name,
                "current": current,
                "value": display_value(current["value"]) if current else "",
                "overridden": [
                    {**r, "shown": display_value(r["value"])} for r in rows if r is not current
                ],
            }
        )
    return found


def provenance_section(ctx: SectionContext) -> Section:
    """Per field of the household and of each member: where its current value came from
    (source system, record, when) and the values precedence overrode."""
    entities = [
        {
            "label": "Household",
            "key": "household",
            "fields": _fields(ctx.registry.provenance("household", ctx.household_id)),
        }
    ]
    for member in ctx.household.get("members", []):
        entities.append(
            {
                "label": ctx.member_names.get(member["id"]) or "member",
                "key": member["id"],
                "fields": _fields(ctx.registry.provenance("person", member["id"])),
            }
        )
    return Section("provenance", "Where each value comes from", {"entities": entities})


# --- recertification -------------------------------------------------------------------------


def recertification_section(ctx: SectionContext) -> Section:
    """The household's due date, its state as the last round flagged it, whether the date
    has passed today, and the confirm button for those who may confirm."""
    status = ctx.household.get("recertification")
    days_left = None
    if status:
        days_left = (date.fromisoformat(status["due_on"]) - utcnow().date()).days
    return Section(
        "recertification",
        "Recertification",
        {
            "status": status,
            "days_left": days_left,
            "past_due": days_left is not None and days_left < 0,
            "may_confirm": ctx.may_change,
        },
    )


# --- consent ---------------------------------------------------------------------------------


def consents_of(registry: Registry, household: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every consent given for the household or by a current member, oldest first."""
    found = {c["consent_id"]: c for c in registry.list_consents(household_id=household["id"])}
    for member in household.get("members", []):
        for consent in registry.list_consents(person_id=member["id"]):
            found.setdefault(consent["consent_id"], consent)
    return sorted(found.values(), key=lambda c: (c["granted_at"], c["consent_id"]))


def consent_section(ctx: SectionContext) -> Section:
    """The consents with their history, and (for staff) the forms to record and withdraw."""
    return Section(
        "consent",
        "Consent",
        {
            "consents": consents_of(ctx.registry, ctx.household),
            "names": ctx.member_names,
            "may_change": ctx.may_change,
            "channels": CONSENT_CHANNELS,
        },
    )


# --- history ---------------------------------------------------------------------------------


def _summary(data: Mapping[str, Any]) -> str:
    parts = []
    for key in _HISTORY_KEYS:
        value = data.get(key)
        if value in (None, "", [], ()):
            continue
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{key.replace('_', ' ')}: {shown}")
    return "; ".join(parts)


def history_section(ctx: SectionContext) -> Section:
    """The events about the household, its current members and its consents, newest first
    (what programs were told, in the order it happened)."""
    consent_ids = [c["consent_id"] for c in consents_of(ctx.registry, ctx.household)]
    subjects = [
        f"household/{ctx.household_id}",
        *(f"person/{m['id']}" for m in ctx.household.get("members", [])),
        *(f"consent/{cid}" for cid in consent_ids),
    ]
    names = ctx.member_names
    with ctx.sessions() as session:
        rows = session.scalars(
            select(OutboxEvent)
            .where(or_(*(OutboxEvent.subject == s for s in subjects)))
            .order_by(OutboxEvent.sequence.desc())
            .limit(HISTORY_LIMIT)
        ).all()
        events = []
        for row in rows:
            data = row.data or {}
            person = data.get("person_id")
            source = data.get("source") if isinstance(data.get("source"), dict) else {}
            events.append(
                {
                    "sequence": row.sequence,
                    "type": row.routing_key,
                    "time": row.time,
                    "who": names.get(person, "") if isinstance(person, str) else "",
                    "source": (source or {}).get("system", ""),
                    "summary": _summary(data),
                }
            )
    return Section("history", "History", {"events": events, "limit": HISTORY_LIMIT})


# --- data quality ----------------------------------------------------------------------------


def data_quality_section(ctx: SectionContext) -> Section:
    """The registry's live data-quality issues about the household and its current members
    (``hub.quality``), then the notes sources attached to the members when they sent them."""
    with ctx.sessions() as session:
        issues = issues_for_household(session, ctx.household_id)
    notes = []
    for member in ctx.household.get("members", []):
        for row in ctx.registry.provenance("person", member["id"]):
            if row["field"] == NOTE_FIELD and isinstance(row["value"], dict):
                notes.append(
                    {
                        "who": ctx.member_names.get(member["id"]) or "member",
                        "source_system": row["source_system"],
                        "asserted_at": row["asserted_at"],
                        **{k: row["value"].get(k, "") for k in ("target", "rule", "message")},
                    }
                )
    return Section(
        "data_quality",
        "Data quality",
        {"issues": issues, "notes": notes, "names": ctx.member_names},
    )


# --- corrections -----------------------------------------------------------------------------

CORRECTIONS_SHOWN = 20
CORRECTION_PAGE_ROLES = (Role.admin, Role.registry_staff, Role.supervisor)


def corrections_section(ctx: SectionContext) -> Section:
    """The household's newest change requests (proposed, applied, rejected, withdrawn), and
    for those who may propose, the first step of the form that proposes one; the full list
    with each request's steps is on its corrections page."""
    with ctx.sessions() as session:
        requests, total = list_requests(
            session, household_id=ctx.household_id, limit=CORRECTIONS_SHOWN
        )
    return Section(
        "corrections",
        "Corrections",
        {
            "requests": requests,
            "total": total,
            "names": ctx.member_names,
            # The corrections page decides requests: auditors read this section only.
            "may_open_page": ctx.viewer.has_any(CORRECTION_PAGE_ROLES),
            # Proposing (hub.ui.correction_form_views): staff and supervisors, not auditors.
            "may_propose": ctx.viewer.has_any(PROPOSER_ROLES),
            "household_targets": [f"household.{f}" for f in HOUSEHOLD_FIELDS],
            "person_targets": [f"person.{f}" for f in PERSON_FIELDS],
            "fact_example": "attribute.income.wage",
        },
    )


# Page order. Add a builder here to add a section (see the module docstring).
SECTIONS: list[SectionBuilder] = [
    members_section,
    recertification_section,
    provenance_section,
    consent_section,
    corrections_section,
    history_section,
    data_quality_section,
]


def household_sections(ctx: SectionContext) -> list[Section]:
    """The sections of one household's page for one viewer, in page order."""
    return [section for build in SECTIONS if (section := build(ctx)) is not None]
