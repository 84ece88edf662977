"""Corrections: at the door, a mother tells the field worker that the registry has her
family's address and her own name wrong. The field worker proposes both corrections with a
photo of a utility bill and of her ID card; she cannot approve them herself; her supervisor
approves the address and a registry officer the name, and the officer adds the family's new
phone number directly, with the call as evidence. The program that serves the family hears
each change (`household.updated` from the source `correction`). A month later the field
worker's phone, prefilled with the old address, submits the household again: the form is
applied, but the corrected address stays (a reviewed correction outranks a form's value). The
household's history lists every correction and every step.

Real parts: the change-request API over HTTP; the registry's provenance and precedence; the
OpenRosa server and the sample form as a device fills it; the intake core and the ingest
worker; the outbox relay, dispatch and delivery workers; a program subscribed by webhook to
the sandbox program MIS, with the family's consent.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
import requests

from hub.auth.tokens import issue_token
from hub.intake.sample_forms import make_household_registration as sample
from registry_core.service import Source
from sandbox_mocks.field_team.answers import household_answers
from sandbox_mocks.field_team.openrosa import OpenRosaClient
from sandbox_mocks.field_team.xform import FormTemplate, instance_id_of
from standards.timeutil import utcnow
from tests.integration.notification_support import notification_workers
from tests.scenarios.conftest import LiveHub, field_account, wait_for
from tests.scenarios.quiet_support import quiet_families, wait_settled

PROGRAM = "bolsa"
PURPOSE = "cash_transfer"
NEW_ADDRESS = "Rua das Flores 14, fundos"
PHONE = "+55 11 91234-5678"


def _bearer(hub: LiveHub, subject: str, role: str, **scope: Any) -> dict[str, str]:
    token = issue_token(hub.settings, subject=subject, roles=[role], **scope)
    return {"Authorization": f"Bearer {token}"}


def _updates(hub: LiveHub, household_id: str) -> list[dict[str, Any]]:
    """``household.updated`` deliveries to the program about the family, in arrival order."""
    response = requests.get(
        f"{hub.mock('programs')}/notifications", params={"channel": "webhook"}, timeout=5
    )
    response.raise_for_status()
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return [
        n["json"]
        for n in items
        if n.get("label") == PROGRAM
        and (n.get("json") or {}).get("type") == "org.socialregistry.household.updated"
        and n["json"]["data"].get("household_id") == household_id
    ]


def _post(hub: LiveHub, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """POST; again when a partner feed wrote the household at the same moment (the
    registry's 409 "read it again": nothing was written, the request is as it was)."""
    for _ in range(5):
        answer = requests.post(f"{hub.url}{path}", json=body, headers=headers, timeout=10)
        if answer.status_code != 409 or "same time" not in answer.json()["detail"]:
            return answer
        time.sleep(0.5)
    return answer


def _submit_revisit(
    hub: LiveHub,
    device: OpenRosaClient,
    template: FormTemplate,
    family: Any,
    household_id: str,
    old_address: str,
    admin: dict[str, str],
) -> None:
    """The phone's household form, based on the household's current version and holding
    ``old_address``, sent until applied. A partner feed may write the household between
    reading its version and applying the form (the intake's answer is then a conflict, as it
    should be): the phone then reads the version again and sends a new form, at most three
    times, so only a conflict that repeats fails the story."""
    conflicts: list[str] = []
    for _ in range(3):
        current = hub.registry.get_household(household_id)
        answers = household_answers(
            family,
            as_of=utcnow().date(),
            rng=random.Random(9),
            household_id=household_id,
            base_version=current["version"],
        )
        answers["members"] = []
        answers["address"] = old_address  # the old one, as the phone remembers it
        form = template.fill(answers)
        assert device.submit(form).status == 201

        def decided(form: str = form) -> dict[str, Any] | None:
            row = requests.get(
                f"{hub.url}/api/v1/intake/submissions/{instance_id_of(form)}",
                headers=admin,
                timeout=10,
            ).json()
            assert row.get("status") in (None, "received", "applied", "conflict"), row
            return row if row.get("status") in ("applied", "conflict") else None

        row = wait_for(decided, 60, "the revisit decided")
        if row["status"] == "applied":
            return
        conflicts.append(str(row.get("reason")))
    raise AssertionError(f"the revisit met a conflict three times: {conflicts}")


def _from_corrections(hub: LiveHub, household_id: str) -> list[list[str]]:
    return [
        e["data"]["changed_fields"]
        for e in _updates(hub, household_id)
        if e["data"]["source"]["system"] == "correction"
    ]


@pytest.mark.slow
@pytest.mark.sandbox(noise_rate=0.0)
def test_a_family_corrects_its_address_and_name_and_a_later_form_does_not_undo_it(
    live_hub: LiveHub,
) -> None:
    hub = live_hub
    wait_settled(hub)
    family, household = quiet_families(hub)[0]
    hid = household["id"]
    area = household["admin_area_code"].split("-")[0]
    head = next(m for m in household["members"] if m["relationship"] == "head")
    hub.registry.grant_consent(
        PROGRAM, PURPOSE, "paper", Source("registry_staff", "cras-form-9"), household_id=hid
    )
    worker = _bearer(hub, "enum-br-4", "field_worker", admin_areas=[area])
    supervisor = _bearer(hub, "sup-br-1", "supervisor", admin_areas=[area])
    officer = _bearer(hub, "officer-br-2", "registry_staff")

    with notification_workers(hub.settings, hub.runtime, relay=False):
        mis = hub.sandbox.connectors()["programs"]
        subscribed = requests.post(
            f"{hub.url}/api/v1/subscriptions",
            json={
                "code": "bolsa-updates",
                "event_types": ["household.updated"],
                "filters": {"admin_areas": [area], "enrolled_only": True},
                "channel": "webhook",
                "target": f"{mis['webhook_url']}/{PROGRAM}",
                "secret": mis["webhook_secret"],
                "purpose": PURPOSE,
            },
            headers=_bearer(hub, "bolsa-mis", "program", program=PROGRAM),
            timeout=10,
        )
        assert subscribed.status_code == 201, subscribed.text
        time.sleep(0.5)  # the delivery workers pick the new subscription up

        # 1. At the door: two proposals, with the evidence the field worker photographed.
        common = {
            "household_id": hid,
            "on_behalf_of": "beneficiary",
            "channel": "field_visit",
        }
        address = requests.post(
            f"{hub.url}/api/v1/change-requests",
            json={
                **common,
                "target": "household.address",
                "old_value": household["address"],
                "proposed_value": NEW_ADDRESS,
                "reason": "The family moved to the back house of the same plot",
                "evidence_reference": "photo:utility-bill-2026-11",
            },
            headers=worker,
            timeout=10,
        )
        assert address.status_code == 201, address.text
        spelled = head["given_name"] + "h"
        name = requests.post(
            f"{hub.url}/api/v1/change-requests",
            json={
                **common,
                "person_id": head["id"],
                "target": "person.given_name",
                "old_value": head["given_name"],
                "proposed_value": spelled,
                "reason": "Her ID card spells her name with an h",
                "evidence_reference": "photo:id-card",
            },
            headers=worker,
            timeout=10,
        )
        assert name.status_code == 201, name.text
        address_id, name_id = address.json()["id"], name.json()["id"]
        own = requests.post(
            f"{hub.url}/api/v1/change-requests/{address_id}/approve", headers=worker, timeout=10
        )
        assert own.status_code == 403  # a field worker proposes; someone else decides

        # 2. The supervisor approves the address, the officer the name: both applied.
        for request_id, who in ((address_id, supervisor), (name_id, officer)):
            decided = _post(
                hub,
                f"/api/v1/change-requests/{request_id}/approve",
                {"reason": "evidence checked"},
                who,
            )
            assert decided.status_code == 200, decided.text
            assert decided.json()["state"] == "applied"
        # The officer adds the new phone number directly: a small correction, with evidence.
        phone = _post(
            hub,
            "/api/v1/change-requests",
            {
                "household_id": hid,
                "target": "attribute.other.phone_number",
                "old_value": None,
                "proposed_value": PHONE,
                "reason": "The mother called the office with the family's new number",
                "evidence_reference": "call:2026-12-05/0931",
                "on_behalf_of": "beneficiary",
                "channel": "phone",
                "apply_directly": True,
            },
            officer,
        )
        assert phone.status_code == 201 and phone.json()["state"] == "applied", phone.text

        record = hub.registry.get_household(hid)
        assert record["address"] == NEW_ADDRESS
        assert next(m for m in record["members"] if m["id"] == head["id"])["given_name"] == spelled
        assert {a["name"]: a["value"] for a in record["attributes"]}["phone_number"] == PHONE
        expected = [["address"], ["person.given_name"], ["attributes.other.phone_number"]]
        changes = wait_for(
            lambda: (got := _from_corrections(hub, hid)) and len(got) >= 3 and got,
            30,
            "three corrections delivered to the program",
        )
        assert changes == expected
        delivered = [e for e in _updates(hub, hid) if e["data"]["source"]["system"] == "correction"]
        assert all(e["srpersonal"] is True for e in delivered)
        assert {e["data"]["source"]["record_id"] for e in delivered} == {
            f"change-request:{i}" for i in (address_id, name_id, phone.json()["id"])
        }

        # 3. A month later the phone still holds the old address and submits the household.
        password = field_account(hub, "enum-br-4", "field_worker", [area])
        device = OpenRosaClient(f"{hub.url}/openrosa", "enum-br-4", password)
        listed = {f.form_id: f for f in device.form_list()}[sample.FORM_ID]
        template = FormTemplate.from_xform(device.download(listed))
        admin = hub.token("admin")
        _submit_revisit(hub, device, template, family, hid, household["address"], admin)
        time.sleep(1.0)  # an address change, if there were one, would be delivered by now
        assert hub.registry.get_household(hid)["address"] == NEW_ADDRESS
        provenance = [
            a for a in hub.registry.provenance("household", hid) if a["field"] == "address"
        ]
        by_source = {a["source_system"]: a["current"] for a in provenance}
        assert by_source["intake"] is False and by_source["correction"] is True
        assert all("address" not in e["data"]["changed_fields"] for e in _updates(hub, hid)[3:])

    # 4. The household's history: every correction, who did what, and why.
    history = requests.get(
        f"{hub.url}/api/v1/households/{hid}/change-requests", headers=supervisor, timeout=10
    ).json()
    steps = {
        i["target"]: [(s["action"], s["actor"]) for s in i["history"]] for i in history["items"]
    }
    assert steps == {
        "household.address": [("proposed", "enum-br-4"), ("approved", "sup-br-1")],
        "person.given_name": [("proposed", "enum-br-4"), ("approved", "officer-br-2")],
        "attribute.other.phone_number": [("proposed", "officer-br-2"), ("applied", "officer-br-2")],
    }
