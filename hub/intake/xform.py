"""What the server needs to know of an XForm: its id and version, each question's bind (type,
required, constraint, relevant), its repeats, groups and choices.

Read once per form version from the XForm pyxform produced (and cached by its MD5), so every
submission is checked against the rules the device enforced, and mapped knowing which answers
sit inside a repeat and which group (domain) a question belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from lxml import etree

from mappings.xml_records import safe_parser

XF = "http://www.w3.org/2002/xforms"
XHTML = "http://www.w3.org/1999/xhtml"
JR = "http://openrosa.org/javarosa"
NS = {"xf": XF, "h": XHTML, "jr": JR}


class XFormError(ValueError):
    """The document is not an XForm this server can use."""


@dataclass(frozen=True)
class Bind:
    """One question's rules: ``nodeset`` is its absolute path in the instance."""

    nodeset: str
    name: str
    type: str = "string"
    required: str | None = None
    constraint: str | None = None
    relevant: str | None = None
    constraint_message: str | None = None
    readonly: bool = False
    calculate: str | None = None
    repeat: str | None = None  # the nodeset of the innermost repeat holding the question
    groups: tuple[str, ...] = ()  # names of the groups between the root (or repeat) and it


@dataclass(frozen=True)
class FormModel:
    form_id: str
    version: str
    title: str
    root_name: str
    binds: tuple[Bind, ...]
    repeats: frozenset[str]
    choices: dict[str, frozenset[str]] = field(default_factory=dict)  # nodeset -> values
    group_relevance: dict[str, str] = field(default_factory=dict)  # group nodeset -> relevant

    def bind(self, nodeset: str) -> Bind | None:
        return next((b for b in self.binds if b.nodeset == nodeset), None)

    @property
    def questions(self) -> tuple[Bind, ...]:
        """Binds of answerable leaves (not groups, repeats nor meta)."""
        return tuple(
            b
            for b in self.binds
            if b.nodeset not in self.repeats
            and b.nodeset not in self.group_relevance
            and "/meta/" not in b.nodeset
        )


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _attr(bind: etree._Element, name: str) -> str | None:
    value = bind.get(name)
    return value.strip() if value and value.strip() else None


def _choice_values(
    control: etree._Element, instances: dict[str, frozenset[str]]
) -> frozenset[str] | None:
    inline = [_text(v) for v in control.findall("xf:item/xf:value", NS)]
    if inline:
        return frozenset(inline)
    itemset = control.find("xf:itemset", NS)
    if itemset is None:
        return None
    nodeset = itemset.get("nodeset", "")
    if nodeset.startswith("instance('"):
        name = nodeset.split("'")[1]
        return instances.get(name)
    return None  # a choice list computed from the form itself: not checked


def parse_form(xform: bytes) -> FormModel:
    """The ``FormModel`` of an XForm document (``XFormError`` if it is not one)."""
    try:
        doc = etree.fromstring(xform, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise XFormError(f"not XML: {exc}") from None
    model = doc.find("h:head/xf:model", NS)
    if model is None:
        raise XFormError("no <h:head><model>: not an XForm")
    primary = model.find("xf:instance", NS)
    if primary is None or len(primary) == 0:
        raise XFormError("the model has no primary instance")
    root = primary[0]
    root_name = etree.QName(root).localname
    secondary: dict[str, frozenset[str]] = {}
    for instance in model.findall("xf:instance[@id]", NS):
        if instance.get("src"):
            # An external instance (select_one_from_file: jr://file-csv/…, jr://file/…) holds
            # its choices in a media file, not in the form: its answers are not checked here.
            continue
        values = [_text(item.find("xf:name", NS)) for item in instance.iterfind(".//xf:item", NS)]
        secondary[instance.get("id", "")] = frozenset(v for v in values if v)
    body = doc.find("h:body", NS)
    repeats: set[str] = set()
    groups: dict[str, str] = {}
    choices: dict[str, frozenset[str]] = {}
    if body is not None:
        for repeat in body.iter(f"{{{XF}}}repeat"):
            if repeat.get("nodeset"):
                repeats.add(repeat.get("nodeset", "").strip())
        for group in body.iter(f"{{{XF}}}group"):
            if group.get("ref"):
                groups[group.get("ref", "").strip()] = ""
        for tag in ("select1", "select"):
            for control in body.iter(f"{{{XF}}}{tag}"):
                ref = (control.get("ref") or "").strip()
                listed = _choice_values(control, secondary)
                if ref and listed is not None:
                    choices[ref] = listed
    for element in root.iter():
        if isinstance(element.tag, str) and element.get(f"{{{JR}}}template") is not None:
            repeats.add(_path_of(element, root))
    group_nodesets = {g for g in groups if g not in repeats}
    binds: list[Bind] = []
    for raw in model.findall("xf:bind", NS):
        nodeset = (raw.get("nodeset") or "").strip()
        if not nodeset.startswith("/"):
            continue
        steps = [s for s in nodeset.split("/") if s]
        holding = [r for r in repeats if nodeset.startswith(r + "/")]
        repeat = max(holding, key=len) if holding else None
        inner = nodeset[len(repeat) :] if repeat else nodeset[len("/" + steps[0]) :]
        group_names = tuple(s for s in inner.split("/")[:-1] if s)
        if nodeset in group_nodesets and raw.get("relevant"):
            groups[nodeset] = raw.get("relevant", "")
        binds.append(
            Bind(
                nodeset=nodeset,
                name=steps[-1],
                type=(raw.get("type") or "string").split(":")[-1],
                required=_attr(raw, "required"),
                constraint=_attr(raw, "constraint"),
                relevant=_attr(raw, "relevant"),
                constraint_message=_attr(raw, f"{{{JR}}}constraintMsg"),
                readonly=(raw.get("readonly") or "").strip() == "true()",
                calculate=_attr(raw, "calculate"),
                repeat=repeat,
                groups=group_names,
            )
        )
    title = _text(doc.find("h:head/h:title", NS))
    return FormModel(
        form_id=(root.get("id") or "").strip(),
        version=(root.get("version") or "").strip(),
        title=title,
        root_name=root_name,
        binds=tuple(binds),
        repeats=frozenset(repeats),
        choices=choices,
        group_relevance={g: r for g, r in groups.items() if g in group_nodesets},
    )


def _path_of(element: etree._Element, root: etree._Element) -> str:
    names = []
    node: etree._Element | None = element
    while node is not None:
        names.append(etree.QName(node).localname)
        if node is root:
            break
        node = node.getparent()
    return "/" + "/".join(reversed(names))


@lru_cache(maxsize=64)
def cached_model(md5: str, xform: bytes) -> FormModel:
    """The model of a stored form version, parsed once per process (keyed by its MD5)."""
    del md5  # the key only
    return parse_form(xform)
