"""The audit of reads through the running app, on SQLite and PostgreSQL: a household GET, a
person look-up, a DCI search (sync and async), a FHIR read and the dashboard's household page
each leave one row naming the caller and the records; only auditors and admins read the log;
its filters and the chain's verification work over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.auth.tokens import issue_token
from tests.integration.dci_support import Dci, search_message, seed_population
from tests.integration.staff_support import add_dashboard_user, log_in

READS = "/api/v1/audit/reads"


@pytest.fixture
def hub(db_url: str, tmp_path: Path):
    harness = Dci(db_url, tmp_path, extra={"callback_attempts": 1})
    yield harness
    harness.close()


def token(hub: Dci, subject: str, *roles: str, **scope) -> dict[str, str]:
    issued = issue_token(hub.settings, subject=subject, roles=list(roles), **scope)
    return {"Authorization": f"Bearer {issued}"}


def rows(hub: Dci, **query) -> list[dict]:
    response = hub.client.get(READS, query_string=query, headers=token(hub, "aud", "auditor"))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json["items"]


def member_ids(record: dict) -> set[str]:
    return {m["id"] for m in record["members"]}


def test_a_household_get_leaves_one_row_naming_caller_records_and_purpose(hub):
    family = seed_population(hub)["otieno"]
    headers = {**token(hub, "officer-7", "registry_staff"), "X-Purpose-Of-Use": "case-review"}
    response = hub.client.get(f"/api/v1/households/{family['id']}", headers=headers)
    assert response.status_code == 200
    [row] = rows(hub)
    assert row["subject"] == "officer-7" and row["roles"] == ["registry_staff"]
    assert row["channel"] == "api" and row["purpose"] == "case-review"
    assert row["route"] == "GET /api/v1/households/<uuid:household_id>"
    assert row["household_ids"] == [family["id"]] and row["record_count"] == 1
    assert set(row["person_ids"]) == member_ids(family) and len(row["person_ids"]) == 3
    # The purpose can come as a query parameter too; a purpose that is not a code is refused.
    query = hub.client.get(
        f"/api/v1/households/{family['id']}?purpose=appeal", headers=token(hub, "o", "admin")
    )
    assert query.status_code == 200 and rows(hub)[0]["purpose"] == "appeal"
    refused = hub.client.get(
        f"/api/v1/households/{family['id']}",
        headers={**headers, "X-Purpose-Of-Use": "because I <3 them"},
    )
    assert refused.status_code == 400 and len(rows(hub)) == 2


def test_an_identifier_search_records_the_kind_never_the_value(hub):
    family = seed_population(hub)["kamau"]
    response = hub.client.get(
        "/api/v1/persons?identifier=national_id|2222222222", headers=token(hub, "o", "admin")
    )
    assert response.status_code == 200 and response.json["total"] == 1
    [row] = rows(hub)
    assert row["query_kind"] == "identifier:national_id" and row["purpose"] == "unspecified"
    assert row["person_ids"] == [family["members"][0]["id"]]
    assert "2222222222" not in json.dumps(row)
    with hub.runtime.engine.connect() as conn:
        stored = conn.execute(text("SELECT * FROM read_audit")).mappings().one()
    assert "2222222222" not in json.dumps({k: str(v) for k, v in stored.items()})
    assert "Kamau" not in json.dumps({k: str(v) for k, v in stored.items()})


def test_a_dci_sync_search_leaves_one_row_with_the_consent_purpose(hub):
    family = seed_population(hub)["otieno"]
    criteria = {
        "query_type": "idtype-value",
        "query": {"type": "UIN", "value": "1111111111"},
        "consent": {"purpose": {"code": "cash-transfer"}},
    }
    body = hub.envelope("search", search_message(criteria))
    response = hub.post("sync/search", body)
    assert response.status_code == 200
    assert response.json["message"]["search_response"][0]["status"] == "succ"
    [row] = rows(hub)
    assert row["subject"] == "spmis" and row["channel"] == "dci"
    assert row["route"] == "POST /dci/registry/sync/search"
    assert row["purpose"] == "cash-transfer" and row["query_kind"] == "dci:idtype-value"
    assert row["household_ids"] == [family["id"]]
    assert set(row["person_ids"]) == member_ids(family)
    assert "1111111111" not in json.dumps(row)


def test_a_dci_async_search_is_recorded_before_its_callback(hub):
    family = seed_population(hub)["odhiambo"]
    message = search_message(
        {"query_type": "idtype-value", "query": {"type": "UIN", "value": "4444444444"}},
        {"query_type": "idtype-value", "query": {"type": "UIN", "value": "1111111111"}},
    )
    body = hub.envelope("search", message, sender_uri=hub.receiver.base + "/cb")
    assert hub.post("search", body).status_code == 200
    path, _callback = hub.receiver.next()
    assert path.endswith("on-search")
    [row] = rows(hub)
    assert row["route"] == "POST /dci/registry/search" and row["record_count"] == 2
    assert family["id"] in row["household_ids"] and len(row["person_ids"]) == 7
    assert row["purpose"] == "unspecified"


def test_a_program_reads_for_its_subscription_purpose(hub):
    from hub.subscriptions.tables import Subscription

    family = seed_population(hub)["otieno"]
    with hub.runtime.sessions() as session, session.begin():
        session.add(
            Subscription(
                code="cash-1",
                program_code="cash",
                event_types=["person.died"],
                channel="webhook",
                target="https://cash.example.org/hook",
                purpose="benefit-payment",
            )
        )
    headers = token(hub, "cash-mis", "program", program="cash")
    message = search_message(
        {"query_type": "idtype-value", "query": {"type": "UIN", "value": "1111111111"}}
    )
    response = hub.post("sync/search", hub.envelope("search", message), headers=headers)
    assert response.status_code == 200  # no consent covers the family: nothing found
    [row] = rows(hub)
    assert row["program"] == "cash" and row["roles"] == ["program"]
    assert row["purpose"] == "benefit-payment" and row["record_count"] == 0
    assert family["id"] not in row["household_ids"]


def test_a_fhir_read_leaves_one_row(hub):
    family = seed_population(hub)["wanjiru"]
    response = hub.client.get(
        f"/fhir/Group/{family['id']}", headers=token(hub, "fhir-client", "registry_staff")
    )
    assert response.status_code == 200
    [row] = rows(hub)
    assert row["channel"] == "fhir" and row["subject"] == "fhir-client"
    assert row["route"] == "GET /fhir/Group/<group_id>"
    assert row["household_ids"] == [family["id"]]
    person = family["members"][0]["id"]
    assert (
        hub.client.get(
            f"/fhir/Patient/{person}", headers=token(hub, "fhir-client", "registry_staff")
        ).status_code
        == 200
    )
    [latest, _] = rows(hub)
    assert latest["person_ids"] == [person] and latest["route"] == "GET /fhir/Patient/<patient_id>"


def test_the_dashboard_household_page_leaves_one_row(hub):
    family = seed_population(hub)["odhiambo"]
    add_dashboard_user(hub.settings, "clerk", "registry_staff")
    client = hub.app.test_client()
    log_in(client, "clerk")
    before = len(rows(hub))  # the login lands on the household list: a read too
    assert before == 1 and rows(hub)[0]["query_kind"] == "list"
    page = client.get(f"/ui/households/{family['id']}")
    assert page.status_code == 200
    latest = rows(hub)[0]
    assert len(rows(hub)) == before + 1
    assert latest["channel"] == "ui" and latest["subject"] == "clerk"
    assert latest["household_ids"] == [family["id"]] and latest["record_count"] == 1
    client.get("/ui/households?national_id=4444444444")
    search = rows(hub)[0]
    assert search["query_kind"] == "search:national_id" and "4444444444" not in json.dumps(search)


@pytest.mark.parametrize("role", ["program", "field_worker", "registry_staff", "partner"])
def test_only_auditors_and_admins_read_the_log(hub, role):
    scope = {"program": "cash"} if role == "program" else {}
    if role == "field_worker":
        scope = {"admin_areas": ["R01"]}
    headers = token(hub, "someone", role, **scope)
    assert hub.client.get(READS, headers=headers).status_code == 403
    assert hub.client.get(READS + "/verify", headers=headers).status_code == 403
    assert hub.client.get(READS).status_code == 401
    admin = token(hub, "root", "admin")
    assert hub.client.get(READS, headers=admin).status_code == 200


def test_filters_pages_and_bad_queries(hub):
    population = seed_population(hub)
    for name, subject in (("otieno", "a"), ("kamau", "b"), ("otieno", "b")):
        hub.client.get(
            f"/api/v1/households/{population[name]['id']}",
            headers=token(hub, subject, "registry_staff"),
        )
    assert [r["subject"] for r in rows(hub, subject="b")] == ["b", "b"]
    otieno = rows(hub, household_id=population["otieno"]["id"])
    assert [r["subject"] for r in otieno] == ["b", "a"]
    person = population["kamau"]["members"][0]["id"]
    assert [r["subject"] for r in rows(hub, person_id=person)] == ["b"]
    assert rows(hub, purpose="nothing-like-it") == []
    assert len(rows(hub, **{"from": "2000-01-01T00:00:00Z"})) == 3
    assert rows(hub, to="2000-01-01T00:00:00Z") == []
    auditor = token(hub, "aud", "auditor")
    first = hub.client.get(READS + "?limit=2", headers=auditor).json
    assert len(first["items"]) == 2 and first["next_before"] == first["items"][-1]["seq"]
    rest = hub.client.get(f"{READS}?limit=2&before={first['next_before']}", headers=auditor).json
    assert len(rest["items"]) == 1 and rest["next_before"] is None
    for bad in ("household_id=nope", "from=yesterday", "limit=0", "limit=9999", "colour=red"):
        response = hub.client.get(f"{READS}?{bad}", headers=auditor)
        assert response.status_code == 400, bad
        assert response.mimetype == "application/problem+json"


def test_verify_over_http_finds_a_tampered_row(hub):
    family = seed_population(hub)["otieno"]
    for _ in range(3):
        hub.client.get(f"/api/v1/households/{family['id']}", headers=token(hub, "o", "admin"))
    auditor = token(hub, "aud", "auditor")
    verdict = hub.client.get(READS + "/verify", headers=auditor).json
    assert verdict["intact"] and verdict["checked"] == 3 and verdict["head"]["seq"] == 3
    engine = hub.runtime.engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(text("DROP TRIGGER read_audit_no_update"))
        conn.execute(text("UPDATE read_audit SET subject = 'someone-else' WHERE seq = 2"))
    verdict = hub.client.get(READS + "/verify", headers=auditor).json
    assert not verdict["intact"] and verdict["broken_seq"] == 2 and verdict["checked"] == 1


def test_the_dashboard_page_is_for_auditors_and_admins(hub):
    family = seed_population(hub)["kamau"]
    hub.client.get(f"/api/v1/households/{family['id']}", headers=token(hub, "o-9", "admin"))
    add_dashboard_user(hub.settings, "inspector", "auditor")
    add_dashboard_user(hub.settings, "clerk", "registry_staff")
    clerk = hub.app.test_client()
    log_in(clerk, "clerk")
    assert clerk.get("/ui/audit/reads").status_code == 403
    auditor = hub.app.test_client()
    log_in(auditor, "inspector")
    page = auditor.get(f"/ui/audit/reads?household_id={family['id']}&verify=1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert ">o-9<" in html and "Chain intact" in html
    assert ">clerk<" in html  # the clerk's login landed on the household list: a read too
    only = auditor.get("/ui/audit/reads?subject=o-9").get_data(as_text=True)
    assert ">o-9<" in only and ">clerk<" not in only
    assert "Audit of reads" in auditor.get("/ui/households").get_data(as_text=True)
    assert auditor.get("/ui/audit/reads?household_id=nope").status_code == 400
    assert auditor.get("/ui/audit/reads?purpose=a%20b").status_code == 400


def test_a_read_that_cannot_be_recorded_is_not_answered(hub, monkeypatch):
    from hub.readaudit.log import ReadAuditLog

    family = seed_population(hub)["otieno"]

    def broken(self, entry):
        raise RuntimeError("the audit table is gone")

    monkeypatch.setattr(ReadAuditLog, "append", broken)
    response = hub.client.get(
        f"/api/v1/households/{family['id']}", headers=token(hub, "o", "admin")
    )
    assert response.status_code == 500 and "Otieno" not in response.get_data(as_text=True)
    message = search_message(
        {"query_type": "idtype-value", "query": {"type": "UIN", "value": "1111111111"}}
    )
    answer = hub.post("sync/search", hub.envelope("search", message))
    assert answer.status_code == 503 and "Otieno" not in answer.get_data(as_text=True)
