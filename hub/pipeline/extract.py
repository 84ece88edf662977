"""Payload extractors: how the ingest takes a partner payload out of a raw-record envelope.

A connector publishes what the partner sent unchanged (``connectors.base.envelope``): a JSON
object as ``data.payload``, bytes as ``data.body`` text. What the mapping spec reads is not
always that whole payload (an OpenCRVS delivery wraps the FHIR Bundle the spec reads; a tax
row is a JSON object or an XML element's text), so each record type names an extractor
(``RecordType.extract``) from ``EXTRACTORS``. A payload that cannot be read is a permanent
error with the reason: the message is dead-lettered, never retried.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from hub.workers.errors import PermanentError

CloudEvent = dict[str, Any]
Extractor = Callable[[CloudEvent], Any]


def payload(event: CloudEvent) -> Any:
    """The partner payload of a raw-record envelope (JSON object, or text for bytes)."""
    data = event.get("data") or {}
    if "payload" in data:
        return data["payload"]
    body = data.get("body")
    if body is None:
        raise PermanentError("the raw record carries neither payload nor body", "EnvelopeError")
    if data.get("body_encoding") == "base64":
        raise PermanentError("binary partner payloads are not mapped", "EnvelopeError")
    return body


def json_payload(event: CloudEvent) -> Any:
    """``json``: the payload as it is; JSON text is parsed, other text is passed on."""
    found = payload(event)
    if isinstance(found, str):
        try:
            return json.loads(found)
        except ValueError:
            return found
    return found


def fhir_bundle(event: CloudEvent) -> Any:
    """``fhir_bundle``: the FHIR Bundle of an OpenCRVS webhook delivery or feed entry.

    A delivery is OpenCRVS's body unchanged (``{"timestamp", "id", "event": {"hub",
    "context": [Bundle]}}``); the ``bundle_path`` header says which item of ``event.context``
    this record is about (``connectors.civil_registry.bundle_of`` reads it). A bare Bundle is
    taken as it is."""
    from connectors.civil_registry import bundle_of

    found = payload(event)
    if isinstance(found, str):
        try:
            found = json.loads(found)
        except json.JSONDecodeError as exc:
            raise PermanentError(
                f"delivery body is not JSON ({exc.msg})", "EnvelopeError"
            ) from None
    if isinstance(found, Mapping):
        if found.get("resourceType") == "Bundle":
            return found
        headers = (event.get("data") or {}).get("headers") or {}
        path = headers.get("bundle_path") if isinstance(headers, Mapping) else None
        bundle = bundle_of(found, path if isinstance(path, str) and path else None)
        if isinstance(bundle, Mapping):
            return bundle
    raise PermanentError(
        "no FHIR Bundle found in the delivery (expected event.context[n] or bundle)",
        "EnvelopeError",
    )


def xml_or_json(event: CloudEvent) -> Any:
    """``xml_or_json``: a JSON object (a CSV row) as it is, or XML text (one element, e.g. a
    tax ``<Return>``) as ``mappings.xml_records.element_to_dict`` gives it. The XML is parsed
    with entities, DTDs and network off."""
    found = payload(event)
    if isinstance(found, str) and found.lstrip().startswith("<"):
        from lxml import etree

        from mappings.xml_records import element_to_dict

        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
        try:
            element = etree.fromstring(found.encode("utf-8"), parser=parser)
        except etree.XMLSyntaxError as exc:
            raise PermanentError(f"XML record is not well-formed: {exc}", "EnvelopeError") from None
        return element_to_dict(element)
    return found


# The hub's extractors by the name a ``RecordType`` gives.
EXTRACTORS: Mapping[str, Extractor] = {
    "json": json_payload,
    "fhir_bundle": fhir_bundle,
    "xml_or_json": xml_or_json,
}
