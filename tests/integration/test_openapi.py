"""The OpenAPI document against the app: every route and method documented, nothing invented,
every reference resolvable, and real records valid against the embedded canonical schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from hub.api import create_app
from hub.api.openapi import FragmentError, build_document
from hub.auth.tokens import issue_token
from hub.settings import load_settings

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Flask's own route for a static folder: not part of the API (and denied by default).
FLASK_ENDPOINTS = {"static"}
_CONVERTER = re.compile(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>")


def openapi_path(rule: str) -> str:
    """``/api/v1/households/<uuid:household_id>`` -> ``/api/v1/households/{household_id}``."""
    return _CONVERTER.sub(r"{\1}", rule)


def app_operations(app: Any) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FLASK_ENDPOINTS:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method.lower(), openapi_path(rule.rule)))
    return found


def document_operations(document: dict) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    from hub.dbschema import upgrade_to_head

    data = tmp_path_factory.mktemp("openapi")
    url = f"sqlite:///{data.as_posix()}/hub.db"
    upgrade_to_head(url)
    settings = load_settings(env={}, database_url=url, data_dir=data)
    app = create_app(settings)
    app.extensions["srhub_runtime"].registry.ensure_identifier_systems()
    app.config["test_settings"] = settings
    yield app
    app.extensions["srhub_runtime"].close()


@pytest.fixture(scope="module")
def document(app) -> dict:
    response = app.test_client().get("/openapi.json")  # public: no credentials
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_document_lists_exactly_the_routes_of_the_app(app, document):
    assert document.get("x-undocumented-blueprints", []) == [], "add hub/api/specs/<bp>.json"
    assert build_document(list(app.blueprints)) == document  # strict build agrees
    in_app, in_doc = app_operations(app), document_operations(document)
    assert sorted(in_app - in_doc) == [], "routes missing from hub/api/specs/*.json"
    assert sorted(in_doc - in_app) == [], "documented operations the app does not serve"


def test_path_parameters_match_the_route_variables(document):
    for path, item in document["paths"].items():
        variables = set(re.findall(r"{([^}]+)}", path))
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            declared = {
                _resolve(document, p)["name"]
                for p in item.get("parameters", []) + operation.get("parameters", [])
                if _resolve(document, p)["in"] == "path"
            }
            assert declared == variables, f"{method.upper()} {path}"


def test_operations_are_unique_and_answer_something(document):
    ids = [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]
    assert len(ids) == len(set(ids))
    for item in document["paths"].values():
        for method, op in item.items():
            if method in HTTP_METHODS:
                assert any(code[0] in "23" for code in op["responses"]), op["operationId"]


def _resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        node = _pointer(document, node["$ref"])
    return node


def _pointer(document: dict, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves_inside_the_document(document):
    refs = set(_refs(document))
    assert "#/components/schemas/Person" in refs  # the canonical schema is what is referenced
    for ref in refs:
        _pointer(document, ref)


def test_security_schemes_and_public_routes(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["apiKeyAuth"] == {**schemes["apiKeyAuth"], "in": "header", "name": "X-API-Key"}
    public = {
        path
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS and op.get("security") == []
    }
    assert public == {
        "/health",
        "/health/ready",
        "/openapi.json",
        "/fhir/metadata",
        "/ui/login",
        "/ui/static/{filename}",
        # The offline intake page's shell and assets hold no data (it syncs via /openrosa).
        "/collect/",
        "/collect/sw.js",
        "/collect/static/{name}",
        # The token keys' public halves (JWKS), for checking hub tokens offline.
        "/.well-known/jwks.json",
    }


def test_a_served_household_is_valid_against_the_documented_schema(app, document):
    settings = app.config["test_settings"]
    token = issue_token(settings, subject="openapi-test", roles=["admin"])
    client = app.test_client()
    created = client.post(
        "/api/v1/households",
        json={
            "admin_area_code": "R01-D02",
            "address": "1 Market Road",
            "members": [
                {
                    "given_name": "Amina",
                    "family_name": "Otieno",
                    "sex": "female",
                    "birth_date": "1985-04-02",
                    "relationship": "head",
                    "identifiers": [{"system": "national_id", "value": "1234567897"}],
                }
            ],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    registry = Registry().with_resource("urn:openapi", Resource.opaque(document))
    schema = {"$ref": "urn:openapi#/components/schemas/Household"}
    errors = list(Draft202012Validator(schema, registry=registry).iter_errors(created.get_json()))
    assert errors == []
    # The embedded schema still refuses what the canonical one refuses.
    broken = {**created.get_json(), "unexpected": 1}
    assert list(Draft202012Validator(schema, registry=registry).iter_errors(broken))


def test_a_blueprint_without_fragment_is_refused(tmp_path: Path):
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    base = json.loads((Path(__file__).parents[2] / "hub/api/specs/_base.json").read_text())
    (spec_dir / "_base.json").write_text(json.dumps(base))
    with pytest.raises(FragmentError, match=r"newthing\.json"):
        build_document(["newthing"], spec_dir)


def test_two_fragments_may_not_describe_the_same_path(tmp_path: Path):
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    base = json.loads((Path(__file__).parents[2] / "hub/api/specs/_base.json").read_text())
    (spec_dir / "_base.json").write_text(json.dumps(base))
    fragment = {"paths": {"/x": {"get": {"responses": {"200": {"description": "x"}}}}}}
    (spec_dir / "a.json").write_text(json.dumps(fragment))
    (spec_dir / "b.json").write_text(json.dumps(fragment))
    with pytest.raises(FragmentError, match="already described"):
        build_document(["a", "b"], spec_dir)


def test_every_operation_documents_the_rate_limits_429(document):
    """The limits stand before every route (hub.ratelimit), so every operation says 429."""
    missing = [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS and "429" not in operation.get("responses", {})
    ]
    assert missing == []
    shared = document["components"]["responses"]["TooManyRequests"]
    assert shared["headers"]["Retry-After"]["schema"]["type"] == "integer"
    # A fragment's own 429 (the login throttle answers HTML) is kept, not replaced.
    login = document["paths"]["/ui/login"]["post"]["responses"]["429"]
    assert "$ref" not in login and "text/html" in login["content"]


def test_a_real_429_matches_the_documented_response(document, tmp_path: Path):
    settings = load_settings(
        env={},
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'limits.db'}",
        sandbox=False,
        rate_limits={"enabled": True, "storage": "memory", "per_address": "2/minute"},
    )
    client = create_app(settings).test_client()
    answers = [client.get("/health") for _ in range(3)]
    refused = answers[-1]
    assert [a.status_code for a in answers] == [200, 200, 429]
    documented = document["paths"]["/health"]["get"]["responses"]["429"]
    response = _resolve(document, documented)
    assert refused.mimetype in response["content"]
    assert int(refused.headers["Retry-After"]) >= 0
    registry = Registry().with_resource("urn:openapi", Resource.opaque(document))
    schema = {"$ref": "urn:openapi#/components/schemas/Problem"}
    validator = Draft202012Validator(schema, registry=registry)
    assert list(validator.iter_errors(refused.get_json())) == []
