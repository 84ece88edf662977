"""Fill an ODK XForm's primary instance the way a data-collection app does.

A device downloads the XForm, copies the form's primary instance (the first ``<instance>`` of
its model), fills the answers, gives it a fresh ``meta/instanceID`` and sends it. Repeats
appear in the instance twice: a ``jr:template`` copy that describes one item and a first item;
a filled instance holds only the items answered, so both are replaced by the answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

XFORMS_NS = "http://www.w3.org/2002/xforms"
XHTML_NS = "http://www.w3.org/1999/xhtml"
JR_NS = "http://openrosa.org/javarosa"
TEMPLATE_ATTRIBUTE = f"{{{JR_NS}}}template"

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=True
)


class XFormError(ValueError):
    """The document is not an XForm this filler understands; the message says why."""


@dataclass(frozen=True)
class FormTemplate:
    """The primary instance of one XForm, ready to be filled."""

    form_id: str
    version: str
    title: str
    template: etree._Element

    @classmethod
    def from_xform(cls, document: bytes) -> FormTemplate:
        try:
            root = etree.fromstring(document, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise XFormError(f"not XML: {exc}") from None
        instance = root.find(f"{{{XHTML_NS}}}head/{{{XFORMS_NS}}}model/{{{XFORMS_NS}}}instance")
        if instance is None or len(instance) == 0:
            raise XFormError("the XForm has no primary instance (h:head/model/instance)")
        data = instance[0]
        form_id = data.get("id")
        if not form_id:
            raise XFormError("the primary instance has no id attribute")
        title = root.findtext(f"{{{XHTML_NS}}}head/{{{XHTML_NS}}}title") or form_id
        return cls(form_id, data.get("version") or "", title, data)

    def fill(self, answers: Mapping[str, Any], instance_id: str | None = None) -> bytes:
        """The instance XML for ``answers``: a mapping by question name, groups as nested
        mappings, repeats as lists of mappings. Unanswered questions stay empty. The instance
        id is a fresh ``uuid:`` one unless given."""
        filled = _fill(self.template, answers)
        meta = filled.find(_child_tag(filled, "meta"))
        if meta is None:
            meta = etree.SubElement(filled, _child_tag(filled, "meta"))
        node = meta.find(_child_tag(filled, "instanceID"))
        if node is None:
            node = etree.SubElement(meta, _child_tag(filled, "instanceID"))
        node.text = instance_id or f"uuid:{uuid.uuid4()}"
        return etree.tostring(filled, xml_declaration=True, encoding="UTF-8")


def instance_id_of(instance: bytes) -> str:
    """The ``meta/instanceID`` of a filled instance."""
    root = etree.fromstring(instance, _PARSER)
    found = root.find(f"{_child_tag(root, 'meta')}/{_child_tag(root, 'instanceID')}")
    if found is None or not found.text:
        raise XFormError("the instance has no meta/instanceID")
    return found.text


def _child_tag(parent: etree._Element, name: str) -> str:
    """The tag of a child named ``name`` in the namespace of ``parent`` (usually none)."""
    namespace = etree.QName(parent).namespace
    return f"{{{namespace}}}{name}" if namespace else name


def _plain(element: etree._Element) -> str:
    """The tag an instance uses: inside the XForm the instance sits in the XForms default
    namespace, but a device sends it without one (as ODK Collect does)."""
    name = etree.QName(element)
    return name.localname if name.namespace == XFORMS_NS else element.tag


def _fill(template: etree._Element, answers: Mapping[str, Any]) -> etree._Element:
    nsmap = {k: v for k, v in template.nsmap.items() if k is not None and v != XFORMS_NS}
    out = etree.Element(_plain(template), dict(template.attrib), nsmap=nsmap)
    repeats_done: set[str] = set()
    for child in template:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        is_repeat = child.get(TEMPLATE_ATTRIBUTE) is not None or _has_template_sibling(
            template, child
        )
        if is_repeat:
            if name in repeats_done:
                continue
            repeats_done.add(name)
            prototype = _repeat_prototype(template, name)
            items = answers.get(name) or []
            if not isinstance(items, Sequence) or isinstance(items, str | bytes):
                raise XFormError(f"answers for the repeat {name!r} must be a list of mappings")
            for item in items:
                filled = _fill(prototype, item)
                filled.attrib.pop(TEMPLATE_ATTRIBUTE, None)
                out.append(filled)
            continue
        if len([c for c in child if isinstance(c.tag, str)]):
            nested = answers.get(name) or {}
            out.append(_fill(child, nested if isinstance(nested, Mapping) else {}))
            continue
        leaf = etree.SubElement(out, _plain(child), dict(child.attrib))
        value = answers.get(name)
        leaf.text = _text(value) if value is not None else child.text
    return out


def _has_template_sibling(parent: etree._Element, child: etree._Element) -> bool:
    return any(
        sibling.tag == child.tag and sibling.get(TEMPLATE_ATTRIBUTE) is not None
        for sibling in parent
    )


def _repeat_prototype(parent: etree._Element, name: str) -> etree._Element:
    for child in parent:
        named = isinstance(child.tag, str) and etree.QName(child).localname == name
        if named and child.get(TEMPLATE_ATTRIBUTE) is not None:
            return child
    return next(c for c in parent if isinstance(c.tag, str) and etree.QName(c).localname == name)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return " ".join(_text(v) for v in value)  # select_multiple: space-separated choices
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
