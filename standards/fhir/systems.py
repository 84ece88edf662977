"""Identifier system URIs: our short identifier system names <-> FHIR ``Identifier.system``.

FHIR wants an absolute URI per identifier namespace. These are ours (the registry is the
authority that names them); a deployment may map ``national_id`` to the country's official URI
by editing this table. Look-ups accept either form, so ``national_id|123`` and
``https://socialregistry.example/id/national_id|123`` find the same person.
"""

from __future__ import annotations

BASE = "https://socialregistry.example"
IDENTIFIER_BASE = f"{BASE}/id/"

SYSTEM_URIS: dict[str, str] = {
    name: IDENTIFIER_BASE + name
    for name in (
        "national_id",
        "birth_registration",
        "death_registration",
        "tax_id",
        "program_beneficiary_id",
        "crvs_tracking_id",
        "crvs_draft_id",
    )
}
REGISTRY_NUMBER_URI = IDENTIFIER_BASE + "registry_number"
GROUP_CODE_SYSTEM = f"{BASE}/CodeSystem/group-type"
ADMIN_AREA_SYSTEM = f"{BASE}/CodeSystem/admin-area"
ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
RELATIONSHIP_EXTENSION = f"{BASE}/StructureDefinition/relationship-to-head"


def system_uri(system: str) -> str:
    """The URI of one of our systems (unknown systems get one under our base too)."""
    return SYSTEM_URIS.get(system, IDENTIFIER_BASE + system)


def system_name(text: str) -> str | None:
    """Our short system name for a URI or short name given by a client; None if unknown."""
    if text in SYSTEM_URIS:
        return text
    for name, uri in SYSTEM_URIS.items():
        if text == uri:
            return name
    return None
