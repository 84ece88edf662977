"""XML partner records as plain dicts, so XML and JSON partners share one path language.

Why a fixed convention rather than xmltodict-style options: specs must be able to rely on one
shape. Keys are local names (namespaces dropped: a partner's namespace URI is not a fact);
attributes become ``"@name"``; an element with attributes or children keeps its text as
``"#text"``; a leaf without attributes is just its text; repeated children become a list.

Parsing is the caller's job (connectors parse files with the project's safe parser); for a
standalone record use ``parse_record``, which refuses DTDs, entities and network access.
"""

from __future__ import annotations

from typing import Any

from lxml import etree


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_record(data: bytes) -> dict[str, Any]:
    """Parse one XML record (bytes) into the dict convention; DTDs are refused."""
    root = etree.fromstring(data, safe_parser())
    if root.getroottree().docinfo.doctype:
        raise ValueError("XML records with a DTD are refused")
    converted = element_to_dict(root)
    return converted if isinstance(converted, dict) else {"#text": converted}


def _local(tag: Any) -> str | None:
    if not isinstance(tag, str):
        return None  # comments, processing instructions
    return str(etree.QName(tag).localname)


def element_to_dict(element: etree._Element) -> Any:
    """``<R no="1"><A>x</A><B c="2">y</B></R>`` -> ``{"@no": "1", "A": "x",
    "B": {"@c": "2", "#text": "y"}}``."""
    result: dict[str, Any] = {f"@{etree.QName(k).localname}": v for k, v in element.attrib.items()}
    children = [(name, child) for child in element if (name := _local(child.tag)) is not None]
    text = (element.text or "").strip()
    if not children and not result:
        return text
    for name, child in children:
        value = element_to_dict(child)
        if name in result:
            existing = result[name]
            result[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            result[name] = value
    if text:
        result["#text"] = text
    return result
