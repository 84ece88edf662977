"""The dashboard's corrections in headless Chromium: a registry officer sees each proposal
beside the registry's value now, approves one (the registry changes), rejects another with a
reason, cannot decide their own, and reads the household's history; the audit trail agrees.
A supervisor sees and decides only their areas' requests, and every POST needs its CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from hub.auth.roles import Principal, Role
from hub.cli import main
from hub.corrections import service
from registry_core.service import Source
from tests.integration.test_dashboard import PASSWORD, add_user, csrf, running_dashboard


def _propose(hub: Any, by: str, role: Role, **fields: Any) -> str:
    areas = ("R01",) if role in (Role.field_worker, Role.supervisor) else ()
    principal = Principal(by, frozenset({role}), admin_areas=areas)
    proposal = service.Proposal(
        reason=fields.pop("reason", "typed wrong at registration"),
        on_behalf_of="beneficiary",
        channel="in_person",
        **fields,
    )
    with hub.runtime.sessions() as session, session.begin():
        made = service.propose(session, hub.runtime.registry, proposal, principal)
    return str(made["id"])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_officer_approves_and_rejects_corrections_in_the_browser(
    browser: Any, db_url: str, tmp_path: Path
) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        registry = hub.runtime.registry
        registry.ensure_identifier_systems()
        household = registry.register_household(
            {
                "admin_area_code": "R01-D02",
                "address": "12 Mango Lane",
                "members": [
                    {
                        "given_name": "Amina",
                        "family_name": "Otieno",
                        "sex": "female",
                        "birth_date": "1985-04-02",
                        "relationship": "head",
                    }
                ],
            },
            Source("self_declared"),
        ).record
        hid, person_id = household["id"], household["members"][0]["id"]
        address = _propose(
            hub,
            "enum-7",
            Role.field_worker,
            household_id=hid,
            person_id=None,
            target="household.address",
            old_value="12 Mango Lane",
            proposed_value="14 Mango Lane",
            evidence_reference="utility-bill-2026-11",
        )
        name = _propose(
            hub,
            "enum-7",
            Role.field_worker,
            household_id=hid,
            person_id=person_id,
            target="person.given_name",
            old_value="Amina",
            proposed_value="Aminah",
        )
        own = _propose(
            hub,
            "officer",
            Role.registry_staff,
            household_id=hid,
            person_id=person_id,
            target="person.family_name",
            old_value="Otieno",
            proposed_value="Otienno",
        )
        # The name changed after the proposal: the page shows it beside what was seen.
        registry.update_person(person_id, {"given_name": "Ameena"}, Source("registry_staff"))
        add_user(hub.settings, "officer")

        page = browser.new_context().new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{hub.url}/ui/change-requests")
        form = page.locator("#password-login")
        form.locator("input[name=username]").fill("officer")
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#change-requests")
        assert page.inner_text("#changes-total") == "3"

        row = page.locator(f'tr[data-request-id="{address}"]')
        assert row.locator(".seen").inner_text() == "12 Mango Lane"
        assert row.locator(".current").inner_text() == "12 Mango Lane"
        assert row.locator(".proposed").inner_text() == "14 Mango Lane"
        stale = page.locator(f'tr[data-request-id="{name}"]')
        assert stale.locator(".current").inner_text().startswith("Ameena")
        assert "changed since" in stale.locator(".current").inner_text()
        mine = page.locator(f'tr[data-request-id="{own}"]')
        assert mine.locator("form.decide-approve, form.decide-reject").count() == 0  # four eyes
        assert "another person decides" in mine.locator(".row-actions").inner_text()

        row.locator("form.decide-approve input[name=reason]").fill("bill checked")
        row.locator("form.decide-approve button").click()
        page.wait_for_selector(".flash.ok")
        assert page.inner_text("#changes-total") == "2"
        assert registry.get_household(hid)["address"] == "14 Mango Lane"

        # Approving the stale one is refused and says why; then it is rejected with a reason.
        stale.locator("form.decide-approve button").click()
        page.wait_for_selector(".flash.error")
        assert "changed since this correction was proposed" in page.inner_text(".flash.error")
        assert registry.get_person(person_id)["given_name"] == "Ameena"
        stale = page.locator(f'tr[data-request-id="{name}"]')
        stale.locator("form.decide-reject input[name=reason]").fill("name changed since")
        stale.locator("form.decide-reject button").click()
        page.wait_for_selector(".flash.ok")
        assert page.inner_text("#changes-total") == "1"

        page.goto(f"{hub.url}/ui/households/{hid}/change-requests")
        page.wait_for_selector("#change-history")
        assert page.inner_text("#changes-total") == "3"
        done = page.locator(f'tr[data-request-id="{address}"]')
        assert done.locator(".state-cell").inner_text() == "applied"
        assert "was 12 Mango Lane" in done.locator(".current").inner_text()
        steps = page.locator(f'#change-history li[data-request-id="{name}"]')
        assert [steps.nth(i).get_attribute("data-action") for i in range(steps.count())] == [
            "proposed",
            "rejected",
        ]
        assert "name changed since" in steps.nth(1).inner_text()

    actions = [(r.action, r.target, r.outcome) for r in hub.audit_rows()]
    assert ("correction_approve", f"change-request:{address}", "bill checked") in actions
    assert ("correction_reject", f"change-request:{name}", "name changed since") in actions
    assert any(
        a == "correction_approve" and t == f"change-request:{name}" and o.startswith("refused")
        for a, t, o in actions
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_supervisor_sees_and_decides_only_their_areas_and_csrf_is_checked(
    db_url: str, tmp_path: Path
) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        registry = hub.runtime.registry
        registry.ensure_identifier_systems()
        ids = {}
        for area in ("R01-D02", "R02-D01"):
            house = registry.register_household(
                {
                    "admin_area_code": area,
                    "address": f"1 Road, {area}",
                    "members": [
                        {
                            "given_name": "Zuri",
                            "family_name": "Moyo",
                            "sex": "female",
                            "birth_date": "1990-01-01",
                            "relationship": "head",
                        }
                    ],
                },
                Source("self_declared"),
            ).record
            ids[area] = _propose(
                hub,
                "officer-9",
                Role.registry_staff,
                household_id=house["id"],
                person_id=None,
                target="household.address",
                old_value=house["address"],
                proposed_value=f"2 Road, {area}",
            )
        settings = hub.settings
        added = CliRunner().invoke(
            main,
            ["users", "add", "sue", "--role", "supervisor", "--area", "R01", "--password-stdin"],
            input=PASSWORD + "\n",
            env={
                "SRHUB_DATABASE_URL": settings.database_url,
                "SRHUB_DATA_DIR": str(settings.data_dir),
            },
        )
        assert added.exit_code == 0, added.output
        session = requests.Session()
        form_page = session.get(f"{hub.url}/ui/login", timeout=10)
        landed = session.post(
            f"{hub.url}/ui/login",
            data={
                "csrf_token": csrf(form_page.text),
                "method": "password",
                "username": "sue",
                "password": PASSWORD,
                "next": "/ui/change-requests",
            },
            timeout=10,
        )
        assert landed.status_code == 200
        assert ids["R01-D02"] in landed.text and ids["R02-D01"] not in landed.text
        token = csrf(landed.text)
        base = f"{hub.url}/ui/change-requests"
        # Without the CSRF token: refused before anything is looked at.
        forged = session.post(f"{base}/{ids['R01-D02']}/approve", data={}, timeout=10)
        assert forged.status_code == 400
        outside = session.post(
            f"{base}/{ids['R02-D01']}/approve", data={"csrf_token": token}, timeout=10
        )
        assert "outside the areas you cover" in outside.text
        inside = session.post(
            f"{base}/{ids['R01-D02']}/approve", data={"csrf_token": token}, timeout=10
        )
        assert "Correction applied." in inside.text
        with hub.runtime.sessions() as db:
            states = {k: service.load(db, v).state for k, v in ids.items()}
        assert states == {"R01-D02": "applied", "R02-D01": "proposed"}
