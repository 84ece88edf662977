"""Proposing and withdrawing corrections from the dashboard, through Flask's test client on
SQLite and PostgreSQL: the form pre-fills the registry's value, proposes through the API's
rules (targets, areas, schemas, direct corrections with evidence for staff only), reads typed
numbers as numbers, is CSRF-checked and audited; auditors get no form; the proposer withdraws
with a reason, nobody else does."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.api import create_app
from hub.corrections import service
from hub.corrections.tables import ChangeRequest
from hub.settings import load_settings
from hub.ui.tables import UiAudit
from registry_core.service import Registry, Source
from tests.integration.staff_support import add_dashboard_user, csrf_of, log_in, register

VALUE_RE = re.compile(r'name="old_value"[^>]*value="([^"]*)"')


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path, sandbox=False)
    made = create_app(settings)
    made.extensions["srhub_runtime"].registry.ensure_identifier_systems()
    for name, role, areas in (
        ("olga", "registry_staff", ()),
        ("oscar", "registry_staff", ()),
        ("sue", "supervisor", ("R01",)),
        ("audrey", "auditor", ()),
    ):
        add_dashboard_user(settings, name, role, areas)
    yield made
    made.extensions["srhub_runtime"].close()


def _registry(app: Flask) -> Registry:
    registry: Registry = app.extensions["srhub_runtime"].registry
    return registry


def _client(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert log_in(client, username).status_code == 200
    return client


def _requests(app: Flask) -> list[ChangeRequest]:
    with app.extensions["srhub_runtime"].sessions() as db:
        return list(db.scalars(select(ChangeRequest).order_by(ChangeRequest.proposed_at)))


def _audits(app: Flask, action: str) -> list[tuple[str, str]]:
    with app.extensions["srhub_runtime"].sessions() as db:
        rows = db.scalars(select(UiAudit).where(UiAudit.action == action).order_by(UiAudit.id))
        return [(r.target, r.outcome) for r in rows]


def _open_form(client: FlaskClient, hid: str, subject: str, target: str) -> tuple[str, str]:
    """The form page for one subject and target: (the pre-filled value seen, a CSRF token)."""
    page = client.get(f"/ui/households/{hid}/change-requests/new?subject={subject}&target={target}")
    assert page.status_code == 200, page.get_data(as_text=True)[:400]
    text = page.get_data(as_text=True)
    found = VALUE_RE.search(text)
    assert found is not None
    return html.unescape(found.group(1)), csrf_of(text)


def _post(client: FlaskClient, hid: str, token: str, **fields: Any) -> Any:
    data = {"csrf_token": token, "on_behalf_of": "beneficiary", "channel": "in_person", **fields}
    return client.post(f"/ui/households/{hid}/change-requests", data=data, follow_redirects=True)


def test_staff_propose_a_members_name_with_the_value_seen_prefilled(app: Flask) -> None:
    household = register(_registry(app), "R01-D01", "Amina", "Otieno", second=("Juma", "Ouma"))
    hid, spouse = household["id"], household["members"][1]["id"]
    client = _client(app, "olga")
    section = client.get(f"/ui/households/{hid}").get_data(as_text=True)
    assert 'id="choose-correction"' in section
    seen, token = _open_form(client, hid, spouse, "person.given_name")
    assert seen == "Juma"
    landed = _post(
        client,
        hid,
        token,
        subject=spouse,
        target="person.given_name",
        old_value=seen,
        proposed_value="Jumaa",
        reason="the ID card reads Jumaa",
        evidence_reference="scan-42",
        channel="phone",
    )
    assert "Correction of person.given_name proposed." in landed.get_data(as_text=True)
    [made] = _requests(app)
    assert (made.state, str(made.person_id), made.old_value, made.proposed_value) == (
        "proposed",
        spouse,
        "Juma",
        "Jumaa",
    )
    assert (made.channel, made.evidence_reference, made.proposed_by) == ("phone", "scan-42", "olga")
    assert _registry(app).get_person(spouse)["given_name"] == "Juma"  # waits for a second person
    with app.extensions["srhub_runtime"].sessions() as db:
        history = service.record(db, made, history=True)["history"]
    assert [(s["action"], s["via"]) for s in history] == [("proposed", "dashboard")]
    assert _audits(app, "correction_propose") == [
        (f"change-request:{made.id}", "person.given_name proposed")
    ]


def test_a_typed_number_is_a_number_and_a_schema_refusal_says_the_rule(app: Flask) -> None:
    registry = _registry(app)
    household = register(registry, "R01-D01", "Amina", "Otieno")
    hid, head = household["id"], household["members"][0]["id"]
    registry.record_attributes(
        hid, [{"domain": "income", "name": "wage", "value": 450}], Source("intake")
    )
    client = _client(app, "olga")
    seen, token = _open_form(client, hid, "household", "attribute.income.wage")
    assert seen == "450"
    _post(
        client,
        hid,
        token,
        fact="attribute.income.wage",
        old_value=seen,
        proposed_value="4500",
        reason="monthly, not yearly",
    )
    [made] = _requests(app)
    assert made.old_value == 450 and made.proposed_value == 4500
    assert isinstance(made.proposed_value, int)

    refused = _post(
        client,
        hid,
        token,
        subject=head,
        target="person.sex",
        old_value="female",
        proposed_value="robot",
        reason="typo",
    )
    text = refused.get_data(as_text=True)
    assert "Not proposed: the value does not fit person.sex (enum)" in text
    assert 'id="propose-correction"' in text  # back on the form to try again
    assert len(_requests(app)) == 1
    assert _audits(app, "correction_propose")[-1][1].startswith("refused: person.sex")


def test_direct_corrections_need_staff_an_allowed_target_and_evidence(app: Flask) -> None:
    registry = _registry(app)
    household = register(registry, "R01-D01", "Amina", "Otieno")
    hid = household["id"]
    client = _client(app, "olga")
    form = client.get(
        f"/ui/households/{hid}/change-requests/new?subject=household&target=household.address"
    ).get_data(as_text=True)
    assert 'id="apply-directly"' in form
    not_direct = client.get(
        f"/ui/households/{hid}/change-requests/new?subject=household&target=household.location"
    ).get_data(as_text=True)
    assert 'id="apply-directly"' not in not_direct  # not one of the direct targets
    token = csrf_of(form)
    fields = {
        "target": "household.address",
        "old_value": "12 Mango Lane",
        "proposed_value": "14 Mango Lane",
        "reason": "utility bill",
        "apply_directly": "yes",
    }
    refused = _post(client, hid, token, **fields)
    assert "A direct correction needs an evidence reference" in refused.get_data(as_text=True)
    assert _requests(app) == []
    done = _post(client, hid, token, evidence_reference="bill-2026-11", **fields)
    assert "applied directly" in done.get_data(as_text=True)
    assert registry.get_household(hid)["address"] == "14 Mango Lane"
    [made] = _requests(app)
    assert made.state == "applied" and made.direct

    # A supervisor gets no checkbox, and a forged one is refused by the service.
    sue = _client(app, "sue")
    page = sue.get(
        f"/ui/households/{hid}/change-requests/new?subject=household&target=household.address"
    ).get_data(as_text=True)
    assert 'id="apply-directly"' not in page
    forged = _post(
        sue,
        hid,
        csrf_of(page),
        **{**fields, "old_value": "14 Mango Lane", "proposed_value": "16 Mango Lane"},
        evidence_reference="x",
    )
    assert "Only registry staff apply corrections directly" in forged.get_data(as_text=True)
    assert registry.get_household(hid)["address"] == "14 Mango Lane"


def test_areas_auditors_and_csrf(app: Flask) -> None:
    registry = _registry(app)
    inside = register(registry, "R01-D01", "Amina", "Otieno")["id"]
    outside = register(registry, "R02-D01", "Zuri", "Moyo")["id"]
    sue = _client(app, "sue")
    assert sue.get(f"/ui/households/{outside}/change-requests/new").status_code == 403
    _seen, token = _open_form(sue, inside, "household", "household.address")
    away = sue.post(
        f"/ui/households/{outside}/change-requests",
        data={"csrf_token": token, "target": "household.address", "proposed_value": "x"},
    )
    assert away.status_code == 403
    moved = _post(
        sue,
        inside,
        token,
        target="household.admin_area_code",
        old_value="R01-D01",
        proposed_value="R02-D09",
        reason="moved",
    )
    assert "into an area you do not cover" in moved.get_data(as_text=True)
    no_token = sue.post(
        f"/ui/households/{inside}/change-requests",
        data={"target": "household.address", "proposed_value": "2 Road", "reason": "r"},
    )
    assert no_token.status_code == 400
    assert _requests(app) == []

    audrey = _client(app, "audrey")
    page = audrey.get(f"/ui/households/{inside}").get_data(as_text=True)
    assert 'id="corrections"' in page or 'id="no-corrections"' in page
    assert 'id="choose-correction"' not in page
    assert audrey.get(f"/ui/households/{inside}/change-requests/new").status_code == 403


def test_only_the_proposer_withdraws_and_says_why(app: Flask) -> None:
    household = register(_registry(app), "R01-D01", "Amina", "Otieno")
    hid = household["id"]
    olga = _client(app, "olga")
    seen, token = _open_form(olga, hid, "household", "household.address")
    _post(
        olga,
        hid,
        token,
        target="household.address",
        old_value=seen,
        proposed_value="1 Rd",
        reason="typo",
    )
    [made] = _requests(app)
    mine = olga.get("/ui/change-requests").get_data(as_text=True)
    assert "withdraw-request" in mine
    oscar = _client(app, "oscar")
    theirs = oscar.get("/ui/change-requests").get_data(as_text=True)
    assert "withdraw-request" not in theirs and "decide-approve" in theirs
    url = f"/ui/change-requests/{made.id}/withdraw"
    other = oscar.post(
        url, data={"csrf_token": csrf_of(theirs), "reason": "not mine"}, follow_redirects=True
    )
    assert "Only the person who proposed a correction withdraws it" in other.get_data(as_text=True)
    blank = olga.post(url, data={"csrf_token": csrf_of(mine), "reason": " "}, follow_redirects=True)
    assert "needs a reason" in blank.get_data(as_text=True)
    done = olga.post(
        url, data={"csrf_token": csrf_of(mine), "reason": "wrong household"}, follow_redirects=True
    )
    assert "Correction withdrawn." in done.get_data(as_text=True)
    [made] = _requests(app)
    assert (made.state, made.decided_by, made.decision_reason) == (
        "withdrawn",
        "olga",
        "wrong household",
    )
    outcomes = [o for _t, o in _audits(app, "correction_withdraw")]
    assert outcomes[-1] == "wrong household" and len(outcomes) == 3


def test_a_target_the_corrections_do_not_allow_sends_back_with_the_reason(app: Flask) -> None:
    household = register(_registry(app), "R01-D01", "Amina", "Otieno")
    hid, head = household["id"], household["members"][0]["id"]
    client = _client(app, "olga")
    for query, reason in (
        (f"subject={head}&target=person.national_id", "target must be"),
        ("subject=household&target=person.given_name", "needs person_id"),
        (f"subject={head}&target=household.address", "without person_id"),
    ):
        page = client.get(
            f"/ui/households/{hid}/change-requests/new?{query}", follow_redirects=True
        )
        text = html.unescape(page.get_data(as_text=True))
        assert 'id="choose-correction"' in text and reason in text, query
    assert _requests(app) == []
