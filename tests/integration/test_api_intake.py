"""The intake API over real databases: uploading XLSForms (and the author's reasons when one
is refused), versions and retirement, submissions by area, conflicts and their resolution."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hub.api import create_app
from hub.auth.roles import Principal, Role
from hub.auth.tokens import issue_token
from hub.intake.contract import INTAKE_EXTENSION_KEY
from hub.settings import load_settings
from tests.intake_support import head, household, instance, xlsform

PROBLEM = "application/problem+json"


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path, sandbox=False)
    app = create_app(settings)
    app.extensions["srhub_runtime"].registry.ensure_identifier_systems()

    def auth(*roles: str, areas: tuple[str, ...] = (), subject: str = "tester") -> dict:
        token = issue_token(settings, subject=subject, roles=list(roles), admin_areas=areas)
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.app_under_test = app  # type: ignore[attr-defined]
    yield client
    app.extensions["srhub_runtime"].close()


def upload(api, content: bytes, name: str = "hh.xlsx", role: str = "admin"):
    return api.post(
        "/api/v1/intake/forms",
        data={"file": (io.BytesIO(content), name)},
        headers=api.auth(role, areas=("R01",) if role == "field_worker" else ()),
        content_type="multipart/form-data",
    )


def test_forms_are_uploaded_versioned_and_retired(api) -> None:
    first = upload(api, xlsform())
    assert first.status_code == 201, first.json
    assert first.json["form_id"] == "hh_test" and first.json["version"] == "1"
    again = upload(api, xlsform())
    assert again.status_code == 409 and again.mimetype == PROBLEM
    assert "raise the version" in again.json["detail"]
    assert upload(api, xlsform(version="2"), role="registry_staff").status_code == 201
    assert upload(api, xlsform(version="3"), role="field_worker").status_code == 403
    forms = api.get("/api/v1/intake/forms", headers=api.auth("auditor")).json["forms"]
    assert [(f["form_id"], f["version"], f["versions"]) for f in forms] == [("hh_test", "2", 2)]
    versions = api.get("/api/v1/intake/forms/hh_test/versions", headers=api.auth("admin")).json
    assert [(v["version"], v["current"]) for v in versions["versions"]] == [
        ("2", True),
        ("1", False),
    ]
    retired = api.post(
        "/api/v1/intake/forms/hh_test/versions/2/retire", headers=api.auth("admin")
    ).json
    assert retired["state"] == "retired" and retired["current_version"] == "1"
    missing = api.get("/api/v1/intake/forms/nope/versions", headers=api.auth("admin"))
    assert missing.status_code == 404 and missing.mimetype == PROBLEM


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (xlsform(version=None), "hh.xlsx", "set a version"),
        (xlsform(extra_rows=[("integer", "bad name", "Q", "", "", "", "")]), "hh.xlsx", "row"),
        (b"not a spreadsheet", "hh.xlsx", "not a readable"),
        (xlsform(), "hh.pdf", "an XLSForm is a"),
    ],
)
def test_a_refused_upload_says_what_to_fix(api, content: bytes, name: str, expected: str) -> None:
    response = upload(api, content, name)
    assert response.status_code == 400 and response.mimetype == PROBLEM
    assert expected in response.json["detail"]


def test_submissions_by_area_and_conflict_resolution(api) -> None:
    assert upload(api, xlsform()).status_code == 201
    service = api.app_under_test.extensions[INTAKE_EXTENSION_KEY]
    service.publisher = None  # these tests apply by hand, without a worker
    xform = service.form_document("hh_test", None).xform
    north = Principal("fw-north", frozenset({Role.field_worker}), admin_areas=("R01",))
    south = Principal("fw-south", frozenset({Role.field_worker}), admin_areas=("R02",))
    a = service.receive_submission(instance(xform, household(), [head()]), [], north)
    b = service.receive_submission(
        instance(xform, household(admin_area_code="R02-D01"), [head()]), [], south
    )
    staff = api.get("/api/v1/intake/submissions", headers=api.auth("registry_staff")).json
    assert {s["instance_id"] for s in staff["submissions"]} == {a.instance_id, b.instance_id}
    scoped = api.get(
        "/api/v1/intake/submissions", headers=api.auth("supervisor", areas=("R02",))
    ).json
    assert [s["instance_id"] for s in scoped["submissions"]] == [b.instance_id]
    hidden = api.get(
        f"/api/v1/intake/submissions/{a.instance_id}",
        headers=api.auth("supervisor", areas=("R02",)),
    )
    assert hidden.status_code == 404
    by_form = api.get(
        "/api/v1/intake/submissions?status=received&submitted_by=fw-north",
        headers=api.auth("admin"),
    ).json["submissions"]
    assert [s["instance_id"] for s in by_form] == [a.instance_id]
    bad = api.get("/api/v1/intake/submissions?status=lost", headers=api.auth("admin"))
    assert bad.status_code == 400 and bad.mimetype == PROBLEM
    not_conflict = api.post(
        f"/api/v1/intake/conflicts/{a.instance_id}/resolve",
        json={"action": "keep_registry"},
        headers=api.auth("admin"),
    )
    assert not_conflict.status_code == 409
    wrong = api.post(
        f"/api/v1/intake/conflicts/{a.instance_id}/resolve",
        json={"action": "overwrite"},
        headers=api.auth("admin"),
    )
    assert wrong.status_code == 400
    one = api.get(f"/api/v1/intake/submissions/{a.instance_id}", headers=api.auth("admin")).json
    assert one["status"] == "received" and one["form_version"] == "1"


def test_a_form_is_uploaded_with_its_media_and_devices_get_them(api) -> None:
    content = xlsform(
        extra_rows=[("select_one_from_file villages.csv", "village", "V", "", "", "", "")]
    )
    alone = upload(api, content)
    assert alone.status_code == 201
    assert any("'villages.csv'" in w and "not uploaded" in w for w in alone.json["warnings"])
    villages = b"name,label\nv1,Village one\nv2,Village two\n"
    with_media = api.post(
        "/api/v1/intake/forms",
        data={
            "file": (
                io.BytesIO(
                    xlsform(
                        version="2",
                        extra_rows=[
                            ("select_one_from_file villages.csv", "village", "V", "", "", "", "")
                        ],
                    )
                ),
                "hh.xlsx",
            ),
            "media": (io.BytesIO(villages), "villages.csv", "text/csv"),
        },
        headers=api.auth("admin"),
        content_type="multipart/form-data",
    )
    assert with_media.status_code == 201, with_media.json
    assert not [w for w in with_media.json["warnings"] if "villages.csv" in w]
    service = api.app_under_test.extensions[INTAKE_EXTENSION_KEY]
    worker = Principal("enumerator", frozenset({Role.field_worker}), admin_areas=("R01",))
    (summary,) = service.forms_for(worker)
    assert summary.version == "2" and summary.media_files == ("villages.csv",)
    served = service.form_media("hh_test", "villages.csv", worker)
    assert served is not None and served.content == villages
    for bad in ("../etc/passwd", "sub/dir.csv", ""):
        refused = api.post(
            "/api/v1/intake/forms",
            data={
                "file": (io.BytesIO(xlsform(version="3")), "hh.xlsx"),
                "media": (io.BytesIO(b"x"), bad or " "),
            },
            headers=api.auth("admin"),
            content_type="multipart/form-data",
        )
        assert refused.status_code == 400 and "plain file name" in refused.json["detail"]
