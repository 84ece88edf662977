"""The XML documents the OpenRosa server answers with, built with lxml (so every value is
escaped) from the shapes the docs.getodk.org pages give:

- Form List API: ``<xforms xmlns="http://openrosa.org/xforms/xformsList">`` with one
  ``<xform>`` per form (formID, name, version, hash ``md5:…``, downloadUrl; descriptionText only
  when ``verbose`` was asked; manifestUrl only for a form with media files);
- the manifest: ``<manifest xmlns="http://openrosa.org/xforms/xformsManifest">`` with one
  ``<mediaFile>`` (filename, hash, downloadUrl) per file;
- HTTP Requests and Responses: the ``<OpenRosaResponse xmlns="http://openrosa.org/http/response">``
  envelope with one ``<message nature="…">`` the app shows to the field worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

FORM_LIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
RESPONSE_NS = "http://openrosa.org/http/response"


def md5_hash(content: bytes) -> str:
    """The ``md5:<hex>`` form the form list and the manifest use."""
    return "md5:" + hashlib.md5(content, usedforsecurity=False).hexdigest()


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _child(parent: etree._Element, ns: str, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{ns}}}{name}").text = text


@dataclass(frozen=True)
class FormListEntry:
    form_id: str
    name: str
    version: str
    md5_hex: str
    download_url: str
    manifest_url: str | None = None
    description: str | None = None


def form_list(entries: Iterable[FormListEntry]) -> bytes:
    root = etree.Element(f"{{{FORM_LIST_NS}}}xforms", nsmap={None: FORM_LIST_NS})
    for entry in entries:
        xform = etree.SubElement(root, f"{{{FORM_LIST_NS}}}xform")
        _child(xform, FORM_LIST_NS, "formID", entry.form_id)
        _child(xform, FORM_LIST_NS, "name", entry.name or entry.form_id)
        _child(xform, FORM_LIST_NS, "version", entry.version)
        _child(xform, FORM_LIST_NS, "hash", f"md5:{entry.md5_hex}")
        if entry.description is not None:
            _child(xform, FORM_LIST_NS, "descriptionText", entry.description)
        _child(xform, FORM_LIST_NS, "downloadUrl", entry.download_url)
        if entry.manifest_url:
            _child(xform, FORM_LIST_NS, "manifestUrl", entry.manifest_url)
    return _serialize(root)


@dataclass(frozen=True)
class ManifestEntry:
    filename: str
    hash: str  # "md5:<hex>"
    download_url: str


def manifest(entries: Iterable[ManifestEntry]) -> bytes:
    root = etree.Element(f"{{{MANIFEST_NS}}}manifest", nsmap={None: MANIFEST_NS})
    for entry in entries:
        media = etree.SubElement(root, f"{{{MANIFEST_NS}}}mediaFile")
        _child(media, MANIFEST_NS, "filename", entry.filename)
        _child(media, MANIFEST_NS, "hash", entry.hash)
        _child(media, MANIFEST_NS, "downloadUrl", entry.download_url)
    return _serialize(root)


def openrosa_response(message: str, nature: str) -> bytes:
    """The response envelope with one message (``items="0"``: no further payloads)."""
    root = etree.Element(f"{{{RESPONSE_NS}}}OpenRosaResponse", nsmap={None: RESPONSE_NS})
    root.set("items", "0")
    element = etree.SubElement(root, f"{{{RESPONSE_NS}}}message")
    element.set("nature", nature)
    element.text = message
    return _serialize(root)
