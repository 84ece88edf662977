"""A submitted XForm instance: parsed safely, identified, and flattened for the mapping specs.

Parsing refuses DTDs and entities and never reaches the network (the project's safe parser);
the size limit is applied before parsing. The flattened form is what the mapping specs read
(``mappings/specs/intake_*.toml``): answers by question name (groups do not matter for finding
a question), typed by the form's binds, the members repeat as a list, and the domain each
question's group gives it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from hub.intake.contract import SubmissionRejected
from hub.intake.xform import FormModel
from mappings.xml_records import safe_parser

MEMBERS_REPEAT = "members"  # the repeat whose instances are the household's members
GROUP_DOMAINS = {"income": "income", "dwelling": "dwelling", "asset": "asset", "assets": "asset"}
MAX_INSTANCE_ID = 128


@dataclass(frozen=True)
class ParsedInstance:
    root: etree._Element
    form_id: str
    version: str
    instance_id: str


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def parse_instance(xml: bytes, max_bytes: int) -> ParsedInstance:
    """The instance's root, form id, version and instanceID; ``SubmissionRejected`` (400/413)
    saying what is wrong."""
    if len(xml) > max_bytes:
        raise SubmissionRejected(
            f"the submission is larger than the {max_bytes} bytes this server takes", 413
        )
    if not xml.strip():
        raise SubmissionRejected("the submission is empty: send the XForm instance XML")
    try:
        root = etree.fromstring(xml, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SubmissionRejected(f"the submission is not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise SubmissionRejected("XML with a DTD is refused")
    form_id = (root.get("id") or "").strip()
    if not form_id:
        raise SubmissionRejected(
            "not an XForm instance: the root element has no id attribute naming its form"
        )
    found = root.xpath("./*[local-name()='meta']/*[local-name()='instanceID']")
    instance_id = (found[0].text or "").strip() if found else ""
    if not instance_id:
        raise SubmissionRejected("the instance has no meta/instanceID (the submission's id)")
    if len(instance_id) > MAX_INSTANCE_ID or not instance_id.isprintable():
        raise SubmissionRejected(f"meta/instanceID must be at most {MAX_INSTANCE_ID} characters")
    return ParsedInstance(root, form_id, (root.get("version") or "").strip(), instance_id)


# ---------------------------------------------------------------------------- flattening


def typed(kind: str, text: str) -> Any:
    """An answer as the bind's type says: int, decimal, geopoint as {lat, lon}; else text."""
    try:
        if kind == "int":
            return int(text)
        if kind == "decimal":
            number = float(text)
            if not math.isfinite(number):  # "NaN", "inf": kept as the text the form refuses
                return text
            return int(number) if number.is_integer() else number
        if kind == "geopoint":
            parts = [float(p) for p in text.split()]
            if not all(math.isfinite(p) for p in parts[:2]):
                return text
            return {"lat": parts[0], "lon": parts[1]}
    except (ValueError, IndexError):
        return text
    return text


@dataclass
class Flattened:
    household: dict[str, Any] = field(default_factory=dict)
    members: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def mapping_records(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return self.household, self.members


def _domain(groups: tuple[str, ...]) -> str | None:
    for name in groups:
        if name.lower() in GROUP_DOMAINS:
            return GROUP_DOMAINS[name.lower()]
    return None


def flatten(model: FormModel, root: etree._Element) -> Flattened:
    """The instance as the mapping specs read it (see the module doc)."""
    result = Flattened()
    household: dict[str, Any] = {"answers": {}, "domains": {}}
    members_repeat = next(
        (r for r in model.repeats if r.rsplit("/", 1)[-1] == MEMBERS_REPEAT), None
    )
    member_nodes = root.xpath(members_repeat) if members_repeat else []
    members: list[dict[str, Any]] = [{"answers": {}, "domains": {}} for _ in member_nodes]
    other_repeats: set[str] = set()
    for bind in model.questions:
        if "/meta/" in bind.nodeset or bind.nodeset.endswith("/meta"):
            continue
        domain = _domain(bind.groups)
        if bind.repeat is None:
            nodes = root.xpath(bind.nodeset)
            text = "".join(nodes[0].itertext()).strip() if nodes else ""
            if text:
                household["answers"][bind.name] = typed(bind.type, text)
                if domain:
                    household["domains"][bind.name] = domain
        elif bind.repeat == members_repeat:
            relative = bind.nodeset[len(members_repeat or "") + 1 :]
            for index, node in enumerate(member_nodes):
                found = node.xpath(relative)
                text = "".join(found[0].itertext()).strip() if found else ""
                if text:
                    members[index]["answers"][bind.name] = typed(bind.type, text)
                    if domain:
                        members[index]["domains"][bind.name] = domain
        else:
            other_repeats.add(bind.repeat.rsplit("/", 1)[-1])
    for name in sorted(other_repeats):
        result.notes.append(f"repeat {name}: kept in the submission, not mapped to the registry")
    result.household = household
    result.members = members
    return result
