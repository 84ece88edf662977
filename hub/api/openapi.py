"""``GET /openapi.json``: the OpenAPI 3.1 document of the whole HTTP API.

Why fragments: each blueprint's operations are described in ``hub/api/specs/<blueprint>.json``
next to the code, and the document is assembled from the blueprints the app actually
registered. A blueprint without a fragment, or a route its fragment forgets, is caught by
``tests/integration/test_openapi.py``, which compares ``app.url_map`` with the document.

The canonical record schemas (``standards/schemas/household.json``, ``person.json``) are embedded
as components rather than copied, so the document cannot drift from what the registry
validates: their ``$defs`` are lifted into components and their references rewritten.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app

from hub.auth.flask_auth import public

log = logging.getLogger(__name__)
bp = Blueprint("openapi", __name__)

SPEC_DIR = Path(__file__).with_name("specs")
SCHEMA_DIR = Path(str(resources.files("standards.schemas")))
BASE_FRAGMENT = "_base"
# Component name -> canonical schema file; references between them use the file name.
CANONICAL_SCHEMAS = {"Household": "household.json", "Person": "person.json"}
# Blueprints that belong to Flask itself rather than to the API.
NOT_DOCUMENTED: frozenset[str] = frozenset()
EXTENSION_KEY = "srhub_openapi"
_lock = threading.Lock()


class FragmentError(RuntimeError):
    """A spec fragment is missing or clashes with another; the message names the file."""


HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise FragmentError(f"no OpenAPI fragment {path.name} in {path.parent}") from None
    if not isinstance(data, dict):
        raise FragmentError(f"{path} must hold a JSON object")
    return data


def _rewrite_refs(node: Any, mapping: dict[str, str]) -> Any:
    """Copy ``node`` with every ``$ref`` found in ``mapping`` replaced."""
    if isinstance(node, dict):
        out = {k: _rewrite_refs(v, mapping) for k, v in node.items()}
        target = out.get("$ref")
        if isinstance(target, str) and target in mapping:
            out["$ref"] = mapping[target]
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, mapping) for v in node]
    return node


def canonical_components(schema_dir: Path = SCHEMA_DIR) -> dict[str, Any]:
    """The canonical JSON Schemas as OpenAPI components (JSON Schema 2020-12 is OAS 3.1's).

    ``$id``/``$schema`` are dropped (inside the document, references resolve against the
    document) and each ``$defs`` entry becomes ``<Name>_<def>`` so every ``$ref`` is a plain
    ``#/components/schemas/...`` pointer that any OpenAPI tool can follow.
    """
    loaded = {name: _load(schema_dir / file) for name, file in CANONICAL_SCHEMAS.items()}
    file_refs = {file: f"#/components/schemas/{name}" for name, file in CANONICAL_SCHEMAS.items()}
    components: dict[str, Any] = {}
    for name, schema in loaded.items():
        body = {k: v for k, v in schema.items() if k not in ("$id", "$schema", "$defs")}
        defs = schema.get("$defs", {})
        mapping = dict(file_refs)
        mapping.update({f"#/$defs/{d}": f"#/components/schemas/{name}_{d}" for d in defs})
        components[name] = _rewrite_refs(body, mapping)
        for def_name, def_body in defs.items():
            components[f"{name}_{def_name}"] = _rewrite_refs(def_body, mapping)
    return components


def _merge_components(target: dict[str, Any], extra: dict[str, Any], source: str) -> None:
    for section, entries in extra.items():
        bucket = target.setdefault(section, {})
        for key, value in entries.items():
            if key in bucket and bucket[key] != value:
                raise FragmentError(f"{source} redefines components.{section}.{key}")
            bucket[key] = value


def build_document(
    blueprint_names: list[str], spec_dir: Path = SPEC_DIR, *, strict: bool = True
) -> dict[str, Any]:
    """Assemble the document from the base and one fragment per blueprint, in order.

    ``strict=False`` (serving) lists blueprints without a fragment under
    ``x-undocumented-blueprints`` instead of failing: a stale document must not turn
    ``/openapi.json`` into a 500, while the tests (strict) still refuse it.
    """
    document = copy.deepcopy(_load(spec_dir / f"{BASE_FRAGMENT}.json"))
    document["components"].setdefault("schemas", {}).update(canonical_components())
    missing: list[str] = []
    for name in blueprint_names:
        if name in NOT_DOCUMENTED:
            continue
        source = f"{name}.json"
        if not strict and not (spec_dir / source).is_file():
            missing.append(name)
            continue
        fragment = _load(spec_dir / source)
        document["tags"].extend(fragment.get("tags", []))
        for path, item in fragment.get("paths", {}).items():
            if path in document["paths"]:
                raise FragmentError(f"{source} describes {path}, already described elsewhere")
            document["paths"][path] = item
        _merge_components(document["components"], fragment.get("components", {}), source)
    _every_operation_may_be_rate_limited(document)
    if missing:
        log.warning("OpenAPI: no fragment for blueprint(s) %s in %s", ", ".join(missing), spec_dir)
        document["x-undocumented-blueprints"] = missing
    return document


def _every_operation_may_be_rate_limited(document: dict[str, Any]) -> None:
    """The rate limits (hub.ratelimit) stand in front of every route, so every operation may
    answer 429: it gets the shared ``TooManyRequests`` response unless its fragment describes
    a 429 of its own (a login's throttle, a DCI partner's)."""
    for item in document["paths"].values():
        for method, operation in item.items():
            if method in HTTP_METHODS and isinstance(operation, dict):
                operation.setdefault("responses", {}).setdefault(
                    "429", {"$ref": "#/components/responses/TooManyRequests"}
                )


def document_for(app: Flask) -> dict[str, Any]:
    """The app's document, built once per app from the blueprints it registered."""
    cached = app.extensions.get(EXTENSION_KEY)
    if isinstance(cached, dict):
        return cached
    with _lock:
        cached = app.extensions.get(EXTENSION_KEY)
        if not isinstance(cached, dict):
            cached = build_document(list(app.blueprints), strict=False)
            app.extensions[EXTENSION_KEY] = cached
    return cached


@bp.get("/openapi.json")
@public
def openapi_document() -> Response:
    response = Response(
        json.dumps(document_for(current_app)), status=200, mimetype="application/json"
    )
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
