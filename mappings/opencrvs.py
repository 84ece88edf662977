"""Reading OpenCRVS document Bundles as they really arrive: roles, places, residences, leftovers.

Why a module of its own: a real OpenCRVS Bundle is not the tidy document its Composition
promises. OpenCRVS trims the Bundle to the sections a webhook client may see and then drops the
Composition itself (``getPermissionsBundle`` in ``packages/webhooks``), so the people must be
found without it; the place of an event is an Encounter pointing at a Location (a health
facility, a private home) that is ``partOf`` an admin-area Location carrying the country's own
area id in a ``statistical-code`` identifier (``ADMIN_STRUCTURE_<id>``); addresses carry
Location ids where names would be, empty lines and an ``URBAN``/``RURAL`` marker. These hooks
read all of that leniently and leave a note of what they could not use, so a mapping never
fails a record for a part that is optional, and nothing is dropped silently.

Notes (``note``) are short texts about the *shape* of the record (section codes, resource
types, Location references), never personal values; the ``opencrvs_ignored`` hook hands them
to the mapped record with what else was present but not read.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from typing import Any, cast

from mappings.context import Context, HookProblem
from mappings.hooks import MAX_NOTES, HookResult, hook, note, resolve_reference
from mappings.paths import Located, is_blank
from mappings.transforms import MISSING, Param, transform

STATISTICAL_CODE = "http://opencrvs.org/specs/id/statistical-code"
PART_OF_EXTENSION = "http://opencrvs.org/specs/extension/part-of"
ADMIN_STRUCTURE = "ADMIN_STRUCTURE"
MAX_PARENTS = 8  # facility -> locality -> district -> state -> country is four steps

_ADMIN_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,63}")
_PLACE_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_NAMED_PLACES = {"HEALTH_FACILITY", "CRVS_OFFICE"}
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_AREA_MARKERS = {"URBAN", "RURAL"}  # OpenCRVS keeps the urban/rural flag among address lines
_RELATIONSHIPS = {"mother": ("MOTHER", "MTH"), "father": ("FATHER", "FTH")}
_REGISTRATION_TYPE = {"child": "BIRTH_REGISTRATION_NUMBER", "deceased": "DEATH_REGISTRATION_NUMBER"}
_TASK_NUMBER = {
    "child": "http://opencrvs.org/specs/id/birth-registration-number",
    "deceased": "http://opencrvs.org/specs/id/death-registration-number",
}
FALLBACKS = ("none", "child", "deceased", "mother", "father", "informant", "encounter")


# ---------------------------------------------------------------------------- small helpers


def _resolve(context: Context, reference: Located) -> Located | None:
    """The entry ``reference`` names, or None when the bundle does not hold it."""
    try:
        return resolve_reference(context, reference)
    except HookProblem:
        return None


def _entries(context: Context, kind: str) -> list[Located]:
    return context.read(f"$.entry[resource.resourceType={kind}].resource")


def _composition(context: Context) -> Located | None:
    return context.first("$.entry[resource.resourceType=Composition].resource")


def _codes(context: Context, path: str) -> set[str]:
    """Upper-cased codes of a CodeableConcept (one object or a list), text included."""
    found = context.read(f"{path}[*].coding[*].code") + context.read(f"{path}[*].text")
    return {str(hit.value).strip().upper() for hit in found}


def _identifier_types(context: Context, identifier: Located) -> set[str]:
    """The type of an identifier, written as a coding (FHIR) or a bare string (old OpenCRVS)."""
    kind = identifier.value.get("type") if isinstance(identifier.value, dict) else None
    if isinstance(kind, str):
        return {kind.strip().upper()}
    return _codes(context, f"{identifier.path}.type")


def _has_identifier(context: Context, patient: Located, kind: str, value: str | None) -> bool:
    for identifier in context.read(f"{patient.path}.identifier[*]"):
        raw = identifier.value.get("value") if isinstance(identifier.value, dict) else None
        if is_blank(raw) or kind not in _identifier_types(context, identifier):
            continue
        if value is None or str(raw).strip() == value:
            return True
    return False


def _birth_day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


# ---------------------------------------------------------------------------- roles


def _informant_patients(context: Context) -> dict[str, list[str]]:
    """Paths of the Patients the RelatedPerson entries point at, by relationship code."""
    cached = context.cache.get("opencrvs_informants")
    if cached is not None:
        return cast(dict[str, list[str]], cached)
    found: dict[str, list[str]] = {}
    for related in _entries(context, "RelatedPerson"):
        reference = context.first(f"{related.path}.patient.reference")
        patient = _resolve(context, reference) if reference is not None else None
        if patient is None:
            continue
        for code in _codes(context, f"{related.path}.relationship") or {""}:
            found.setdefault(code, []).append(patient.path)
        found.setdefault("*", []).append(patient.path)
    context.cache["opencrvs_informants"] = found
    return found


def _by_relationship(context: Context, role: str) -> Located | None:
    informants = _informant_patients(context)
    for code in _RELATIONSHIPS[role]:
        for path in informants.get(code, []):
            return context.first(path)
    return None


def _subject(context: Context, role: str) -> Located | None:
    """The child or the deceased of a bundle without a Composition."""
    patients = _entries(context, "Patient")
    task_number = context.first(
        f"$.entry[resource.resourceType=Task].resource.identifier[system={_TASK_NUMBER[role]}]"
        ".value"
    )
    number = str(task_number.value).strip() if task_number is not None else None
    kind = _REGISTRATION_TYPE[role]
    if number:
        carrying = [p for p in patients if _has_identifier(context, p, kind, number)]
        if len(carrying) == 1:
            return carrying[0]
    if role == "deceased":
        dead = [
            p
            for p in patients
            if not is_blank(p.value.get("deceasedDateTime"))
            or p.value.get("deceasedBoolean") is True
        ]
        return dead[0] if len(dead) == 1 else None
    # A newborn never declares its own birth: leave out everyone an informant points at, then
    # take the youngest (a child is younger than the parents the bundle may also hold).
    informants = set(_informant_patients(context).get("*", []))
    dated = [
        (day, p)
        for p in patients
        if p.path not in informants and (day := _birth_day(p.value.get("birthDate")))
    ]
    if not dated:
        return None
    dated.sort(key=lambda item: item[0], reverse=True)
    if len(dated) > 1 and dated[0][0] == dated[1][0]:
        return None  # twins in one trimmed bundle: not guessed
    return dated[0][1]


def _without_composition(context: Context, fallback: str) -> Located | None:
    if fallback in ("child", "deceased"):
        return _subject(context, fallback)
    if fallback in _RELATIONSHIPS:
        return _by_relationship(context, fallback)
    kind = {"informant": "RelatedPerson", "encounter": "Encounter"}.get(fallback)
    if kind is None:
        return None
    found = _entries(context, kind)
    return found[0] if found else None


@hook(
    "opencrvs_role",
    {
        "section": Param((str,), required=True),
        "fallback": Param((str,), choices=FALLBACKS),
        "optional": Param((bool,)),
    },
)
def opencrvs_role(
    context: Context, section: str, fallback: str = "none", optional: bool = False
) -> HookResult:
    """The resource playing a role in the event: its Composition section's entry, else found
    the way ``fallback`` says.

    With a Composition, the section decides; a parent missing from it may still be the
    informant (``fallback`` mother/father: a RelatedPerson MOTHER/FATHER points at her or him).
    Without a Composition (a Bundle trimmed to a webhook client's permissions), ``fallback``
    finds the child (the Patient with the Task's registration number, else the youngest Patient
    no informant points at), the deceased (the Patient marked deceased), the informant (the
    RelatedPerson) or the encounter. ``optional``: a section reference that points at no entry
    is noted and read as absent instead of failing the record.
    """
    if fallback not in FALLBACKS:
        raise HookProblem("$", f"opencrvs_role: unknown fallback {fallback!r}")
    composition = _composition(context)
    if composition is None:
        note(
            context,
            "no Composition: roles found from the resources present "
            "(a bundle trimmed to the subscription's permissions)",
        )
        return _without_composition(context, fallback)
    reference = context.first(
        f"{composition.path}.section[code.coding[*].code={section}].entry[0].reference"
    )
    if reference is None:
        return _by_relationship(context, fallback) if fallback in _RELATIONSHIPS else None
    found = _resolve(context, reference)
    if found is None:
        if not optional:
            raise HookProblem(reference.path, "points at no entry of the bundle")
        note(
            context,
            f"section {section}: its entry is not in the bundle; read as absent",
            reference.path,
        )
    return found


@hook("opencrvs_mother")
def opencrvs_mother(context: Context) -> HookResult:
    """The mother's Patient: ``mother-details``, else an informant whose relationship is
    MOTHER (OpenCRVS leaves ``mother-details`` out when the mother is the informant in some
    versions, and trims it away for clients not allowed to see it)."""
    return opencrvs_role(context, "mother-details", "mother")


# ---------------------------------------------------------------------------- places


def _type_code(context: Context, location: Located) -> str | None:
    found = context.first(f"{location.path}.type[*].coding[*].code")
    return str(found.value).strip().upper() if found is not None else None


def _admin_code(
    context: Context, area: Located, systems: tuple[str, ...], admin_type: str
) -> Located | None:
    """The registry area code of an admin-area Location: its statistical code without the
    ``ADMIN_STRUCTURE_`` prefix OpenCRVS adds (else its ``description``, where OpenCRVS keeps
    the same id), upper-cased; None (and a note) when it cannot be a registry area code."""
    hit = None
    for system in systems:
        hit = context.first(f"{area.path}.identifier[system={system}].value")
        if hit is not None:
            break
    hit = hit or context.first(f"{area.path}.description")
    if hit is None or not isinstance(hit.value, str):
        note(context, f"place: the admin area at {area.path} carries no area code", area.path)
        return None
    code = hit.value.strip()
    if code.upper().startswith(f"{admin_type.upper()}_"):
        code = code[len(admin_type) + 1 :]
    code = code.upper()
    if not _ADMIN_CODE.fullmatch(code):
        note(
            context,
            f"place: the area code at {hit.path} is not a registry area code "
            "(letters, digits and '-')",
            hit.path,
        )
        return None
    return Located(code, hit.path)


def _area_of(
    context: Context, start: Located, systems: tuple[str, ...], admin_type: str, what: str
) -> Located | None:
    """Climb ``partOf`` from a Location to the first admin-area Location and read its code."""
    current, seen = start, set()
    for _ in range(MAX_PARENTS):
        if current.path in seen:
            note(context, f"{what}: the partOf chain from {start.path} loops", start.path)
            break
        seen.add(current.path)
        if _type_code(context, current) == admin_type.upper():
            return _admin_code(context, current, systems, admin_type)
        parent = context.first(f"{current.path}.partOf.reference")
        if parent is None:
            note(
                context,
                f"{what}: the Location at {current.path} is part of no admin area",
                current.path,
            )
            return None
        found = _resolve(context, parent)
        if found is None:
            note(
                context,
                f"{what}: the admin area {str(parent.value).strip()[:80]} is not in the bundle",
                parent.path,
            )
            return None
        current = found
    return None


def _place(
    context: Context, encounter: str, systems: tuple[str, ...], admin_type: str
) -> dict[str, Located]:
    key = f"opencrvs_place:{encounter}"
    if key in context.cache:
        return cast(dict[str, Located], context.cache[key])
    place: dict[str, Located] = {}
    context.cache[key] = place
    found = context.first(encounter)
    if found is None:
        return place
    for ref in context.read(f"{found.path}.location[*].location"):
        if not isinstance(ref.value, dict):
            continue
        logical = context.first(f"{ref.path}.identifier.value")
        target = context.first(f"{ref.path}.reference")
        if target is None and logical is not None:
            # A logical reference: the area code itself, no Location resource behind it.
            code = str(logical.value).strip().upper()
            if _ADMIN_CODE.fullmatch(code):
                place["admin_area_code"] = Located(code, logical.path)
            return place
        location = _resolve(context, target) if target is not None else None
        if location is None:
            if target is not None:
                note(
                    context,
                    f"place: {str(target.value).strip()[:80]} is not in the bundle",
                    target.path,
                )
            continue
        kind = _type_code(context, location)
        if kind and _PLACE_TYPE.fullmatch(kind.lower()):
            place["type"] = Located(kind.lower(), f"{location.path}.type")
        name = context.first(f"{location.path}.name")
        if name is not None and isinstance(name.value, str) and kind in _NAMED_PLACES:
            # A facility's name; a home is never named here (its address is personal data).
            place["name"] = Located(name.value.strip()[:200], name.path)
        area = _area_of(context, location, systems, admin_type, "place")
        if area is not None:
            place["admin_area_code"] = area
        return place
    return place


_PLACE_PARAMS = {
    "part": Param((str,), required=True, choices=("admin_area_code", "type", "name")),
    "code_systems": Param((list,)),
    "admin_type": Param((str,)),
}


@hook(
    "opencrvs_place",
    {"encounter": Param((str,), required=True), **_PLACE_PARAMS},
    path_params=("encounter",),
)
def opencrvs_place(
    context: Context,
    encounter: str,
    part: str,
    code_systems: list[str] | None = None,
    admin_type: str = ADMIN_STRUCTURE,
) -> HookResult:
    """Where the event happened, from the Encounter at path ``encounter``: ``part`` is the
    ``admin_area_code`` (the facility's or home's ``partOf`` admin area, climbed to the first
    Location of type ``admin_type``), the place ``type`` (HEALTH_FACILITY, PRIVATE_HOME, ...)
    or the facility's ``name``. Locations the bundle does not hold are noted, never fatal."""
    systems = tuple(code_systems or (STATISTICAL_CODE,))
    return _place(context, encounter, systems, admin_type).get(part)


# ---------------------------------------------------------------------------- residences


def _pick_address(context: Context, person: Located) -> Located | None:
    addresses = [a for a in context.read(f"{person.path}.address[*]") if isinstance(a.value, dict)]
    for wanted in (("type", "PRIMARY_ADDRESS"), ("use", "home")):
        for address in addresses:
            if str(address.value.get(wanted[0], "")).strip() == wanted[1]:
                return address
    return addresses[0] if addresses else None


def _area_name(context: Context, value: Any) -> str | None:
    """A district/state as text: the name of the Location an id names, or the text itself."""
    if not isinstance(value, str) or is_blank(value):
        return None
    text = value.strip()
    if not _UUID.fullmatch(text):
        return text
    location = _resolve(context, Located(f"Location/{text}", "$"))
    name = context.first(f"{location.path}.name") if location is not None else None
    return str(name.value).strip() if name is not None else None  # an id is no address


def _residence(
    context: Context, person: str, systems: tuple[str, ...], admin_type: str, extension: str
) -> dict[str, Located]:
    key = f"opencrvs_residence:{person}"
    if key in context.cache:
        return cast(dict[str, Located], context.cache[key])
    residence: dict[str, Located] = {}
    context.cache[key] = residence
    found = context.first(person)
    address = _pick_address(context, found) if found is not None else None
    if address is None:
        return residence
    value = address.value
    lines = [
        str(hit.value).strip()
        for hit in context.read(f"{address.path}.line[*]")
        if isinstance(hit.value, str | int)
    ]
    parts = [
        line for line in lines if line.upper() not in _AREA_MARKERS and not _UUID.fullmatch(line)
    ]
    for field in ("city", "district", "state"):
        parts.append(_area_name(context, value.get(field)) or "")
    postal = value.get("postalCode")
    parts.append(str(postal).strip() if isinstance(postal, str | int) else "")
    text = ", ".join(dict.fromkeys(p for p in parts if p))
    if text:
        residence["text"] = Located(text[:500], address.path)
    start = context.first(f"{address.path}.extension[url={extension}].valueReference.reference")
    area = _resolve(context, start) if start is not None else None
    if (
        area is None
        and isinstance(value.get("district"), str)
        and _UUID.fullmatch(value["district"].strip())
    ):
        area = _resolve(context, Located(f"Location/{value['district'].strip()}", "$"))
    if area is not None:
        code = _area_of(context, area, systems, admin_type, "residence")
        if code is not None:
            residence["admin_area_code"] = code
    elif start is not None:
        note(
            context, f"residence: {str(start.value).strip()[:80]} is not in the bundle", start.path
        )
    return residence


@hook(
    "opencrvs_residence",
    {
        "person": Param((str,), required=True),
        "part": Param((str,), required=True, choices=("text", "admin_area_code")),
        "code_systems": Param((list,)),
        "admin_type": Param((str,)),
        "part_of_extension": Param((str,)),
    },
    path_params=("person",),
)
def opencrvs_residence(
    context: Context,
    person: str,
    part: str,
    code_systems: list[str] | None = None,
    admin_type: str = ADMIN_STRUCTURE,
    part_of_extension: str = PART_OF_EXTENSION,
) -> HookResult:
    """The home address of the Patient at path ``person`` (PRIMARY_ADDRESS, else ``use``
    home, else the first): ``text`` joins the non-empty lines, city, district and state names
    (Location ids resolved through the bundle, dropped when it lacks them) and postal code;
    ``admin_area_code`` follows the address's ``part-of`` extension (else its district id) to
    the admin area's code."""
    systems = tuple(code_systems or (STATISTICAL_CODE,))
    return _residence(context, person, systems, admin_type, part_of_extension).get(part)


# ---------------------------------------------------------------------------- leftovers


@hook(
    "opencrvs_ignored",
    {
        "sections": Param((list,)),
        "resources": Param((list,)),
        "identifier_types": Param((list,)),
        "people": Param((list,)),
    },
)
def opencrvs_ignored(
    context: Context,
    sections: list[str] | None = None,
    resources: list[str] | None = None,
    identifier_types: list[str] | None = None,
    people: list[str] | None = None,
) -> HookResult:
    """What the record held that the spec does not read, and what earlier hooks noted.

    ``sections`` / ``resources`` / ``identifier_types`` list what the spec reads; ``people``
    names the bindings whose identifiers are checked. Run it as the spec's last field, so the
    notes of every other hook are in.
    """
    read_sections = set(sections or ())
    read_resources = set(resources or ())
    read_types = {t.upper() for t in identifier_types or ()}
    found = list(context.cache.get("notes", []))
    composition = _composition(context)
    if composition is not None:
        for section in context.read(f"{composition.path}.section[*]"):
            codes = [str(h.value) for h in context.read(f"{section.path}.code.coding[*].code")]
            if codes and not read_sections.intersection(codes):
                found.append(Located(f"section {codes[0]} not read", section.path))
    counts = Counter(
        str(hit.value)
        for hit in context.read("$.entry[*].resource.resourceType")
        if str(hit.value) not in read_resources
    )
    for kind, count in sorted(counts.items()):
        found.append(Located(f"{count} {kind} resource(s) not read", "$.entry"))
    for name in people or ():
        person = context.bindings.get(name)
        if person is None:
            continue
        for identifier in context.read(f"{person.path}.identifier[*]"):
            raw = identifier.value.get("value") if isinstance(identifier.value, dict) else None
            if is_blank(raw):
                continue
            kinds = _identifier_types(context, identifier)
            if not kinds & read_types:
                label = ", ".join(sorted(kinds)) or "without a type"
                found.append(Located(f"{name}: identifier {label} not read", identifier.path))
    unique = list({hit.value: hit for hit in found}.values())
    return unique[:MAX_NOTES] or None


# ---------------------------------------------------------------------------- flags, values


@transform("first_item")
def first_item(value: Any) -> Any:
    """A value written as a list (``"family": ["Juma"]``, as FHIR STU3 and older OpenCRVS
    write family names): its first non-blank item; any other value unchanged."""
    if isinstance(value, list):
        return next((item for item in value if not is_blank(item)), MISSING)
    return value


@hook("absent", {"paths": Param((list,), required=True)}, path_params=("paths",))
def absent(context: Context, paths: list[str]) -> HookResult:
    """``true`` when none of ``paths`` holds a value, else ``false`` (at the value found):
    e.g. a record is provisional when it carries no registration number."""
    for path in paths:
        hit = context.first(path)
        if hit is not None:
            return Located(False, hit.path)
    return Located(True, "(constant)")
