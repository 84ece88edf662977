"""Issue 17, input: values no record may hold are refused at the edge and in the registry, with
the path and a reason, on SQLite and PostgreSQL; none of them is a 500 any more."""

from __future__ import annotations

import http.client
import json
import math
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from registry_core.service import Source
from standards.validation import SchemaViolation

PROBLEM = "application/problem+json"
LIMIT = 64_000


def payload() -> dict:
    return {
        "admin_area_code": "R01-D02-L003",
        "address": "12 Mango Lane",
        "location": {"lat": -1.28, "lon": 36.82},
        "members": [
            {
                "given_name": "Amina",
                "family_name": "Otieno",
                "sex": "female",
                "birth_date": "1985-04-02",
                "relationship": "head",
            }
        ],
        "attributes": [{"domain": "income", "name": "monthly_income", "value": 5400}],
    }


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path, max_request_bytes=LIMIT
    )
    app = create_app(settings)
    app.extensions["srhub_runtime"].registry.ensure_identifier_systems()
    token = issue_token(settings, subject="tester", roles=["registry_staff"])
    client = app.test_client()
    client.staff = {"Authorization": f"Bearer {token}"}  # type: ignore[attr-defined]
    client.app_under_test = app  # type: ignore[attr-defined]
    yield client
    app.extensions["srhub_runtime"].close()


def _post_raw(api, text: str, url: str = "/api/v1/households"):
    """POST ``text`` as it is: Python's json.dumps would write NaN and lone surrogates too, but
    the test says exactly what goes over the wire."""
    return api.post(
        url, data=text.encode("utf-8"), content_type="application/json", headers=api.staff
    )


def _paths(response) -> list[str]:
    return [error["path"] for error in response.json.get("errors", [])]


def _register(api) -> dict:
    created = api.post("/api/v1/households", json=payload(), headers=api.staff)
    assert created.status_code == 201, created.json
    return created.json


# --- NaN and Infinity --------------------------------------------------------------------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_in_attribute_value_is_refused_with_422(api, constant: str):
    text = json.dumps(payload()).replace('"value": 5400', f'"value": {constant}')
    answer = _post_raw(api, text)
    assert answer.status_code == 422 and answer.mimetype == PROBLEM
    assert _paths(answer) == ["$.attributes[0].value"]
    assert "finite" in answer.json["errors"][0]["message"]
    # Nothing was stored, and the registry still answers valid JSON.
    listed = api.get("/api/v1/households", headers=api.staff)
    assert listed.status_code == 200 and listed.json["total"] == 0


@pytest.mark.parametrize(("field", "value"), [("lat", "-1.28"), ("lon", "36.82")])
def test_nan_in_coordinates_is_refused_with_422_not_stored_as_no_location(
    api, field: str, value: str
):
    text = json.dumps(payload()).replace(f'"{field}": {value}', f'"{field}": NaN')
    assert "NaN" in text
    answer = _post_raw(api, text)
    assert answer.status_code == 422
    assert f"$.location.{field}" in _paths(answer)


def test_infinity_in_a_location_update_is_refused_with_422(api):
    record = _register(api)
    text = '{"location": {"lat": 1.0, "lon": Infinity}}'
    answer = api.patch(
        f"/api/v1/households/{record['id']}",
        data=text,
        content_type="application/json",
        headers={**api.staff, "If-Match": '"1"'},
    )
    assert answer.status_code == 422 and _paths(answer) == ["$.location.lon"]
    kept = api.get(f"/api/v1/households/{record['id']}", headers=api.staff).json
    assert kept["location"] == {"lat": -1.28, "lon": 36.82} and kept["version"] == 1


def test_nan_reaching_the_registry_from_a_mapping_is_a_schema_violation(api):
    """A connector's mapped record does not pass the HTTP edge: the registry refuses it too."""
    registry = api.app_under_test.extensions["srhub_runtime"].registry
    record = payload()
    record["attributes"][0]["value"] = math.nan
    record["location"]["lon"] = math.inf
    with pytest.raises(SchemaViolation) as refused:
        registry.register_household(record, Source("tax", "row-1"))
    paths = [v.path for v in refused.value.violations]
    assert "$.attributes[0].value" in paths and "$.location.lon" in paths


# --- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "given_name", "rule"),
    [
        ("lone_surrogate", "\\ud800Amina", "unicode"),
        ("nul_byte", "Ami\\u0000na", "control"),
        ("control_character", "Ami\\u0007na", "control"),
        ("line_break", "Ami\\nna", "control"),
        ("rtl_override", "\\u202eanimA", "bidi"),
        ("rtl_isolate", "Amina\\u2067x\\u2069", "bidi"),
        ("whitespace_only", " \\t ", "control"),
        ("spaces_only", "   ", "blank"),
    ],
)
def test_unsafe_text_in_a_name_is_refused_with_422(api, case: str, given_name: str, rule: str):
    text = json.dumps(payload()).replace('"Amina"', f'"{given_name}"')
    answer = _post_raw(api, text)
    assert answer.status_code == 422, (case, answer.status_code)
    assert answer.json["errors"][0]["path"] == "$.members[0].given_name"
    assert answer.json["errors"][0]["rule"] == rule
    assert api.get("/api/v1/households", headers=api.staff).json["total"] == 0


def test_lone_surrogate_in_a_name_is_refused_with_422(api):
    answer = _post_raw(api, json.dumps(payload()).replace('"Otieno"', '"Oti\\udc00eno"'))
    assert answer.status_code == 422 and _paths(answer) == ["$.members[0].family_name"]


def test_nul_byte_in_an_address_is_refused_with_422(api):
    answer = _post_raw(api, json.dumps(payload()).replace("Mango", "Man\\u0000go"))
    assert answer.status_code == 422 and _paths(answer) == ["$.address"]


def test_multi_line_address_is_still_accepted(api):
    record = payload()
    record["address"] = "12 Mango Lane\r\nKibera"
    created = api.post("/api/v1/households", json=record, headers=api.staff)
    assert created.status_code == 201 and created.json["address"] == "12 Mango Lane\r\nKibera"


def test_registry_service_refuses_rtl_override_in_a_name_whatever_the_caller(api):
    registry = api.app_under_test.extensions["srhub_runtime"].registry
    record = payload()
    record["members"][0]["family_name"] = "Oti\u202eeno"
    with pytest.raises(SchemaViolation) as refused:
        registry.register_household(record, Source("civil_registry", "evt-1"))
    assert [(v.path, v.rule) for v in refused.value.violations] == [
        ("$.members[0].family_name", "bidi")
    ]


# --- headers and sizes ---------------------------------------------------------------------


def test_if_match_with_5000_digits_is_refused_with_400(api):
    record = _register(api)
    answer = api.patch(
        f"/api/v1/households/{record['id']}",
        json={"address": "1 New Road"},
        headers={**api.staff, "If-Match": '"' + "9" * 5000 + '"'},
    )
    assert answer.status_code == 400 and answer.mimetype == PROBLEM
    assert "If-Match" in answer.json["detail"]
    deleted = api.delete(
        f"/api/v1/households/{record['id']}/members/{record['members'][0]['id']}",
        headers={**api.staff, "If-Match": "9" * 5000},
    )
    assert deleted.status_code == 400


@pytest.fixture
def served(api):
    server = make_server("127.0.0.1", 0, api.app_under_test, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def _chunked_post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("POST", "/api/v1/households")
        for name, value in {**headers, "Content-Type": "application/json"}.items():
            connection.putheader(name, value)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        step = 8192
        try:
            for start in range(0, len(body), step):
                piece = body[start : start + step]
                connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            connection.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_chunked_body_over_the_limit_gets_413(api, served: int):
    record = payload()
    record["address"] = "x" * 400
    record["members"] = record["members"] * 1500  # well over 64,000 bytes
    body = json.dumps(record).encode()
    assert len(body) > 2 * LIMIT
    status, answer = _chunked_post(served, body, api.staff)
    assert status == 413, answer[:200]
    assert json.loads(answer)["status"] == 413


def test_chunked_body_within_the_limit_is_read(api, served: int):
    status, answer = _chunked_post(served, json.dumps(payload()).encode(), api.staff)
    assert status == 201, answer[:300]
