"""What each caller may see of a record. Auditors check the registry's work, not people's
identities, so they get identifiers masked; other admitted roles get them in full."""

from __future__ import annotations

import copy
from typing import Any

from hub.auth.flask_auth import current_principal
from hub.auth.roles import Role
from registry_core.crypto import mask_identifier

FULL_IDENTIFIER_ROLES = (Role.admin, Role.registry_staff, Role.field_worker)


def _may_see_identifiers() -> bool:
    return current_principal().has_any(FULL_IDENTIFIER_ROLES)


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
    shaped = copy.deepcopy(record)
    for member in shaped.get("members", []):
        _mask_person(member)
    return shaped
