"""One field submission from the device's wire to the registry, with nothing doubled.

The whole production path on PostgreSQL and RabbitMQ (a virtual host of this module's own):
a field worker created with ``srhub users add``, the hub's app as ``create_app`` builds it (the
real intake core publishing to ``sr.inbound`` on RabbitMQ) served over loopback HTTP, the
sample household form loaded as ``srhub run`` loads it, a Digest login and a multipart POST
by the probe's Digest client, and the real ingest worker (``build_worker("ingest")``) applying
the instance: a household with its two members, and questions the registry has no column for
(income, a member's disability) kept as attributes with their provenance (source ``intake``,
record ``form@version/instanceID``), and the submission's review item opened for a supervisor.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from sqlalchemy import select
from werkzeug.serving import make_server

from hub.api import create_app
from hub.assembly import build_worker
from hub.auth.roles import Principal, Role
from hub.intake.contract import INTAKE_EXTENSION_KEY
from hub.intake.service import IntakeService
from hub.intake.setup import load_sample_form
from hub.review.tables import ReviewItem, ReviewSubmission
from hub.runtime import HubRuntime
from hub.settings import load_settings
from registry_core.models import FieldAssertion, SocioEconomicAttribute
from tests.intake_support import head, instance
from tests.openrosa_support import SAFE_PARSER, DigestClient, add_user, parse_challenges

PASSWORD = "door to door 2026"
OR = {"X-OpenRosa-Version": "1.0"}
FORM_ID, FORM_VERSION = "household_registration", "2026120501"
STAFF = Principal("e2e-reader", frozenset({Role.registry_staff}))

# The production pair only: PostgreSQL (not SQLite) with RabbitMQ.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.amqp,
    pytest.mark.parametrize("db_url", ["postgresql"], indirect=True),
]


@dataclass
class LiveHub:
    url: str
    runtime: HubRuntime
    service: IntakeService


@pytest.fixture
def live_hub(db_url: str, tmp_path: Path, amqp_url: str) -> Iterator[LiveHub]:
    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path / "var", amqp_url=amqp_url, sandbox=False
    )
    add_user(settings, "enumerator7", "field_worker", PASSWORD, "R01")
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()
    app = create_app(settings, runtime)
    service = app.extensions[INTAKE_EXTENSION_KEY]
    assert isinstance(service, IntakeService) and load_sample_form(service)
    ingest = build_worker("ingest", runtime, routes={})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threads = [
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True),
        threading.Thread(target=ingest.run, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield LiveHub(f"http://127.0.0.1:{server.port}", runtime, service)
    finally:
        server.shutdown()
        ingest.stop()
        for thread in threads:
            thread.join(20)
        runtime.close()


def _digest_post(hub: LiveHub, xml: bytes) -> requests.Response:
    """What ODK Collect does: HEAD /submission, answer the first (MD5) Digest challenge, POST."""
    uri = "/openrosa/submission?deviceID=collect%3Ae2e"
    refused = requests.head(f"{hub.url}{uri}", headers=OR, timeout=10)
    assert refused.status_code == 401
    scheme, challenge = parse_challenges(refused.raw.headers.getlist("WWW-Authenticate"))[0]
    assert scheme == "digest"
    client = DigestClient("enumerator7", PASSWORD, challenge)
    head_ok = requests.head(
        f"{hub.url}{uri}", headers={**OR, "Authorization": client.header("HEAD", uri)}, timeout=10
    )
    assert head_ok.status_code == 204, head_ok.text
    files = {"xml_submission_file": ("submission.xml", xml, "text/xml")}
    return requests.post(
        f"{hub.url}{uri}",
        files=files,
        headers={**OR, "Authorization": client.header("POST", uri)},
        timeout=20,
    )


def _applied(hub: LiveHub, instance_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        row = hub.service.get_submission(instance_id, STAFF)
        if row["status"] != "received":
            return row
        assert time.monotonic() < deadline, "the ingest worker did not apply the submission"
        time.sleep(0.1)


def test_a_digest_submission_lands_in_the_registry_with_its_attributes(live_hub: LiveHub) -> None:
    hub = live_hub
    form = hub.service.form_document(FORM_ID, STAFF)
    assert form is not None and form.summary.version == FORM_VERSION
    xml = instance(
        form.xform,
        {
            "admin_area_code": "r01-d02",
            "address": "Plot 12, Mango Lane",
            "location": "-1.2921 36.8219 1650 4",
            "consent_national_id_check": "yes",
            "roof_material": "metal",
            "rooms": "2",
            "monthly_income": "12500",
            "receives_transfers": "no",
        },
        [
            head(national_id="27654321", disability="no"),
            head(
                given_name="Baraka",
                sex="male",
                birth_date="2015-06-01",
                relationship="child",
                disability="yes",
            ),
        ],
    )
    posted = _digest_post(hub, xml)
    assert posted.status_code == 201, posted.text
    instance_id = etree.fromstring(xml, SAFE_PARSER).findtext("meta/instanceID")
    row = _applied(hub, instance_id)
    assert row["status"] == "applied", row["reason"]
    assert (row["submitted_by"], row["device_id"]) == ("enumerator7", "collect:e2e")

    household = hub.runtime.registry.get_household(row["household_id"])
    assert household["admin_area_code"] == "R01-D02"
    assert household["address"] == "Plot 12, Mango Lane"
    assert household["location"] == {"lat": -1.2921, "lon": 36.8219}
    members = {m["given_name"]: m for m in household["members"]}
    assert set(members) == {"Amina", "Baraka"}
    person = hub.runtime.registry.find_person_by_identifier("national_id", "27654321")
    assert person is not None and person["id"] == members["Amina"]["id"]

    record = f"{FORM_ID}@{FORM_VERSION}/{instance_id}"
    with hub.runtime.sessions() as session:
        facts = {
            (a.name, str(a.person_id) if a.person_id else None): a
            for a in session.scalars(
                select(SocioEconomicAttribute).where(
                    SocioEconomicAttribute.household_id == uuid.UUID(row["household_id"])
                )
            )
        }
        sources = set(
            session.scalars(
                select(FieldAssertion.source_system).where(
                    FieldAssertion.entity_id == uuid.UUID(row["household_id"])
                )
            )
        )
    income = facts[("monthly_income", None)]
    assert (income.domain, income.value) == ("income", 12500)
    assert (income.source_system, income.source_record_id) == ("intake", record)
    assert facts[("roof_material", None)].domain == "dwelling"
    disabled = facts[("disability", members["Baraka"]["id"])]
    assert disabled.value == "yes" and disabled.source_record_id == record
    assert sources == {"intake"}, "the household's fields are asserted by the intake source"
    # The form's consent is in the household's consent history, the submission its evidence.
    [consent] = hub.runtime.registry.list_consents(household_id=row["household_id"])
    assert (consent["purpose"], consent["status"]) == ("identity_verification", "active")
    assert consent["evidence_reference"] == record
    assert consent["recorded_by"] == "intake:enumerator7"
    # Applied by the ingest worker, the submission awaits a supervisor in the review queue.
    with hub.runtime.sessions() as session:
        item = session.scalars(
            select(ReviewItem)
            .join(ReviewSubmission, ReviewSubmission.item_id == ReviewItem.id)
            .where(ReviewSubmission.instance_id == instance_id)
        ).one()
    assert item.state == "submitted" and str(item.household_id) == row["household_id"]

    # The device resends (it never saw the 201): answered as received, applied once.
    again = _digest_post(hub, xml)
    assert again.status_code == 202, again.text
    time.sleep(0.5)
    assert len(hub.service.list_submissions(STAFF)) == 1
    assert (
        hub.runtime.registry.get_household(row["household_id"])["version"] == household["version"]
    )
