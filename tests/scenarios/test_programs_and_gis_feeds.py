"""The program MIS and GIS feeds land in the registry: enrolled beneficiaries get their program
beneficiary number, every registered household gets its locality's flood-risk and
poverty-rate layers from the GIS, and every area's outline reaches ``admin_areas`` (the policy
pages' maps)."""

from __future__ import annotations

import requests

from tests.scenarios.conftest import wait_for


def test_enrollments_and_area_layers_reach_registered_households(live_hub):
    hub = live_hub
    households, _ = hub.registry.list_households(limit=200)
    people = [m for h in households for m in h["members"]]

    def beneficiaries() -> list[dict]:
        found = []
        for person in people:
            current = hub.registry.get_person(person["id"])
            if any(i["system"] == "program_beneficiary_id" for i in current["identifiers"]):
                found.append(current)
        return found

    enrolled = wait_for(beneficiaries, timeout=60, what="an enrolment applied")
    mis = hub.mock("programs")
    known = set()
    for program in ("CCG", "OAP", "SFP"):
        page = requests.get(
            f"{mis}/programs/{program}/beneficiaries", params={"page_size": 500}, timeout=10
        ).json()
        for item in page.get("items") or page.get("beneficiaries") or []:
            number = item.get("beneficiaryNo") or item.get("beneficiary_no") or ""
            known.add(f"{program}{number}".upper().replace("-", ""))
    for person in enrolled:
        numbers = {
            i["value"] for i in person["identifiers"] if i["system"] == "program_beneficiary_id"
        }
        assert numbers <= known  # stored normalised: program code + the MIS's number

    # The same enrolments reach the coverage report (never below its small-cell threshold).
    report = requests.get(
        f"{hub.url}/api/v1/reports/coverage", headers=hub.token("policymaker"), timeout=30
    ).json()
    (grand,) = [row for row in report["rows"] if row["area"] == "*"]
    counts = [m["enrolled"] for m in grand["programs"].values()]
    assert set(report["programs"]) & {"CCG", "OAP", "SFP"}
    assert any(count is None or count > 0 for count in counts)  # enrolments counted
    k = report["suppression"]["min_cell"]
    assert all(count is None or count == 0 or count >= k for count in counts)

    gis = f"{hub.mock('gis')}/gis/v1"

    def layered() -> bool:
        for household in households[:20]:
            current = hub.registry.get_household(household["id"])
            names = {a["name"] for a in current["attributes"]}
            if not {"flood_risk", "poverty_rate"} <= names:
                return False
        return True

    wait_for(layered, timeout=60, what="GIS layers on every household")
    sample = hub.registry.get_household(households[0]["id"])
    area = requests.get(f"{gis}/areas/{sample['admin_area_code']}", timeout=10).json()
    values = {a["name"]: a["value"] for a in sample["attributes"]}
    flat = str(area)
    assert str(values["flood_risk"]) in flat and str(values["poverty_rate"]) in flat

    # The same refresh brought the regions' and districts' outlines through the ingest.
    served = [
        f
        for f in requests.get(f"{gis}/geojson", timeout=10).json()["features"]
        if f["properties"]["level"] <= 2
    ]
    wait_for(
        lambda: len(hub.registry.admin_areas()) == len(served),
        timeout=60,
        what="every GIS area outline in admin_areas",
    )
    stored = {a["code"]: a for a in hub.registry.admin_areas()}
    for feature in served:
        area = stored[feature["properties"]["code"]]
        assert area["geometry"] == feature["geometry"]
        assert area["level"] == feature["properties"]["level"]
