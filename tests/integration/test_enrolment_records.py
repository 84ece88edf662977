"""A program MIS's beneficiary record becomes an enrolment coverage reports can count: once,
updated when the MIS says the beneficiary exited (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from hub.pipeline.apply.common import IngestContext
from hub.pipeline.apply.facts import apply_enrollment
from registry_core.reports.tables import ProgramEnrolment
from registry_core.service import Source

NATIONAL_ID = "1234567897"


def enrolment(status: str, exited_on: str | None = None) -> dict:
    record = {
        "program_code": "CCT",
        "beneficiary_number": "B-0042",
        "status": status,
        "enrolled_on": "2026-02-01",
        "beneficiary": {
            "identifiers": [{"system": "national_id", "value": NATIONAL_ID}],
            "given_name": "Amina",
            "family_name": "Otieno",
        },
    }
    if exited_on:
        record["exited_on"] = exited_on
    return record


def rows(registry) -> list[ProgramEnrolment]:
    sessions = registry._ws.sessions
    with sessions() as session:
        return list(session.scalars(select(ProgramEnrolment)))


def test_an_enrolment_is_recorded_once_and_an_exit_updates_it(registry):
    created = registry.register_household(
        {
            "admin_area_code": "R01-D01",
            "members": [
                {
                    "given_name": "Amina",
                    "family_name": "Otieno",
                    "sex": "female",
                    "birth_date": "1985-04-02",
                    "relationship": "head",
                    "identifiers": [{"system": "national_id", "value": NATIONAL_ID}],
                }
            ],
        },
        Source("field_survey"),
    ).record
    ctx = IngestContext("m1", "s1", {}, source_system="programs")
    assert apply_enrollment(registry, enrolment("active"), ctx) == "applied"
    assert apply_enrollment(registry, enrolment("active"), ctx) == "already_applied"
    (row,) = rows(registry)
    assert (row.program_code, row.beneficiary_number, row.status) == ("CCT", "B-0042", "active")
    assert row.enrolled_on == date(2026, 2, 1)
    assert str(row.person_id) == created["members"][0]["id"]
    exited = enrolment("exited", exited_on="2026-05-31")
    assert apply_enrollment(registry, exited, ctx) == "applied"
    (row,) = rows(registry)
    assert (row.status, row.exited_on) == ("exited", date(2026, 5, 31))


def test_a_merge_takes_the_enrolment_to_the_survivor_and_an_unmerge_brings_it_back(registry):
    from registry_core.services.merges import Actor

    def register(area: str, given: str) -> str:
        record = registry.register_household(
            {
                "admin_area_code": area,
                "members": [
                    {
                        "given_name": given,
                        "family_name": "Kamau",
                        "sex": "female",
                        "birth_date": "1979-03-14",
                        "relationship": "head",
                    }
                ],
            },
            Source("field_survey"),
        ).record
        return record["members"][0]["id"]

    survivor, merged = register("R01-D01", "Wanjiru"), register("R01-D02", "Wanjiro")
    registry.record_enrolment(merged, "OAP", "OAP-7", "active", Source("programs"))
    merge = registry.merge_persons(survivor, merged, reason="same woman", actor=Actor("staff"))
    (row,) = rows(registry)
    assert str(row.person_id) == survivor
    registry.unmerge(merge["id"], reason="two women after all", actor=Actor("staff"))
    (row,) = rows(registry)
    assert str(row.person_id) == merged
