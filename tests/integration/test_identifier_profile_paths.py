"""One country profile, applied the same way on every path.

A hub configured with a profile of its own (national IDs with an ISO 7064 MOD 11-2 check
character, written with dashes or without; the profile's own FHIR URI) must accept and refuse
the same number identically through the households API, the persons and FHIR searches, the DCI
sync search and a mapped partner record, and find the same person however the number is
written. Then the ingest worker on the embedded broker: a partner record whose optional
identifier (a father's) breaks the profile is applied with a data-quality note that staff see on
the person and in the message log; one whose subject identifier breaks it lands in review; no
record is dead-lettered.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.base.envelope import raw_event
from connectors.base.records import RawRecord
from hub.api import create_app
from hub.api.dci import close_app
from hub.auth.tokens import issue_token
from hub.broker import Message, connect
from hub.broker.base import EXCHANGE_INBOUND, QUEUE_DEAD
from hub.dci import senders
from hub.monitoring.message_log import MessageLogWriter, list_messages
from hub.monitoring.middleware import MonitoringMiddleware
from hub.pipeline.ingest import IngestServices, ingest_handlers
from hub.pipeline.routes import default_routes
from hub.settings import load_settings
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import INGEST_QUEUE
from mappings.engine import IdentifierReview, load_spec
from standards.cloudevents import to_json_bytes
from standards.dci.envelope import request_header
from standards.dci.signature import public_key_base64, sign_envelope
from tests.integration.pipeline_support import run_until_handled

# ORCID's documented example: valid under ISO 7064 MOD 11-2, written three ways.
GOOD = "0000-0002-1825-0097"
GOOD_BARE = "0000000218250097"
GOOD_SPACED = "0000 0002 1825 0097"
BAD = "0000-0002-1825-0096"  # the last character mistyped
NIN_URI = "https://id.example.gov/nin"
SENDER = "benefits.example.gov"

PROFILE = f"""
[profile]
name = "example-country"
description = "National IDs of 16 characters with an ISO 7064 MOD 11-2 check character"

[systems.national_id]
description = "National identification number"
label = "NIN"
pattern = "[0-9]{{15}}[0-9X]"
format = "16 characters: 15 digits and a check character (0-9 or X)"
check = "iso7064_mod11_2"
dci_identifier_type = "UIN"
fhir_system = "{NIN_URI}"

[systems.birth_registration]
description = "Birth registration number"
pattern = "[0-9A-Z]{{2,40}}"

[systems.death_registration]
description = "Death registration number"

[systems.tax_id]
description = "Taxpayer identification number"
normalise = {{ leading_zeros = "strip" }}

[systems.program_beneficiary_id]
description = "Beneficiary number"
"""


class Hub:
    """The API under test with its runtime, a staff token and a signing DCI sender."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        profile = tmp_path / "country.toml"
        profile.write_text(PROFILE, encoding="utf-8")
        self.settings = load_settings(
            env={}, database_url=db_url, data_dir=tmp_path, identifier_profile=profile
        )
        self.app = create_app(self.settings)
        self.runtime = self.app.extensions["srhub_runtime"]
        self.registry = self.runtime.registry
        self.registry.ensure_identifier_systems()
        self.client = self.app.test_client()
        staff = issue_token(self.settings, subject="staff", roles=["admin"])
        self.staff = {"Authorization": f"Bearer {staff}"}
        self.key = Ed25519PrivateKey.generate()
        senders.register_key(
            self.runtime.sessions, SENDER, "k1", public_key_base64(self.key.public_key())
        )

    def close(self) -> None:
        close_app(self.app)
        self.runtime.close()

    def household(self, nid: str, given: str = "Ama") -> Any:
        record = {
            "admin_area_code": "R01-D01-L001",
            "address": "1 Main Road",
            "members": [
                {
                    "given_name": given,
                    "family_name": "Mensah",
                    "sex": "female",
                    "birth_date": "1990-04-02",
                    "relationship": "head",
                    "identifiers": [{"system": "national_id", "value": nid}],
                }
            ],
        }
        return self.client.post("/api/v1/households", json=record, headers=self.staff)

    def dci_search(self, value: str) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        message = {
            "transaction_id": f"txn-{random.randrange(10**9)}",
            "search_request": [
                {
                    "reference_id": "ref-1",
                    "timestamp": now,
                    "search_criteria": {
                        "query_type": "idtype-value",
                        "query": {"type": "UIN", "value": value},
                    },
                }
            ],
        }
        header = request_header("search", sender_id=SENDER, total_count=1)
        body = {
            "header": header,
            "message": message,
            "signature": sign_envelope(header, message, self.key, sender_id=SENDER, key_id="k1"),
        }
        # Staff read every record (a partner or program sees only what consent allows: another
        # test's subject); here the point is how the identifier is read.
        response = self.client.post("/dci/registry/sync/search", json=body, headers=self.staff)
        assert response.status_code == 200, response.get_data(as_text=True)
        item: dict[str, Any] = response.get_json()["message"]["search_response"][0]
        return item


@pytest.fixture
def hub(db_url: str, tmp_path: Path) -> Iterator[Hub]:
    harness = Hub(db_url, tmp_path)
    yield harness
    harness.close()


def dci_birth(brn: str, **ids: str) -> dict[str, Any]:
    """A DCI CRVS birth record; ``child``, ``mother``, ``father``: their UINs."""
    record: dict[str, Any] = {
        "registration_number": brn,
        "registration_date": "2025-05-02",
        "name": {"given_name": "Kofi", "surname": "MENSAH"},
        "sex": "male",
        "birth_date": "2025-04-30",
        "identifier": [{"identifier_type": "BRN", "identifier_value": brn}],
        "reg_event_type": "live_birth",
    }
    if "child" in ids:
        record["identifier"].append({"identifier_type": "UIN", "identifier_value": ids["child"]})
    for who, key in (("mother", "parent1_identifier"), ("father", "parent2_identifier")):
        if who in ids:
            record[key] = [{"identifier_type": "UIN", "identifier_value": ids[who]}]
    return record


def test_one_number_passes_and_fails_alike_on_every_path(hub: Hub) -> None:
    # The households API (a write path): the check character decides, separators do not.
    refused = hub.household(BAD)
    assert refused.status_code == 422
    [error] = refused.get_json()["errors"]
    assert error["path"] == "$.members[0].identifiers[0].value"
    assert error["rule"] == "identifier:check_digit"
    assert "national_id" in error["message"] and "ISO 7064 MOD 11-2" in error["message"]
    assert BAD not in refused.get_data(as_text=True)
    assert "096" not in refused.get_data(as_text=True)
    created = hub.household(GOOD)
    assert created.status_code == 201, created.get_data(as_text=True)
    person_id = created.get_json()["members"][0]["id"]
    stored = hub.registry.get_person(person_id)["identifiers"]
    assert [(i["system"], i["value"]) for i in stored] == [("national_id", GOOD_BARE)]
    # Written another way it is the same person: the API refuses a second holder.
    assert hub.household(GOOD_SPACED, given="Abena").status_code == 409

    # The persons search and the FHIR search: found however written, refused alike.
    for written in (GOOD, GOOD_BARE, GOOD_SPACED):
        found = hub.client.get(
            "/api/v1/persons",
            query_string={"identifier": f"national_id|{written}"},
            headers=hub.staff,
        ).get_json()
        assert [p["id"] for p in found["items"]] == [person_id]
        for system in ("national_id", NIN_URI):
            bundle = hub.client.get(
                "/fhir/Patient",
                query_string={"identifier": f"{system}|{written}"},
                headers=hub.staff,
            ).get_json()
            assert [e["resource"]["id"] for e in bundle.get("entry", [])] == [person_id]
    bad_search = hub.client.get(
        "/api/v1/persons", query_string={"identifier": f"national_id|{BAD}"}, headers=hub.staff
    )
    assert bad_search.status_code == 400
    assert "check digit" in bad_search.get_json()["detail"]
    assert BAD not in bad_search.get_data(as_text=True)
    outcome = hub.client.get(
        "/fhir/Patient", query_string={"identifier": f"{NIN_URI}|{BAD}"}, headers=hub.staff
    )
    assert outcome.status_code == 400
    diagnostics = outcome.get_json()["issue"][0]["diagnostics"]
    assert "national_id" in diagnostics and "check digit" in diagnostics
    assert BAD not in outcome.get_data(as_text=True)

    # The DCI sync search.
    for written in (GOOD, GOOD_SPACED):
        item = hub.dci_search(written)
        assert item["status"] == "succ"
        assert len(item["data"]["reg_records"]) == 1
    item = hub.dci_search(BAD)
    assert item["status"] == "rjct"
    assert item["status_reason_code"] == "rjct.search_criteria.invalid"
    assert "national_id" in item["status_reason_message"]
    assert "check digit" in item["status_reason_message"]
    assert BAD not in json.dumps(item)

    # A mapped partner record, with the registry's own profile: the same verdicts.
    spec = load_spec("civil_registry_dci_birth")
    profile = hub.registry.identifier_profile
    mapped = spec.map(dci_birth("BR-9", mother=GOOD_SPACED), profile).record
    assert mapped["mother"]["identifiers"] == [{"system": "national_id", "value": GOOD_BARE}]
    resolved = hub.registry.resolve(mapped["mother"])
    assert (resolved.outcome, str(resolved.person_id)) == ("match", person_id)
    with pytest.raises(IdentifierReview):
        spec.map(dci_birth("BR-9", mother=GOOD, child=BAD), profile)
    assert spec.map(dci_birth("BR-9", mother=GOOD, father=BAD), profile).notes[0].rule == (
        "identifier:check_digit"
    )


def raw(routing: str, record: dict[str, Any], source_id: str) -> Message:
    connector, record_type = routing.split(".", 1)
    event = raw_event(
        connector,
        RawRecord(record_type, record, source_id=source_id),
        time=datetime(2025, 6, 1, tzinfo=UTC),
    )
    return Message(to_json_bytes(event), routing, event["id"])


def test_bad_optional_id_is_applied_with_a_note_and_bad_subject_id_goes_to_review(
    hub: Hub, db_url: str
) -> None:
    mother_id = hub.household(GOOD).get_json()["members"][0]["id"]
    writer = MessageLogWriter(hub.runtime.sessions, hub.runtime.cipher)
    applied = raw(
        "civil_registry.dci_birth", dci_birth("BR-A-1", mother=GOOD_BARE, father=BAD), "BR-A-1"
    )
    child_bad = raw(
        "civil_registry.dci_birth", dci_birth("BR-B-2", mother=GOOD, child=BAD), "BR-B-2"
    )
    death_bad = raw(
        "civil_registry.dci_death",
        {
            "registration_number": "DR-C-3",
            "registration_date": "2025-05-20",
            "death_date": "2025-05-18",
            "name": {"given_name": "Ama", "surname": "MENSAH"},
            "identifier": [{"identifier_type": "UIN", "identifier_value": BAD}],
            "reg_event_type": "death",
        },
        "DR-C-3",
    )
    messages = [applied, child_bad, death_bad]
    broker = connect(db_url)
    try:
        broker.declare_topology([INGEST_QUEUE])
        broker.publish(EXCHANGE_INBOUND, messages)
        broker.publish(EXCHANGE_INBOUND, messages)  # at least once: every record twice
        runtime = ConsumerRuntime(
            "ingest",
            INGEST_QUEUE,
            lambda: connect(db_url),
            hub.runtime.sessions,
            ingest_handlers(IngestServices(hub.registry), default_routes()),
            retry=RetryPolicy(attempts=2, initial_delay=0.01, max_delay=0.05, jitter=0.01),
            receive_timeout=0.1,
            middleware=[MonitoringMiddleware(writer)],
        )
        assert run_until_handled(runtime, 2 * len(messages), broker)["dead_lettered"] == 0
        dead = broker.open_consumer(QUEUE_DEAD, prefetch=10)
        assert dead.receive(0.5) is None  # no record lost to the dead letters
        dead.close()
    finally:
        broker.close()
        writer.flush()

    # The birth with the father's bad number was applied; the note is on the child.
    household = hub.registry.get_household(
        hub.registry.get_person(mother_id)["memberships"][-1]["household_id"]
    )
    child = hub.registry.find_person_by_identifier("birth_registration", "BRA1")
    assert child is not None and child["id"] in {m["id"] for m in household["members"]}
    provenance = hub.client.get(
        f"/api/v1/persons/{child['id']}/provenance", headers=hub.staff
    ).get_json()["items"]
    notes = [p for p in provenance if p["field"] == "data_quality_note"]
    assert len(notes) == 1  # delivered twice, kept once
    [note] = notes
    assert note["value"]["target"] == "father.identifiers[system=national_id].value"
    assert note["value"]["rule"] == "identifier:check_digit"
    assert note["source_system"] == "civil_registry" and note["current"] is False
    # Neither the number nor a tail of it is shown; digests, sealed values and timestamps are
    # opaque or unrelated (and may contain any digits by chance), so they are left out of the look.
    shown = re.sub(r'"[A-Za-z0-9+/=]{32,}"', '""', json.dumps(provenance))
    shown = re.sub(r'"\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:\d{2})?"', '""', shown)
    assert BAD not in shown and "096" not in shown

    # The child's and the deceased's own bad numbers: review, with what staff need to fix it.
    reviews, total = hub.registry.list_reviews()
    assert total == 2
    assert {r["kind"] for r in reviews} == {"invalid_identifier"}
    by_source = {r["source"]["record_id"]: r for r in reviews}
    assert set(by_source) == {"BR-B-2", "DR-C-3"}
    reason = by_source["DR-C-3"]["reason"]
    assert "deceased.identifiers[system=national_id].value" in reason
    assert "check digit" in reason and BAD not in reason
    refused = by_source["BR-B-2"]["record"]["refused_identifiers"]
    assert refused == [
        {
            "target": "child.identifiers[system=national_id].value",
            "source_path": "$.identifier[1].identifier_value",
            "value": BAD,
        }
    ]
    assert by_source["DR-C-3"]["record"]["death_date"] == "2025-05-18"
    assert hub.registry.get_person(mother_id)["is_deceased"] is False

    # The message log tells the same story, per message.
    with hub.runtime.sessions() as session:
        entries, _ = list_messages(session, connector="civil_registry")
    by_id = {e["message_id"]: e for e in entries}
    assert by_id[applied.message_id]["status"] == "applied"
    assert "father.identifiers[system=national_id].value" in by_id[applied.message_id]["notes"]
    for message in (child_bad, death_bad):
        assert by_id[message.message_id]["status"] == "review"
        assert by_id[message.message_id]["notes"].startswith("review: ")
    assert BAD not in json.dumps(entries, default=str)


def test_the_built_in_profile_has_no_check_digit_the_sandbox_profile_does(
    db_url: str, tmp_path: Path
) -> None:
    """The same mistyped 10-digit number: accepted by a hub on the built-in profile, refused
    (422, naming the Verhoeff rule) by a hub on the sandbox's."""
    from sandbox_mocks.launcher import SANDBOX_IDENTIFIER_PROFILE
    from standards.identifiers import verhoeff_check_digit

    good = "683493142" + verhoeff_check_digit("683493142")
    mistyped = good[:-1] + str((int(good[-1]) + 1) % 10)
    for profile, status in (("", 201), (str(SANDBOX_IDENTIFIER_PROFILE), 422)):
        settings = load_settings(
            env={}, database_url=db_url, data_dir=tmp_path, identifier_profile=profile
        )
        app = create_app(settings)
        app.extensions["srhub_runtime"].registry.ensure_identifier_systems()
        token = issue_token(settings, subject="staff", roles=["admin"])
        record = {
            "admin_area_code": "R01",
            "members": [
                {
                    "given_name": "Tua",
                    "family_name": "Grakaboesh",
                    "sex": "female",
                    "birth_date": "1987-09-06",
                    "relationship": "head",
                    "identifiers": [{"system": "national_id", "value": mistyped}],
                }
            ],
        }
        response = app.test_client().post(
            "/api/v1/households", json=record, headers={"Authorization": f"Bearer {token}"}
        )
        close_app(app)
        app.extensions["srhub_runtime"].close()
        assert response.status_code == status, response.get_data(as_text=True)
        if status == 422:
            assert "Verhoeff" in response.get_json()["errors"][0]["message"]
