"""The dashboard's consent page over a real server: a household's consents and its members'
listed with their history; a withdrawal needs the CSRF token and a reason, is audited, and
closes the program's FHIR read at once; supervisors are kept out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from hub.auth.tokens import issue_token
from hub.cli import main
from registry_core.service import Source
from tests.integration.test_dashboard import (
    PASSWORD,
    DashboardHub,
    add_user,
    csrf,
    login_session,
    running_dashboard,
)

STAFF = Source("registry_staff")


@pytest.fixture
def hub(db_url: str, tmp_path: Path) -> Iterator[DashboardHub]:
    with running_dashboard(db_url, tmp_path) as running:
        running.runtime.registry.ensure_identifier_systems()
        yield running


def test_a_household_s_consents_listed_and_one_withdrawn(hub: DashboardHub) -> None:
    registry = hub.runtime.registry
    house = registry.register_household(
        {
            "admin_area_code": "R01-D01",
            "members": [
                {
                    "given_name": "Wanjiku",
                    "family_name": "Kariuki",
                    "sex": "female",
                    "birth_date": "1984-01-02",
                    "relationship": "head",
                    "identifiers": [{"system": "national_id", "value": "1234567897"}],
                }
            ],
        },
        STAFF,
    ).record
    person = house["members"][0]["id"]
    given = registry.grant_consent(
        "CCT", "cash_transfer", "paper", STAFF, person_id=person, evidence_reference="scan:7"
    ).record
    registry.grant_consent("NUT", "nutrition", "verbal", STAFF, household_id=house["id"])
    program = {
        "Authorization": "Bearer "
        + issue_token(hub.settings, subject="cct", roles=["program"], program="CCT")
    }
    assert (
        requests.get(f"{hub.url}/fhir/Patient/{person}", headers=program, timeout=10).status_code
        == 200
    )

    add_user(hub.settings, "olga")
    browser = login_session(hub, "olga")
    page = browser.get(f"{hub.url}/ui/households/{house['id']}/consents", timeout=10)
    assert page.status_code == 200
    assert page.text.count("data-consent-id=") == 2 and "scan:7" in page.text
    assert "Wanjiku Kariuki" in page.text
    action = f"{hub.url}/ui/consents/{given['consent_id']}/withdraw"
    form = {"household": house["id"], "reason": "asked at the help desk"}
    assert browser.post(action, data=form, timeout=10).status_code in (400, 403)  # no CSRF
    no_reason = browser.post(
        action, data={**form, "reason": " ", "csrf_token": csrf(page.text)}, timeout=10
    )
    assert "say why" in no_reason.text
    assert registry.get_consent(given["consent_id"])["status"] == "active"
    done = browser.post(action, data={**form, "csrf_token": csrf(page.text)}, timeout=10)
    assert done.status_code == 200 and "Consent withdrawn." in done.text
    assert 'data-status="withdrawn"' in done.text and "asked at the help desk" in done.text
    withdrawn = registry.get_consent(given["consent_id"])
    assert withdrawn["revoked_by"] == "ui:olga"
    assert (
        requests.get(f"{hub.url}/fhir/Patient/{person}", headers=program, timeout=10).status_code
        == 404
    )
    audit = browser.get(f"{hub.url}/ui/audit", timeout=10).text
    assert "consent_withdraw" in audit and f"consent:{given['consent_id']}" in audit

    # supervisors hold a dashboard session but neither see nor withdraw consents
    settings = hub.settings
    added = CliRunner().invoke(
        main,
        ["users", "add", "sue", "--role", "supervisor", "--area", "R01", "--password-stdin"],
        input=PASSWORD + "\n",
        env={"SRHUB_DATABASE_URL": settings.database_url, "SRHUB_DATA_DIR": str(settings.data_dir)},
    )
    assert added.exit_code == 0, added.output
    supervisor = requests.Session()
    form_page = supervisor.get(f"{hub.url}/ui/login", timeout=10)
    landed = supervisor.post(
        f"{hub.url}/ui/login",
        data={
            "csrf_token": csrf(form_page.text),
            "method": "password",
            "username": "sue",
            "password": PASSWORD,
            "next": "/ui/review",
        },
        timeout=10,
    )
    assert landed.status_code == 200 and "Review queue" in landed.text
    token = csrf(landed.text)
    seen = supervisor.get(f"{hub.url}/ui/households/{house['id']}/consents", timeout=10)
    assert seen.status_code == 403
    other = registry.list_consents(household_id=house["id"])[0]["consent_id"]
    refused = supervisor.post(
        f"{hub.url}/ui/consents/{other}/withdraw", data={**form, "csrf_token": token}, timeout=10
    )
    assert refused.status_code == 403
    assert registry.get_consent(other)["status"] == "active"
