"""The dashboard's field collection pages over a real server: forms (upload with CSRF, the
author's reason for a refusal, retire), submissions by status, and a conflict shown side by
side and resolved with its button (audited)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hub.auth.roles import Principal, Role
from hub.intake.contract import INTAKE_EXTENSION_KEY
from registry_core.service import Source
from tests.intake_support import head, household, instance, xlsform
from tests.integration.test_dashboard import (
    DashboardHub,
    add_user,
    csrf,
    login_session,
    running_dashboard,
)

FIELD = Principal("fw-1", frozenset({Role.field_worker}), admin_areas=("R01",))


@pytest.fixture
def hub(db_url: str, tmp_path: Path) -> Iterator[DashboardHub]:
    with running_dashboard(db_url, tmp_path) as running:
        running.runtime.registry.ensure_identifier_systems()
        yield running


def test_forms_submissions_and_a_conflict_resolved(hub: DashboardHub) -> None:
    add_user(hub.settings, "olga")
    browser = login_session(hub, "olga")
    page = browser.get(f"{hub.url}/ui/intake/forms", timeout=10)
    token = csrf(page.text)
    unsafe = browser.post(
        f"{hub.url}/ui/intake/forms/upload",
        files={"file": ("hh.xlsx", xlsform())},
        timeout=10,
    )
    assert unsafe.status_code in (400, 403)  # no CSRF token: refused
    done = browser.post(
        f"{hub.url}/ui/intake/forms/upload",
        data={"csrf_token": token},
        files={"file": ("hh.xlsx", xlsform())},
        timeout=10,
    )
    assert done.status_code == 200 and "version 1 is now current" in done.text
    refused = browser.post(
        f"{hub.url}/ui/intake/forms/upload",
        data={"csrf_token": token},
        files={"file": ("hh.xlsx", xlsform(version=None))},
        timeout=10,
    )
    assert "set a version" in refused.text
    assert 'data-form-id="hh_test"' in refused.text
    with_media = browser.post(
        f"{hub.url}/ui/intake/forms/upload",
        data={"csrf_token": token},
        files=[
            ("file", ("hh.xlsx", xlsform(version="2"))),
            ("media", ("villages.csv", b"name,label\nv1,One\n", "text/csv")),
        ],
        timeout=10,
    )
    assert "version 2 is now current" in with_media.text
    summary = hub.app.extensions[INTAKE_EXTENSION_KEY].forms_for(FIELD)[0]
    assert summary.media_files == ("villages.csv",)
    bad_name = browser.post(
        f"{hub.url}/ui/intake/forms/upload",
        data={"csrf_token": token},
        files=[
            ("file", ("hh.xlsx", xlsform(version="3"))),
            ("media", ("../villages.csv", b"x", "text/csv")),
        ],
        timeout=10,
    )
    assert "plain file name" in bad_name.text

    service = hub.app.extensions[INTAKE_EXTENSION_KEY]
    service.publisher = None
    xform = service.form_document("hh_test", FIELD).xform
    created = hub.runtime.registry.register_household(
        {"admin_area_code": "R01-D02", "address": "Old road", "members": [head()]},
        Source("field_survey"),
    ).record
    stale = instance(
        xform,
        household(household_id=created["id"], base_version=created["version"], address="Mine"),
        [head(person_id=created["members"][0]["id"])],
    )
    hub.runtime.registry.update_household(
        created["id"], {"address": "Theirs"}, Source("registry_staff")
    )
    outcome = service.receive_submission(stale, [], FIELD)
    with hub.runtime.sessions.begin() as session:
        from sqlalchemy import select

        from hub.intake.tables import IntakeSubmission

        row = session.scalar(
            select(IntakeSubmission).where(IntakeSubmission.instance_id == outcome.instance_id)
        )
        service.applier.apply(session, row, hub.runtime.registry)
    listing = browser.get(f"{hub.url}/ui/intake/submissions?status=conflict", timeout=10).text
    assert f'data-instance-id="{outcome.instance_id}"' in listing

    conflicts = browser.get(f"{hub.url}/ui/intake/conflicts", timeout=10).text
    assert 'id="conflict-count">1<' in conflicts
    assert 'class="submitted">Mine<' in conflicts and 'class="registry">Theirs<' in conflicts
    resolved = browser.post(
        f"{hub.url}/ui/intake/conflicts/resolve",
        data={
            "csrf_token": csrf(conflicts),
            "instance_id": outcome.instance_id,
            "action": "keep_registry",
        },
        timeout=10,
    )
    assert resolved.status_code == 200 and 'id="conflict-count">0<' in resolved.text
    assert hub.runtime.registry.get_household(created["id"])["address"] == "Theirs"
    actions = [(a.action, a.target) for a in hub.audit_rows()]
    assert ("intake_keep_registry", outcome.instance_id) in actions
    assert ("intake_form_upload", "hh_test@1") in actions
    assert ("intake_form_upload", "hh_test@2") in actions
    assert (
        requests.get(f"{hub.url}/ui/intake/forms", allow_redirects=False, timeout=10).status_code
        == 302
    )
