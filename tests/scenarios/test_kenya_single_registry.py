"""Kenya Single Registry: three programs' beneficiary lists are consolidated into one registry.
The lists overlap — the same grandmother is a CT-OVC caregiver and an OPCT beneficiary under
a misspelt surname, the same man is in OPCT and PWSD-CT spelt two ways — and one pair only
looks alike. The duplicate scan proposes the pairs; staff merge two and keep one apart, then
undo one merge when a pay-point officer reports twins; the programs receive the events by
their webhook subscriptions, with personal data only where their consent covers the person.

How the lists arrive: the programs connector (``connectors/programs``) only links enrolments to
people the registry already holds — it never creates anyone, by design. A program's list of
people not yet registered arrives the way the Single Registry took in the legacy MIS lists:
the registry's import officer registers each beneficiary household through
``POST /api/v1/households``, one import credential per program, with the program's consent
(evidence: the program's beneficiary number) recorded in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from sandbox_mocks.population.ids import national_id_check_digit
from tests.integration.notification_support import notification_workers
from tests.scenarios.conftest import LiveHub, wait_for

PURPOSE = "cash_transfer"
PROGRAMS = ("CT-OVC", "OPCT", "PWSD-CT")


def _nid(body: str) -> str:
    return body + national_id_check_digit(body)


def _member(given: str, family: str, birth: str, sex: str, relationship: str, nid: str | None):
    member: dict[str, Any] = {
        "given_name": given,
        "family_name": family,
        "birth_date": birth,
        "sex": sex,
        "relationship": relationship,
    }
    if nid:
        member["identifiers"] = [{"system": "national_id", "value": nid}]
    return member


# Each program's beneficiary list: (key, beneficiary number, area, address, members); the
# beneficiary is the first member. Keys name the people the story follows.
LISTS: dict[str, list[tuple[str, str, str, str, list[dict[str, Any]]]]] = {
    "CT-OVC": [
        (
            "grace_ctovc",
            "OVC-10231",
            "KE-042-01",
            "Kanyakwar village",
            [
                _member("Grace", "Ochieng", "1950-06-11", "female", "head", _nid("907310021")),
                _member("Brian", "Ochieng", "2012-02-02", "male", "grandchild", None),
            ],
        ),
        (
            "akinyi_ctovc",
            "OVC-10877",
            "KE-042-03",
            "Nyalenda B",
            [_member("Akinyi", "Odhiambo", "1975-03-02", "female", "head", None)],
        ),
    ],
    "OPCT": [
        (
            "grace_opct",
            "OP-55102",
            "KE-042-01",
            "Kanyakwar",
            [_member("Grace", "Ocheing", "1950-06-11", "female", "head", None)],
        ),
        (
            "mohammed_opct",
            "OP-55340",
            "KE-007-02",
            "Wajir township",
            [_member("Mohammed", "Abdulahi", "1952-09-30", "male", "head", None)],
        ),
    ],
    "PWSD-CT": [
        (
            "mohamed_pwsd",
            "PW-00417",
            "KE-007-02",
            "Wajir township",
            [_member("Mohamed", "Abdullahi", "1952-09-30", "male", "head", _nid("907310039"))],
        ),
        (
            "akinyi_pwsd",
            "PW-00950",
            "KE-042-04",
            "Manyatta",
            [_member("Akinyi", "Odhiambo", "1975-02-03", "female", "head", None)],
        ),
    ],
}


@pytest.fixture
def esr(live_hub: LiveHub) -> Iterator[LiveHub]:
    """The live hub with its dispatch and delivery workers (the fixture runs the relay)."""
    with notification_workers(live_hub.settings, live_hub.runtime, relay=False):
        yield live_hub


def _program_token(hub: LiveHub, program: str) -> dict[str, str]:
    from hub.auth.tokens import issue_token

    token = issue_token(hub.settings, subject=program.lower(), roles=["program"], program=program)
    return {"Authorization": f"Bearer {token}"}


def _import_lists(hub: LiveHub) -> dict[str, str]:
    """Every program's list registered through the households API; key -> person id."""
    people: dict[str, str] = {}
    for program, rows in LISTS.items():
        officer = hub.token("registry_staff")
        for key, number, area, address, members in rows:
            response = requests.post(
                f"{hub.url}/api/v1/households",
                json={
                    "admin_area_code": area,
                    "address": address,
                    "members": members,
                    "consents": [
                        {
                            "program": program,
                            "purpose": PURPOSE,
                            "channel": "electronic",
                            "evidence_reference": f"{program}:{number}",
                            "member": 0,
                        }
                    ],
                },
                headers=officer,
                timeout=10,
            )
            assert response.status_code == 201, response.text
            people[key] = response.json()["members"][0]["id"]
    return people


def _subscribe(hub: LiveHub) -> None:
    mis = hub.sandbox.connectors()["programs"]
    for program in PROGRAMS:
        response = requests.post(
            f"{hub.url}/api/v1/subscriptions",
            json={
                "code": f"{program.lower()}-merges",
                "event_types": ["person.merged", "person.unmerged"],
                "channel": "webhook",
                "target": f"{mis['webhook_url']}/{program.lower()}",
                "secret": mis["webhook_secret"],
                "purpose": PURPOSE,
            },
            headers=_program_token(hub, program),
            timeout=10,
        )
        assert response.status_code == 201, response.text


def _received(hub: LiveHub, program: str, kind: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{hub.mock('programs')}/_admin/notifications", params={"channel": "webhook"}, timeout=5
    )
    response.raise_for_status()
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return [
        n["json"]
        for n in items
        if n.get("label") == program.lower()
        and (n.get("json") or {}).get("type") == f"org.socialregistry.{kind}"
    ]


def _scan(hub: LiveHub) -> dict[str, Any]:
    staff = hub.token("registry_staff")
    started = requests.post(f"{hub.url}/api/v1/duplicates/scans", headers=staff, timeout=10)
    assert started.status_code == 202, started.text

    def finished() -> dict[str, Any] | None:
        where = urljoin(hub.url, started.headers["Location"])
        scan = requests.get(where, headers=staff, timeout=10).json()
        return scan if scan["state"] in ("done", "failed") else None

    scan = wait_for(finished, timeout=120, what="the duplicate scan")
    assert scan["state"] == "done", scan
    return scan


def _proposed(hub: LiveHub) -> dict[frozenset[str], str]:
    """Open duplicate pairs: {person ids} -> review id."""
    staff = hub.token("registry_staff")
    found: dict[frozenset[str], str] = {}
    offset = 0
    while True:
        page = requests.get(
            f"{hub.url}/api/v1/match-reviews",
            params={"kind": "duplicate", "limit": 200, "offset": offset},
            headers=staff,
            timeout=10,
        ).json()
        for review in page["items"]:
            found[frozenset(c["person_id"] for c in review["candidates"])] = review["id"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return found


def _decide(hub: LiveHub, review: str, action: str, **body: Any) -> dict[str, Any]:
    response = requests.post(
        f"{hub.url}/api/v1/match-reviews/{review}/{action}",
        json=body,
        headers=hub.token("registry_staff"),
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


@pytest.mark.slow
def test_three_lists_deduplicated_with_reversible_merges_and_program_events(esr: LiveHub):
    hub = esr
    _subscribe(hub)
    time.sleep(0.5)  # the delivery workers pick the new subscriptions up
    people = _import_lists(hub)

    scan = _scan(hub)
    proposed = _proposed(hub)
    grace = frozenset({people["grace_ctovc"], people["grace_opct"]})
    mohamed = frozenset({people["mohammed_opct"], people["mohamed_pwsd"]})
    akinyi = frozenset({people["akinyi_ctovc"], people["akinyi_pwsd"]})
    assert {grace, mohamed, akinyi} <= set(proposed)
    assert scan["candidates_found"] == len(proposed)  # each pair queued once
    assert scan["progress"]["keys_done"] == scan["progress"]["keys_total"] > 0

    # The officer compares Grace's two records: the typo is the OPCT list's.
    staff = hub.token("registry_staff")
    detail = requests.get(
        f"{hub.url}/api/v1/match-reviews/{proposed[grace]}", headers=staff, timeout=10
    ).json()
    spelt = {
        (a["value"], a["source_system"])
        for side in detail["people"]
        for a in side["provenance"]
        if a["field"] == "family_name"
    }
    assert {v for v, _ in spelt} == {"Ochieng", "Ocheing"}

    grace_merge = _decide(
        hub,
        proposed[grace],
        "merge",
        survivor_id=people["grace_ctovc"],
        reason="same grandmother: CT-OVC caregiver and OPCT beneficiary, ID card seen",
    )
    mohamed_merge = _decide(
        hub,
        proposed[mohamed],
        "merge",
        survivor_id=people["mohamed_pwsd"],
        reason="same man: OPCT and PWSD-CT, names spelt two ways",
    )
    kept = _decide(
        hub,
        proposed[akinyi],
        "keep-apart",
        reason="two women: different villages and mothers' names",
    )
    assert kept["status"] == "kept_apart"

    # Reads of the merged-away record point to the survivor.
    moved = requests.get(
        f"{hub.url}/api/v1/persons/{people['grace_opct']}",
        headers=staff,
        timeout=10,
        allow_redirects=False,
    )
    assert moved.status_code == 307 and moved.json()["merged_into"] == people["grace_ctovc"]
    followed = requests.get(
        urljoin(hub.url, moved.headers["Location"]), headers=staff, timeout=10
    ).json()
    assert followed["id"] == people["grace_ctovc"]
    assert len([m for m in followed["memberships"] if m.get("end_reason")]) == 1

    # Both programs that knew Grace learn of the merge with her record; PWSD-CT does not.
    def merged_about(program: str, person: str) -> list[dict[str, Any]]:
        return [
            e
            for e in _received(hub, program, "person.merged")
            if e["data"].get("person_id") == person
        ]

    for program in ("CT-OVC", "OPCT"):
        [event] = wait_for(
            lambda p=program: merged_about(p, people["grace_ctovc"]),
            timeout=30,
            what=f"{program} told of Grace's merge",
        )
        assert event["data"]["merged_person_id"] == people["grace_opct"]
        assert event["srpersonal"] is True and event["data"]["person"]["family_name"] == "Ochieng"
    opct_mohamed = wait_for(
        lambda: merged_about("OPCT", people["mohamed_pwsd"]), 30, "OPCT told of Mohamed's merge"
    )
    assert opct_mohamed[0]["data"]["merge_id"] == mohamed_merge["id"]
    # PWSD-CT holds no consent for Grace: it hears of her merge without anything personal.
    pwsd = wait_for(
        lambda: [e for e in _received(hub, "PWSD-CT", "person.merged") if not e["srpersonal"]],
        30,
        "PWSD-CT's impersonal merge event",
    )
    assert len(pwsd) == 1 and "person_id" not in pwsd[0]["data"]
    assert set(pwsd[0]["data"]) == {"admin_area_code", "subject_ref", "personal_data"}
    assert grace_merge["moved"]["consents"] == 1

    # At the pay point: the OPCT Mohammed is the PWSD-CT Mohamed's twin brother. Undo.
    undone = requests.post(
        f"{hub.url}/api/v1/merges/{mohamed_merge['id']}/unmerge",
        json={"reason": "twin brothers, confirmed at the Wajir pay point"},
        headers=staff,
        timeout=10,
    )
    assert undone.status_code == 200 and undone.json()["state"] == "unmerged", undone.text
    back = requests.get(
        f"{hub.url}/api/v1/persons/{people['mohammed_opct']}", headers=staff, timeout=10
    ).json()
    assert back["given_name"] == "Mohammed" and back["family_name"] == "Abdulahi"
    assert back["memberships"] and "end_date" not in back["memberships"][0]

    # Each brother's program hears of it about its own beneficiary.
    for program, person in (("OPCT", "mohammed_opct"), ("PWSD-CT", "mohamed_pwsd")):
        [event] = wait_for(
            lambda p=program, who=person: [
                e
                for e in _received(hub, p, "person.unmerged")
                if e["data"].get("person_id") == people[who]
            ],
            timeout=30,
            what=f"{program} told of the undone merge",
        )
        assert event["srpersonal"] is True
        assert event["data"]["restored_person_id"] == people["mohammed_opct"]
        assert event["data"]["survivor_person_id"] == people["mohamed_pwsd"]
    ct_ovc = _received(hub, "CT-OVC", "person.unmerged")
    assert all(e["srpersonal"] is False for e in ct_ovc)  # neither brother is its beneficiary

    # A second scan proposes none of the decided pairs again.
    again = _scan(hub)
    assert again["candidates_found"] == 0
    assert not {grace, mohamed, akinyi} & set(_proposed(hub))
