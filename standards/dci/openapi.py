"""Conformance checks against the DCI spec's own OpenAPI files, kept OUTSIDE this repository.

The hub validates at run time with our own JSON Schemas (``standards.dci.validation``). This
module is for the tests: it checks the same bodies against the published contract, so a
drift between our schemas and the spec shows up. The spec files are third-party content and
are not committed here; they are looked up in this order:

1. the folder in the environment variable ``SRHUB_DCI_SPEC_DIR``;
2. ``<repo>/../shared/dci-spec/``, when it exists.

The folder must hold ``social_api_v1.0.0.yaml`` (OpenSPP/spdci-compliance's corrected copy of
spdci/api-standards' file) and ``registry_core_api_v1.0.0.yaml`` (spdci/api-standards). When
neither place has them, ``spec_dir()`` is None and tests skip with ``SKIP_REASON``; a variable
that names a folder without them is an error, not a silent skip. PyYAML is needed only here
and is imported on first use.

Bodies are checked against the schema the spec gives for a path, found by JSON pointer inside
the document, so its ``$ref``s resolve as the spec wrote them. Message bodies use the Social
Registry file (the registry core file disagrees with it: ``reg_records`` object vs array,
txn_type values, a ``type: enum`` that is not JSON Schema); the acknowledgement is checked
against both. OpenAPI 3.0 schemas are read with draft 4 semantics, ``date-time`` checked.

One relaxation, for requests only (``tolerant=True``): the spec's query/filter value is
``oneOf [string, integer, number, boolean, object]``, under which an integer is invalid (it is
also a number) and the ``in`` operator cannot pass its list (spdci/api-standards#45, #46). It is
read as ``anyOf`` with arrays admitted, as OpenSPP's compliance suite does. Bodies we send are
checked against the files as they are.
"""

from __future__ import annotations

import copy
import os
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

from standards.dci.validation import FORMATS, Problem, closest_branch, describe, json_path

SOCIAL = "social_api_v1.0.0.yaml"
CORE = "registry_core_api_v1.0.0.yaml"
ENV_VAR = "SRHUB_DCI_SPEC_DIR"
SKIP_REASON = (
    "set SRHUB_DCI_SPEC_DIR to a folder holding social_api_v1.0.0.yaml and "
    "registry_core_api_v1.0.0.yaml from spdci/api-standards (OpenSPP corrected copy)"
)
DEFAULT_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "dci-spec"


class SpecNotFound(FileNotFoundError):
    """SRHUB_DCI_SPEC_DIR names a folder without the spec files."""


def _complete(folder: Path) -> bool:
    return (folder / SOCIAL).is_file() and (folder / CORE).is_file()


def spec_dir() -> Path | None:
    """The folder holding the spec files, or None when none is configured or found."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        folder = Path(configured).expanduser()
        if not _complete(folder):
            raise SpecNotFound(f"{ENV_VAR}={configured} does not hold {SOCIAL} and {CORE}")
        return folder
    return DEFAULT_DIR if _complete(DEFAULT_DIR) else None


def available() -> bool:
    return spec_dir() is not None


@cache
def _document(folder: Path, name: str) -> dict[str, Any]:
    import yaml  # only the conformance checks need PyYAML

    text = (folder / name).read_text("utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: about 7x faster
    loaded = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way
    if not isinstance(loaded, dict):
        raise ValueError(f"{folder / name} is not an OpenAPI document")
    return loaded


def document(name: str) -> dict[str, Any]:
    folder = spec_dir()
    if folder is None:
        raise SpecNotFound(SKIP_REASON)
    return _document(folder, name)


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def request_pointer(path: str) -> str:
    return f"#/paths/{_escape(path)}/post/requestBody/content/application~1json/schema"


def sync_response_pointer(path: str) -> str:
    return f"#/paths/{_escape(path)}/post/responses/default/content/application~1json/schema"


ACK_POINTER = "#/components/responses/Response/content/application~1json/schema"
HTTP_ERROR_POINTER = "#/components/responses/HttpErrorResponse/content/application~1json/schema"

# Where the spec's query/filter value schema sits (see the module docstring).
_VALUE_NODE = (
    "components",
    "schemas",
    "SubscriptionInfo",
    "properties",
    "filter",
    "anyOf",
    1,
    "properties",
    "value",
    "allOf",
    1,
)


def _tolerant(spec: dict[str, Any]) -> dict[str, Any]:
    patched = copy.deepcopy(spec)
    node: Any = patched
    for step in _VALUE_NODE:
        node = node[step]
    alternatives = node.pop("oneOf")
    node["anyOf"] = [*alternatives, {"type": "array", "maxItems": 100}]
    return patched


@cache
def _validator(folder: Path, name: str, pointer: str, tolerant: bool) -> Draft4Validator:
    spec = _document(folder, name)
    root = _tolerant(spec) if tolerant else dict(spec)
    root["$ref"] = pointer  # draft 4: a $ref replaces its siblings; refs resolve in ``root``
    return Draft4Validator(root, format_checker=FORMATS)


def problems(
    body: Any, pointer: str, spec: str = SOCIAL, *, tolerant: bool = False
) -> list[Problem]:
    """Every way ``body`` breaks the schema at ``pointer`` of ``spec`` (empty when valid)."""
    folder = spec_dir()
    if folder is None:
        raise SpecNotFound(SKIP_REASON)
    found = []
    for error in _validator(folder, spec, pointer, tolerant).iter_errors(body):
        while error.validator in ("oneOf", "anyOf") and error.context:
            error = closest_branch(error.context)
        found.append(Problem(json_path(error), describe(error)))
    return found


def request_problems(path: str, body: Any) -> list[Problem]:
    """A request as the spec reads it (with the documented relaxation of the value schema)."""
    return problems(body, request_pointer(path), tolerant=True)


def ack_problems(body: Any) -> list[Problem]:
    return problems(body, ACK_POINTER) + problems(body, ACK_POINTER, CORE)


def http_error_problems(body: Any) -> list[Problem]:
    return problems(body, HTTP_ERROR_POINTER)


def sync_response_problems(path: str, body: Any) -> list[Problem]:
    return problems(body, sync_response_pointer(path))


def callback_problems(callback_path: str, body: Any) -> list[Problem]:
    """A body we POST to a sender (``/registry/on-search``, ``/registry/notify``...)."""
    return problems(body, request_pointer(callback_path))


def answer_problems(path: str, body: Any) -> list[Problem]:
    """Same keys as ``validation.answer_problems``: sync answers by the request path."""
    if path.startswith("/registry/sync/"):
        return sync_response_problems(path, body)
    return callback_problems(path, body)
