"""What each caller may see of people and households, decided in one place for every read API
(``/api/v1``, FHIR, DCI).

- Staff roles (admin, registry staff, field workers and supervisors within their areas,
  auditors) read every record; auditors check the registry's work, not people's identities,
  so they get identifiers masked.
- A program's system reads only the people and households its program's consents cover
  (``registry_core.consent``), with identifiers in clear: the consent is what lets the
  registry share them with that program.
- A partner system reads no personal data: consents name programs, and it acts for none.
"""

from __future__ import annotations

import copy
from typing import Any

from hub.auth.flask_auth import current_principal
from hub.auth.roles import Principal, Role
from registry_core.consent import ReadScope
from registry_core.crypto import mask_identifier

# Roles that read every record (field workers, supervisors: of their areas, checked by the
# views).
EVERY_RECORD_ROLES = (
    Role.admin,
    Role.registry_staff,
    Role.field_worker,
    Role.supervisor,
    Role.auditor,
)
# Roles that see identifier values in clear on every record they read (a supervisor checks the
# ID documents field workers captured). A program's system sees them in clear too, on the
# records its consents let it read (and only those).
FULL_IDENTIFIER_ROLES = (Role.admin, Role.registry_staff, Role.field_worker, Role.supervisor)


def read_scope(principal: Principal) -> ReadScope:
    """Which records ``principal`` may read (not yet which fields: see ``shape_*``)."""
    if principal.has_any(EVERY_RECORD_ROLES):
        return ReadScope(everything=True)
    if Role.program in principal.roles and principal.program:
        return ReadScope(program=principal.program)
    return ReadScope()


def identifiers_visible_to(principal: Principal) -> bool:
    """Whether ``principal`` sees identifier values in clear (the dashboard asks too)."""
    return principal.has_any(FULL_IDENTIFIER_ROLES) or read_scope(principal).program is not None


def _may_see_identifiers() -> bool:
    return identifiers_visible_to(current_principal())


def _mask_person(person: dict[str, Any]) -> None:
    for identifier in person.get("identifiers", []):
        identifier["value"] = mask_identifier(identifier["value"])


def shape_person(record: dict[str, Any]) -> dict[str, Any]:
    if _may_see_identifiers():
        return record
    shaped = copy.deepcopy(record)
    _mask_person(shaped)
    return shaped


def shape_household(record: dict[str, Any]) -> dict[str, Any]:
    if _may_see_identifiers():
        return record
    return masked_household(record)


def masked_household(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` with every member's identifier values masked."""
    shaped = copy.deepcopy(record)
    for member in shaped.get("members", []):
        _mask_person(member)
    return shaped


def only_members(record: dict[str, Any], covered: set[str]) -> dict[str, Any]:
    """A household as a consent-scoped reader sees it: its covered members only (and no head
    reference when the head is not one of them)."""
    shaped = dict(record)
    shaped["members"] = [m for m in record.get("members", []) if m.get("id") in covered]
    if shaped.get("head_person_id") not in covered:
        shaped.pop("head_person_id", None)
    shaped.pop("attributes", None)  # socio-economic facts may be about uncovered members
    return shaped
