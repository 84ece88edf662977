"""Brazil's Cadastro Único, registration: at the municipal office, an officer registers a
family whose head shows an ID document, the form prefilled from the national ID; a mobile team
registers another family with the offline web page while out of coverage; then an
administrator adds a program's new question to the form (school attendance), and the next
registration answers it, stored as the child's attribute with its provenance.

Real parts: the prefill API over the sandbox's national ID (SOAP), civil registry, tax and GIS
mocks; the OpenRosa server (Digest) and a device's form download; the offline page in headless
Chromium (enketo, service worker, IndexedDB) against the same hub; the form upload API
(pyxform); the intake core, the ingest and crosscheck workers.
"""

from __future__ import annotations

import io
import random
from datetime import date
from typing import Any

import pytest
import requests
from openpyxl import Workbook
from sqlalchemy import select

from hub.auth.tokens import issue_token
from hub.intake.sample_forms import make_household_registration as sample
from registry_core.models import SocioEconomicAttribute
from sandbox_mocks.field_team.answers import household_answers, member_answers
from sandbox_mocks.field_team.openrosa import OpenRosaClient
from sandbox_mocks.field_team.xform import FormTemplate, instance_id_of
from sandbox_mocks.population import iter_vital_events
from tests.scenarios.conftest import LiveHub, field_account, wait_for

CENSUS_DAY = date(2025, 1, 1)
NEW_VERSION = "2026120601"
NEW_QUESTION = "attends_school"


def _living_households(hub: LiveHub) -> list[Any]:
    """Unseeded households whose members all live and whose head holds a national ID."""
    died = {
        e.person.person_key
        for e in iter_vital_events(42, hub.sandbox.config.people)
        if e.kind == "death"
    }
    return [
        h
        for h in hub.unseeded
        if all(p.death_date is None and p.person_key not in died for p in h.members)
        and any(p.relationship == "head" and p.national_id for p in h.members)
        and len(h.members) >= 2
    ]


def _applied(hub: LiveHub, admin: dict[str, str], instance_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        row = requests.get(
            f"{hub.url}/api/v1/intake/submissions/{instance_id}", headers=admin, timeout=10
        ).json()
        assert row.get("status") in (None, "received", "applied"), row
        return row if row.get("status") == "applied" else None

    return wait_for(found, 60, f"submission {instance_id} applied")


def _household(hub: LiveHub, admin: dict[str, str], household_id: str) -> dict[str, Any]:
    return requests.get(
        f"{hub.url}/api/v1/households/{household_id}", headers=admin, timeout=10
    ).json()


def _form_with_new_question() -> bytes:
    """The sample form, version NEW_VERSION, with the program's question in the members
    repeat (asked of children), as an administrator edits it in a spreadsheet."""
    survey = list(sample.SURVEY)
    end_of_members = next(i for i, row in enumerate(survey) if row[0] == "end_repeat")
    blank = ("",) * (len(survey[0]) - 3)
    survey.insert(
        end_of_members,
        ("select_one yes_no", NEW_QUESTION, "Does this child attend school?", *blank),
    )
    book = Workbook()
    sheet = book.active
    sheet.title = "survey"
    for row in survey:
        sheet.append(list(row))
    choices = book.create_sheet("choices")
    for row in sample.CHOICES:
        choices.append(list(row))
    settings = book.create_sheet("settings")
    settings.append(["form_title", "form_id", "version"])
    settings.append([sample.TITLE, sample.FORM_ID, NEW_VERSION])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _wait_count(page: Any, which: str, value: int) -> None:
    # A function, not an expression: the page's CSP forbids eval.
    page.wait_for_function(
        "([id, value]) => document.getElementById(id).textContent === String(value)",
        arg=[f"count-{which}", value],
    )


def _mobile_team_registers_offline(
    browser: Any, hub: LiveHub, username: str, password: str, household: Any
) -> None:
    """The offline page: log in, lose coverage, fill one family, get coverage back."""
    head = next(p for p in household.members if p.relationship == "head")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{hub.url}/collect/")
        page.wait_for_selector("#collect[data-ready=true]")
        page.fill("#login-username", username)
        page.fill("#login-password", password)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#form-container form.or")
        page.wait_for_selector("#collect[data-offline-ready=true]")
        context.set_offline(True)
        page.fill('input[name="/data/admin_area_code"]', household.locality_code)
        page.fill('input[name="lat"]', f"{household.latitude:.6f}")
        page.fill('input[name="long"]', f"{household.longitude:.6f}")
        page.check('input[name="/data/consent_national_id_check"][value="yes"]')
        member = page.locator(".or-repeat").nth(0)
        member.locator('input[name="/data/members/given_name"]').fill(head.given_name)
        member.locator('input[name="/data/members/family_name"]').fill(head.family_name)
        member.locator(f'input[data-name="/data/members/sex"][value="{head.sex}"]').check()
        member.locator('input[placeholder="yyyy-mm-dd"]').fill(head.birth_date.isoformat())
        member.locator('input[data-name="/data/members/relationship"][value="head"]').check()
        page.check('input[name="/data/dwelling/roof_material"][value="tiles"]')
        page.fill('input[name="/data/dwelling/rooms"]', "2")
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.click("#submit-household")
        _wait_count(page, "queued", 1)
        context.set_offline(False)
        _wait_count(page, "sent", 1)
    finally:
        context.close()


@pytest.mark.slow
@pytest.mark.sandbox(noise_rate=0.0)
@pytest.mark.unseeded(count=30)
def test_office_and_mobile_registration_and_a_program_question_added_without_code(
    live_hub: LiveHub, browser: Any
) -> None:
    hub = live_hub
    admin = hub.token("admin")
    families = _living_households(hub)
    assert len(families) >= 3
    office_family, mobile_family = families[:2]
    next_family = next(f for f in families[2:] if any(p.relationship == "child" for p in f.members))
    chosen = (office_family, mobile_family, next_family)
    areas = sorted({f.locality_code.split("-")[0] for f in chosen})
    office_password = field_account(hub, "cras-officer-1", "field_worker", areas)
    mobile_password = field_account(hub, "mobile-team-4", "field_worker", areas)
    officer = {
        "Authorization": "Bearer "
        + issue_token(
            hub.settings, subject="cras-officer-1", roles=["field_worker"], admin_areas=areas
        )
    }

    # 1. At the office: the head's ID document, the form prefilled from the national ID.
    head = next(p for p in office_family.members if p.relationship == "head")
    prefill = requests.post(
        f"{hub.url}/api/v1/prefill",
        # The officer waits for every source (the default 2 s deadline answers with what has
        # come back; on a loaded test machine the GIS area could miss it).
        json={"national_id": head.national_id, "deadline_seconds": 10},
        headers=officer,
        timeout=30,
    )
    assert prefill.status_code == 200, prefill.text
    assert prefill.json()["partial"] is False, prefill.json()["sources"]
    proposed = prefill.json()["household"]
    office = OpenRosaClient(f"{hub.url}/openrosa", "cras-officer-1", office_password)
    listed = {f.form_id: f for f in office.form_list()}[sample.FORM_ID]
    template = FormTemplate.from_xform(office.download(listed))
    answers = household_answers(office_family, as_of=CENSUS_DAY, rng=random.Random(1))
    from_id = proposed["head"]
    answers["members"][0].update(
        given_name=from_id["given_name"],
        family_name=from_id["family_name"],
        sex=from_id["sex"],
        birth_date=from_id["birth_date"],
        national_id=head.national_id,
    )
    answers["admin_area_code"] = proposed["admin_area_code"]
    office_form = template.fill(answers)
    assert office.submit(office_form).status == 201
    registered = _household(
        hub, admin, _applied(hub, admin, instance_id_of(office_form))["household_id"]
    )
    registered_head = next(m for m in registered["members"] if m["relationship"] == "head")
    assert {k: registered_head[k] for k in ("given_name", "family_name", "birth_date")} == {
        k: from_id[k] for k in ("given_name", "family_name", "birth_date")
    }
    assert registered["admin_area_code"] == proposed["admin_area_code"]

    # 2. A mobile team, out of coverage, with the offline page; it syncs when back.
    _mobile_team_registers_offline(browser, hub, "mobile-team-4", mobile_password, mobile_family)
    rows = requests.get(
        f"{hub.url}/api/v1/intake/submissions?submitted_by=mobile-team-4", headers=admin, timeout=10
    ).json()["submissions"]
    assert len(rows) == 1
    mobile = _household(hub, admin, _applied(hub, admin, rows[0]["instance_id"])["household_id"])
    mobile_head = next(p for p in mobile_family.members if p.relationship == "head")
    assert [m["given_name"] for m in mobile["members"]] == [mobile_head.given_name]

    # 3. The program's new question: uploaded by an administrator, no code, no migration.
    uploaded = requests.post(
        f"{hub.url}/api/v1/intake/forms",
        files={"file": ("cadastro_v2.xlsx", _form_with_new_question())},
        headers=admin,
        timeout=30,
    )
    assert uploaded.status_code == 201, uploaded.text
    relisted = {f.form_id: f for f in office.form_list()}[sample.FORM_ID]
    assert relisted.version == NEW_VERSION and relisted.hash != listed.hash
    template = FormTemplate.from_xform(office.download(relisted))
    answers = household_answers(next_family, as_of=CENSUS_DAY, rng=random.Random(2))
    answers["members"] = [member_answers(p) for p in next_family.members]
    child = next(i for i, p in enumerate(next_family.members) if p.relationship == "child")
    answers["members"][child][NEW_QUESTION] = "yes"
    next_form = template.fill(answers)
    assert office.submit(next_form).status == 201
    row = _applied(hub, admin, instance_id_of(next_form))
    assert row["form_version"] == NEW_VERSION
    household = _household(hub, admin, row["household_id"])
    facts = [a for a in household["attributes"] if a["name"] == NEW_QUESTION]
    assert [f["value"] for f in facts] == ["yes"]
    answered = household["members"][facts[0]["member_index"]]
    assert answered["given_name"] == answers["members"][child]["given_name"]
    with hub.runtime.sessions() as session:
        stored = session.scalars(
            select(SocioEconomicAttribute).where(SocioEconomicAttribute.name == NEW_QUESTION)
        ).all()
    assert [(s.source_system, s.person_id is not None) for s in stored] == [("intake", True)]
    assert stored[0].source_record_id == (
        f"{sample.FORM_ID}@{NEW_VERSION}/{instance_id_of(next_form)}"
    )
