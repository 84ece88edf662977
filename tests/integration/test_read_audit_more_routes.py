"""The audit of reads on the routes whose answers are about people without being household or
person records: consents, change requests, a household's data-quality issues (SQLite and
PostgreSQL). What the answer names is recorded; an answer naming nobody records nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.auth.tokens import issue_token
from hub.readaudit.records import ReadRecords
from registry_core.service import Source
from tests.integration.dci_support import Dci, seed_population

READS = "/api/v1/audit/reads"


@pytest.fixture
def hub(db_url: str, tmp_path: Path):
    harness = Dci(db_url, tmp_path)
    yield harness
    harness.close()


def _token(hub: Dci, subject: str, *roles: str) -> dict[str, str]:
    issued = issue_token(hub.settings, subject=subject, roles=list(roles))
    return {"Authorization": f"Bearer {issued}"}


def _rows(hub: Dci) -> list[dict]:
    answer = hub.client.get(READS, headers=_token(hub, "aud", "auditor"))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.json["items"]


def test_consent_reads_name_the_household_and_person(hub: Dci) -> None:
    family = seed_population(hub)["otieno"]
    person = family["members"][0]["id"]
    hub.runtime.registry.grant_consent(
        "cash", "cash_transfer", "paper", Source("registry_staff", "form-1"), person_id=person
    )
    staff = _token(hub, "officer-3", "registry_staff")
    listed = hub.client.get(f"/api/v1/persons/{person}/consents", headers=staff)
    assert listed.status_code == 200 and listed.json
    [row] = _rows(hub)
    assert row["subject"] == "officer-3"
    assert row["route"] == "GET /api/v1/persons/<uuid:person_id>/consents"
    assert person in row["person_ids"]
    household = hub.client.get(f"/api/v1/households/{family['id']}/consents", headers=staff)
    assert household.status_code == 200
    assert family["id"] in _rows(hub)[0]["household_ids"]


def test_an_answer_naming_nobody_records_nothing(hub: Dci) -> None:
    seed_population(hub)
    staff = _token(hub, "officer-4", "registry_staff")
    answer = hub.client.get("/api/v1/change-requests", headers=staff)
    assert answer.status_code == 200 and answer.json["items"] == []
    assert _rows(hub) == []


def test_a_refused_read_records_nothing(hub: Dci) -> None:
    family = seed_population(hub)["otieno"]
    program = {
        "Authorization": "Bearer "
        + issue_token(hub.settings, subject="prog", roles=["program"], program="cash")
    }
    answer = hub.client.get(f"/api/v1/households/{family['id']}/consents", headers=program)
    assert answer.status_code in (403, 404)
    assert _rows(hub) == []


def test_found_in_collects_ids_wherever_they_sit() -> None:
    answer = {
        "items": [
            {"id": "cr-1", "household_id": "h1", "person_id": "p1", "history": []},
            {"id": "mr-1", "left_person_id": "p2", "right_person_id": "p3"},
            {"household": {"id": "h2", "members": [{"id": "p4"}, {"id": "p5"}]}},
            {"person_ids": ["p6"], "household_id": None},
        ],
        "total": 4,
    }
    found = ReadRecords.found_in(answer)
    assert set(found.household_ids) == {"h1"}
    assert set(found.person_ids) == {"p1", "p2", "p3", "p4", "p5", "p6"}
    assert not ReadRecords.found_in({"items": [], "total": 0})


def test_dashboard_pages_about_people_leave_a_row(hub: Dci) -> None:
    from tests.integration.staff_support import add_dashboard_user, log_in

    family = seed_population(hub)["otieno"]
    person = family["members"][0]["id"]
    hub.runtime.registry.grant_consent(
        "cash", "cash_transfer", "paper", Source("registry_staff", "form-2"), person_id=person
    )
    add_dashboard_user(hub.settings, "clerk", "registry_staff")
    client = hub.app.test_client()
    log_in(client, "clerk")
    for page in ("consents", "change-requests"):
        before = len(_rows(hub))
        answer = client.get(f"/ui/households/{family['id']}/{page}")
        assert answer.status_code == 200, page
        rows = _rows(hub)
        assert len(rows) == before + 1, page
        assert rows[0]["channel"] == "ui" and rows[0]["subject"] == "clerk"
        assert family["id"] in rows[0]["household_ids"]
        assert {m["id"] for m in family["members"]} <= set(rows[0]["person_ids"])
    # A queue with nobody in it records nothing.
    before = len(_rows(hub))
    assert client.get("/ui/change-requests").status_code == 200
    assert len(_rows(hub)) == before
