"""Brazil's Cadastro Único, recertification: the municipality's families, registered by a
field survey on 1 January 2025, come due two years later and the program that serves two of
them is reminded; a mobile team visits one and submits it again with the income it earns now
(recertified: a new due date, the new income on record from the intake); the other is never
visited and, after its due date, is flagged overdue — the program hears it and still reads the
household. Nothing is deleted.

Time: the registry holds the survey's history as of its day (the sandbox seed registers it
with that time), and the recertification round runs as the retention runner runs it
(``hub.assembly.recertification_job``) with its clock injected: 30 days before the survey's
due date, then the day after it. The visit happens on the real day, which is what a field
submission's provenance says.

Real parts: the OpenRosa server (Digest) and the sample form downloaded and filled as a device
does; the intake core and the ingest worker; the outbox relay, dispatch and delivery workers;
a program subscribed by webhook to the sandbox program MIS for the families it has enrolled
(their consent), so it hears about them and no one else.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from hub.assembly import recertification_job
from hub.auth.tokens import issue_token
from hub.intake.sample_forms import make_household_registration as sample
from hub.workers.retention import run_retention
from registry_core.models import Household, SocioEconomicAttribute
from registry_core.service import Source
from sandbox_mocks.field_team.answers import household_answers
from sandbox_mocks.field_team.openrosa import OpenRosaClient
from sandbox_mocks.field_team.xform import FormTemplate, instance_id_of
from standards.timeutil import utcnow
from tests.integration.notification_support import notification_workers
from tests.scenarios.conftest import LiveHub, field_account, wait_for
from tests.scenarios.quiet_support import again_on_conflict, quiet_families, wait_settled

PROGRAM = "bolsa"
PURPOSE = "cash_transfer"
SUBSCRIPTION = "bolsa-recert"
DUE, OVERDUE = "household.recertification_due", "household.recertification_overdue"
SURVEY_INCOME = 300.0
NEW_INCOME = 1234.5


def _notifications(hub: LiveHub) -> list[dict[str, Any]]:
    response = requests.get(
        f"{hub.mock('programs')}/notifications", params={"channel": "webhook"}, timeout=5
    )
    response.raise_for_status()
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return [n for n in items if n.get("label") == PROGRAM]


def _received(hub: LiveHub, event_type: str) -> list[dict[str, Any]]:
    """The program's webhook deliveries of ``event_type``, in arrival order."""
    wanted = f"org.socialregistry.{event_type}"
    return [n["json"] for n in _notifications(hub) if (n.get("json") or {}).get("type") == wanted]


def _ids(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["data"]["household_id"] for e in events)


def _households(hub: LiveHub) -> set[str]:
    with hub.runtime.sessions() as session:
        return {str(i) for i in session.scalars(select(Household.id))}


@pytest.mark.slow
@pytest.mark.sandbox(noise_rate=0.0)
def test_due_families_are_reminded_one_recertified_by_a_visit_the_other_flagged(
    live_hub: LiveHub,
) -> None:
    hub = live_hub
    admin = hub.token("admin")
    program = _program_header(hub)
    wait_settled(hub)
    quiet = quiet_families(hub)
    area = quiet[0][1]["admin_area_code"].split("-")[0]
    (visited_family, visited), (_absent_family, absent) = [
        q for q in quiet if q[1]["admin_area_code"].startswith(area)
    ][:2]
    old_due = date.fromisoformat(visited["recertification"]["due_on"])
    assert absent["recertification"]["due_on"] == old_due.isoformat()
    assert visited["recertification"]["certified_by"] == "field_survey"
    # What the survey recorded of the family's income, as of the survey day.
    survey = Source("field_survey", "sandbox-seed", utcnow().replace(year=2025, month=1, day=1))
    visited = again_on_conflict(
        lambda: (
            hub.registry.record_attributes(
                visited["id"],
                [{"domain": "income", "name": "monthly_income", "value": SURVEY_INCOME}],
                survey,
            ).record
        )
    )
    for family in (visited, absent):  # the two families enrolled in the program
        hub.registry.grant_consent(
            PROGRAM,
            PURPOSE,
            "paper",
            Source("registry_staff", "cras-form-7"),
            household_id=family["id"],
        )
    households_before = _households(hub)
    both = sorted([visited["id"], absent["id"]])

    with notification_workers(hub.settings, hub.runtime, relay=False):
        mis = hub.sandbox.connectors()["programs"]
        subscribed = requests.post(
            f"{hub.url}/api/v1/subscriptions",
            json={
                "code": SUBSCRIPTION,
                "event_types": ["household.recertification_due", OVERDUE],
                "filters": {"admin_areas": [area], "enrolled_only": True},
                "channel": "webhook",
                "target": f"{mis['webhook_url']}/{PROGRAM}",
                "secret": mis["webhook_secret"],
                "purpose": PURPOSE,
            },
            headers=program,
            timeout=10,
        )
        assert subscribed.status_code == 201, subscribed.text
        time.sleep(0.5)  # the delivery workers pick the new subscription up

        # 1. The round 30 days before the survey's due date (the retention runner's job, its
        # clock injected), inside the 60-day reminder window: every surveyed family is due.
        day = {"today": old_due - timedelta(days=30)}
        job = recertification_job(hub.settings, today=lambda: day["today"])
        reminded = run_retention(hub.runtime.sessions, [job])["recertification"]
        due = requests.get(
            f"{hub.url}/api/v1/recertification",
            params={"state": "due", "area": area, "limit": 200},
            headers=admin,
            timeout=10,
        ).json()
        assert {visited["id"], absent["id"]} <= {i["household_id"] for i in due["items"]}
        assert reminded >= due["total"] > 2
        reminders = wait_for(
            lambda: (r := _received(hub, DUE)) and len(r) >= 2 and r, 30, "two reminders"
        )
        assert _ids(reminders) == both
        for event in reminders:
            assert event["data"]["due_on"] == old_due.isoformat()
            assert event["srpersonal"] is True  # the family's consent covers the program
            assert event["data"]["household"]["registry_number"]

        # 2. The mobile team visits the first family: the same household, a new income.
        password = field_account(hub, "cras-movel-2", "field_worker", [area])
        device = OpenRosaClient(f"{hub.url}/openrosa", "cras-movel-2", password)
        listed = {f.form_id: f for f in device.form_list()}[sample.FORM_ID]
        template = FormTemplate.from_xform(device.download(listed))
        # The team takes the household as the registry holds it now (partner feeds may have
        # touched it since the survey) and asks again.
        visited = requests.get(
            f"{hub.url}/api/v1/households/{visited['id']}", headers=admin, timeout=10
        ).json()
        answers = household_answers(
            visited_family,
            as_of=utcnow().date(),
            rng=random.Random(5),
            household_id=visited["id"],
            base_version=visited["version"],
        )
        answers["members"] = []  # the members are known; the visit updates the household
        answers["address"] = visited["address"]
        answers["income"]["monthly_income"] = NEW_INCOME
        form = template.fill(answers)
        assert device.submit(form).status == 201
        instance_id = instance_id_of(form)

        def applied() -> dict[str, Any] | None:
            row = requests.get(
                f"{hub.url}/api/v1/intake/submissions/{instance_id}", headers=admin, timeout=10
            ).json()
            assert row.get("status") in (None, "received", "applied"), row
            return row if row.get("status") == "applied" else None

        wait_for(applied, 60, "the visit's submission applied")
        now = requests.get(
            f"{hub.url}/api/v1/households/{visited['id']}", headers=admin, timeout=10
        ).json()
        status = now["recertification"]
        assert status["state"] == "current" and status["certified_by"] == "intake"
        new_due = date.fromisoformat(status["due_on"])
        assert new_due == utcnow().date() + timedelta(days=730) and new_due > old_due
        with hub.runtime.sessions() as session:
            incomes = {
                a.source_system: (float(a.value), a.source_record_id)
                for a in session.scalars(
                    select(SocioEconomicAttribute).where(
                        SocioEconomicAttribute.household_id == uuid.UUID(now["id"]),
                        SocioEconomicAttribute.name == "monthly_income",
                    )
                )
            }
        # The new income, with the submission as its provenance; the survey's stays beside it.
        assert incomes["intake"] == (NEW_INCOME, f"{sample.FORM_ID}@{listed.version}/{instance_id}")
        assert incomes["field_survey"][0] == SURVEY_INCOME

        # 3. The day after the survey's due date: the absent family is flagged (with every
        # other family nobody visited), the visited one is not.
        day["today"] = old_due + timedelta(days=1)
        assert run_retention(hub.runtime.sessions, [job])["recertification"] >= 1
        overdue = wait_for(lambda: _received(hub, OVERDUE), 30, "the overdue notice")
        assert _ids(overdue) == [absent["id"]]
        assert overdue[0]["data"]["due_on"] == old_due.isoformat()
        assert overdue[0]["data"]["household"]["registry_number"] == absent["registry_number"]
        listed_overdue = requests.get(
            f"{hub.url}/api/v1/recertification",
            params={"state": "overdue", "area": area, "limit": 200},
            headers=admin,
            timeout=10,
        ).json()
        flagged = {i["household_id"] for i in listed_overdue["items"]}
        assert absent["id"] in flagged and visited["id"] not in flagged

        # The program reads the flag on the household its consent covers, over its replay.
        replayed = _replay(hub, program)
        assert [e["data"]["household_id"] for e in replayed if e["type"].endswith(OVERDUE)] == [
            absent["id"]
        ]
        assert _ids([e for e in replayed if e["type"].endswith(DUE)]) == both
        time.sleep(0.5)  # a duplicate or a stray reminder would show up now
        assert _ids(_received(hub, DUE)) == both  # once per cycle, each
        assert _ids(_received(hub, OVERDUE)) == [absent["id"]]

    late = requests.get(
        f"{hub.url}/api/v1/households/{absent['id']}", headers=admin, timeout=10
    ).json()
    assert late["recertification"]["state"] == "overdue"
    assert late["status"] == "active"  # flagged, not deactivated
    assert len(late["members"]) == len(absent["members"])
    # Nothing deleted: every household there before the story is there after it.
    assert households_before <= _households(hub)


def _replay(hub: LiveHub, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every event the program's subscriptions match, paged through ``GET /api/v1/events``."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = requests.get(
            f"{hub.url}/api/v1/events",
            params={"after": after, "limit": 200},
            headers=headers,
            timeout=30,
        )
        assert page.status_code == 200, page.text
        body = page.json()
        found.extend(body["events"])
        if body["next_after"] == after:
            return found
        after = body["next_after"]


def _program_header(hub: LiveHub) -> dict[str, str]:
    """A bearer token of the program's system (the program code is in the token)."""
    token = issue_token(hub.settings, subject="bolsa-mis", roles=["program"], program=PROGRAM)
    return {"Authorization": f"Bearer {token}"}
