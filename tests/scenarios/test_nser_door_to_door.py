"""Pakistan's NSER, door to door: an enumerator registers 50 households with a handheld while
out of coverage, syncs them, syncs again (the phone never saw the answers), the registration's
national ID cross-check flags the two heads whose dates of birth were mistyped, and the
district supervisor returns one of them to the enumerator with a reason.

Real parts: the hub's OpenRosa server (Digest, as ODK Collect signs), the sample household
form downloaded and filled as a device does, the intake core and the ingest worker, the
crosscheck worker, the national ID SOAP sandbox (zeep), the review API.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
import requests

from hub.auth.tokens import issue_token
from sandbox_mocks.field_team.answers import household_answers
from sandbox_mocks.field_team.openrosa import OpenRosaClient
from sandbox_mocks.field_team.xform import FormTemplate, instance_id_of
from sandbox_mocks.population import iter_vital_events
from tests.scenarios.conftest import LiveHub, field_account, wait_for

HOUSEHOLDS = 50
CENSUS_DAY = date(2025, 1, 1)
RETURN_REASON = "The head's date of birth does not match the national ID: see the ID card again"


def _captured_offline(
    template: FormTemplate, households: list[Any]
) -> tuple[list[bytes], list[dict[str, Any]]]:
    """50 filled forms; the first two heads holding a national ID get a mistyped birth year."""
    rng = random.Random(2025)
    forms, mistyped = [], []
    for household in households:
        answers = household_answers(household, as_of=CENSUS_DAY, rng=rng)
        head = answers["members"][0]
        if len(mistyped) < 2 and head["national_id"]:
            typed = date.fromisoformat(head["birth_date"])
            head["birth_date"] = typed.replace(year=typed.year - 3).isoformat()
            mistyped.append(head)
        forms.append(template.fill(answers))
    assert len(mistyped) == 2, "the population has heads with national IDs"
    return forms, mistyped


@pytest.mark.slow
@pytest.mark.sandbox(noise_rate=0.0)
@pytest.mark.unseeded(count=HOUSEHOLDS + 20)
def test_an_enumerator_syncs_fifty_households_twice_and_the_supervisor_returns_one(
    live_hub: LiveHub,
) -> None:
    hub = live_hub
    areas = sorted({h.locality_code.split("-")[0] for h in hub.unseeded})  # regions
    password = field_account(hub, "enumerator-pk-17", "field_worker", areas)
    admin = hub.token("admin")

    # On the phone: the form list and the form, then 50 households captured without network.
    device = OpenRosaClient(f"{hub.url}/openrosa", "enumerator-pk-17", password)
    listed = [f for f in device.form_list() if f.form_id == "household_registration"]
    template = FormTemplate.from_xform(device.download(listed[0]))
    # Households whose members all live: the ID authority has deactivated the IDs of people
    # who died since the census, and would rightly flag them too.
    died = {
        e.person.person_key
        for e in iter_vital_events(42, hub.sandbox.config.people)
        if e.kind == "death"
    }
    living = [
        h
        for h in hub.unseeded
        if all(p.death_date is None and p.person_key not in died for p in h.members)
    ]
    forms, mistyped = _captured_offline(template, living[:HOUSEHOLDS])

    # Back in coverage: the sync. Then the same 50 again: the phone lost the answers.
    first = [device.submit(form) for form in forms]
    second = [device.submit(form) for form in forms]
    assert [r.status for r in first] == [201] * HOUSEHOLDS, [r.message for r in first][:3]
    assert [r.status for r in second] == [202] * HOUSEHOLDS

    # All 50 registered once: one applied submission and one household each.
    def applied() -> list[dict[str, Any]] | None:
        page = requests.get(
            f"{hub.url}/api/v1/intake/submissions?status=applied&limit=200",
            headers=admin,
            timeout=10,
        ).json()["submissions"]
        return page if len(page) >= HOUSEHOLDS else None

    rows = wait_for(applied, 120, "50 applied submissions")
    assert sorted(r["instance_id"] for r in rows) == sorted(instance_id_of(f) for f in forms)
    household_ids = {r["household_id"] for r in rows}
    assert len(household_ids) == HOUSEHOLDS

    # The cross-check, queued by the registrations themselves (policy "first", the form's
    # consent), settles every member holding a national ID.
    def settled() -> dict[str, dict[str, Any]] | None:
        checks: dict[str, dict[str, Any]] = {}
        for household_id in household_ids:
            record = requests.get(
                f"{hub.url}/api/v1/households/{household_id}", headers=admin, timeout=10
            ).json()
            for member in record["members"]:
                check = member["identity_check"]
                if check["status"] == "pending" or (
                    check["status"] == "failed" and not check["reason"]
                ):
                    return None  # asked, or answered but the reason not yet recorded
                checks[member["id"]] = {**check, "member": member, "household": household_id}
        return checks

    checks = wait_for(settled, 180, "every cross-check answered")
    failed = [c for c in checks.values() if c["status"] == "failed"]
    verified = [c for c in checks.values() if c["status"] == "verified"]
    assert sorted((c["member"]["given_name"], c["member"]["family_name"]) for c in failed) == (
        sorted((m["given_name"], m["family_name"]) for m in mistyped)
    )
    assert all(c["reason"] for c in failed)  # the authority's answer, shown on the household
    assert len(verified) > HOUSEHOLDS  # heads and other adults with an ID card
    assert all(
        c["reason"] for c in checks.values() if c["status"] == "not_checked"
    )  # children without an ID say why

    # The district supervisor sees the 50 in the queue and returns one flagged household.
    supervisor = {
        "Authorization": "Bearer "
        + issue_token(
            hub.settings, subject="supervisor-pk-3", roles=["supervisor"], admin_areas=areas
        )
    }
    queue = requests.get(
        f"{hub.url}/api/v1/review/items?state=submitted&limit=200", headers=supervisor, timeout=10
    ).json()
    assert queue["total"] == HOUSEHOLDS
    flagged = failed[0]["household"]
    item = next(i for i in queue["items"] if i["household_id"] == flagged)
    decided = requests.post(
        f"{hub.url}/api/v1/review/items/{item['id']}/decision",
        json={"decision": "returned", "reasons": [RETURN_REASON], "version": item["version"]},
        headers=supervisor,
        timeout=10,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["state"] == "returned"

    # The enumerator reads why: only their own items, with the supervisor's reason.
    own = {
        "Authorization": "Bearer "
        + issue_token(
            hub.settings, subject="enumerator-pk-17", roles=["field_worker"], admin_areas=areas
        )
    }
    returned = requests.get(
        f"{hub.url}/api/v1/review/items?state=returned", headers=own, timeout=10
    ).json()["items"]
    assert [i["household_id"] for i in returned] == [flagged]
    detail = requests.get(
        f"{hub.url}/api/v1/review/items/{returned[0]['id']}", headers=own, timeout=10
    ).json()
    assert detail["history"][-1]["reasons"] == [RETURN_REASON]
    # Each household's visit is on record: who, and where the phone placed the dwelling.
    visits = requests.get(
        f"{hub.url}/api/v1/households/{flagged}/visits", headers=supervisor, timeout=10
    ).json()
    assert [v["visited_by"] for v in visits["items"]] == ["enumerator-pk-17"]
    assert visits["items"][0]["location"] is not None
