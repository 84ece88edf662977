"""The intake core over real databases and the real (embedded) broker: receiving field
submissions (idempotency, form versions, rules, areas), applying them in the ingest worker
(registration, attributes with provenance, version conflicts kept with both sides, one bad
submission among fifty), and the re-queue of stored submissions nobody queued."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.auth.roles import Principal, Role
from hub.broker import connect
from hub.connectors_host import BrokerRawPublisher
from hub.intake.contract import MediaFile, SubmissionRejected
from hub.intake.queueing import ROUTING_KEY, requeue_received
from hub.intake.setup import intake_service, submission_handler
from hub.intake.tables import IntakeSubmission
from hub.pipeline.ingest import IngestServices, ingest_handlers
from hub.runtime import HubRuntime
from hub.settings import load_settings
from hub.workers.retry import RetryPolicy
from hub.workers.runtime import ConsumerRuntime
from hub.workers.topology import INGEST_QUEUE
from registry_core.models import SocioEconomicAttribute
from registry_core.service import Source
from tests.intake_support import head, household, instance, xlsform
from tests.integration.pipeline_support import run_until_handled

FIELD_WORKER = Principal("enumerator-7", frozenset({Role.field_worker}), admin_areas=("R01",))
STAFF = Principal("officer", frozenset({Role.registry_staff}))


class Hub:
    def __init__(self, db_url: str, tmp_path: Path, review: Any = None) -> None:
        self.settings = load_settings(
            env={}, database_url=db_url, data_dir=tmp_path / "var", sandbox=False
        )
        self.runtime = HubRuntime(self.settings)
        self.runtime.registry.ensure_identifier_systems()
        self.publisher = BrokerRawPublisher(self.settings)
        self.review = review
        self.service = intake_service(self.runtime, publisher=self.publisher, review=review)
        result = self.service.upload_form(xlsform(), "hh.xlsx", "admin")
        self.xform = self.service.form_document("hh_test", STAFF).xform  # type: ignore[union-attr]
        assert result.form["version"] == "1"

    def submit(self, answers: dict[str, Any], members: list[dict[str, Any]], **kw: Any) -> str:
        xml = instance(self.xform, answers, members, **kw)
        outcome = self.service.receive_submission(xml, [], FIELD_WORKER, device_id="dev-1")
        assert outcome.status == "created"
        return outcome.instance_id

    def work(self, count: int) -> dict[str, Any]:
        broker = connect(self.settings)
        try:
            runtime = ConsumerRuntime(
                "ingest",
                INGEST_QUEUE,
                lambda: connect(self.settings),
                self.runtime.sessions,
                ingest_handlers(
                    IngestServices(self.runtime.registry),
                    {},
                    extra={ROUTING_KEY: submission_handler(self.runtime, self.review)},
                ),
                retry=RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0.01),
                receive_timeout=0.1,
            )
            return run_until_handled(runtime, count, broker, timeout=120)
        finally:
            broker.close()

    def row(self, instance_id: str) -> dict[str, Any]:
        return self.service.get_submission(instance_id, STAFF)

    def close(self) -> None:
        self.publisher.close()
        self.runtime.close()


@pytest.fixture
def hub(db_url: str, tmp_path: Path):
    made = Hub(db_url, tmp_path)
    yield made
    made.close()


def test_receive_is_idempotent_on_the_instance_id(hub: Hub) -> None:
    xml = instance(hub.xform, household(), [head()])
    first = hub.service.receive_submission(xml, [], FIELD_WORKER)
    again = hub.service.receive_submission(xml, [], FIELD_WORKER)
    changed = xml.replace(b"Amina", b"Aminah")
    other = hub.service.receive_submission(changed, [], FIELD_WORKER)
    assert (first.status, again.status, other.status) == (
        "created",
        "duplicate",
        "conflicting_duplicate",
    )
    rows = hub.service.list_submissions(STAFF)
    assert len(rows) == 1 and rows[0]["form_version"] == "1"
    assert rows[0]["submitted_by"] == "enumerator-7" and rows[0]["device_id"] is None


def test_later_parts_of_a_split_submission_add_their_media_once(hub: Hub) -> None:
    """ODK Collect splits a large submission into POSTs of the same XML with more media each:
    the core keeps every part's files (once per name) and applies the instance once."""

    def media(*names: str) -> list[MediaFile]:
        return [MediaFile(n, "image/jpeg", b"\xff\xd8 " + n.encode()) for n in names]

    def kept(instance_id: str) -> list[str]:
        return sorted(a["name"] for a in hub.row(instance_id)["attachments"])

    xml = instance(hub.xform, household(), [head()])
    first = hub.service.receive_submission(xml, media("a.jpg", "a.jpg"), FIELD_WORKER)
    assert first.status == "created" and kept(first.instance_id) == ["a.jpg"]
    second = hub.service.receive_submission(xml, media("b.jpg", "a.jpg"), FIELD_WORKER)
    assert second.status == "duplicate" and "1 more media" in second.message
    resent = hub.service.receive_submission(xml, media("b.jpg"), FIELD_WORKER)
    assert resent.status == "duplicate" and resent.message == "Already received."
    assert kept(first.instance_id) == ["a.jpg", "b.jpg"]
    # Another body under the instanceID brings nothing; nor does a worker of another area.
    changed = xml.replace(b"Amina", b"Aminah")
    other = hub.service.receive_submission(changed, media("c.jpg"), FIELD_WORKER)
    assert other.status == "conflicting_duplicate"
    elsewhere = Principal("enumerator-9", frozenset({Role.field_worker}), admin_areas=("R02",))
    with pytest.raises(SubmissionRejected) as refused:
        hub.service.receive_submission(xml, media("d.jpg"), elsewhere)
    assert refused.value.status == 403
    assert kept(first.instance_id) == ["a.jpg", "b.jpg"]
    assert len(hub.service.list_submissions(STAFF)) == 1


def test_receive_refuses_what_it_cannot_take(hub: Hub) -> None:
    def refused(xml: bytes, principal: Principal = FIELD_WORKER) -> SubmissionRejected:
        with pytest.raises(SubmissionRejected) as caught:
            hub.service.receive_submission(xml, [], principal)
        return caught.value

    good = instance(hub.xform, household(), [head()])
    assert refused(good.replace(b'id="hh_test"', b'id="nope"')).status == 404
    assert refused(good.replace(b'version="1"', b'version="7"')).status == 404
    no_id = instance(hub.xform, household(), [head()], instance_id=" ")
    assert "instanceID" in refused(no_id).reason
    entity = b'<!DOCTYPE d [<!ENTITY x "boom">]>' + good.split(b"?>", 1)[1]
    assert refused(entity).status == 400
    outside = refused(instance(hub.xform, household(admin_area_code="R02-D01"), [head()]))
    assert outside.status == 403 and "R02-D01" in outside.reason
    rules = refused(instance(hub.xform, household(rooms="99"), [head(sex="x")]))
    assert rules.status == 400
    assert "rooms" in rules.reason and "1 to 30 rooms" in rules.reason
    assert "sex" in rules.reason and "choices" in rules.reason
    big = refused(good + b" " * hub.settings.intake.max_submission_bytes)
    assert big.status == 413
    # A new version becomes current; the old one, retired, is answered 410 naming it.
    hub.service.upload_form(xlsform(version="2"), "hh.xlsx", "admin")
    hub.service.retire_version("hh_test", "1", "admin")
    gone = refused(good)
    assert gone.status == 410 and "current version 2" in gone.reason
    assert [f.version for f in hub.service.forms_for(FIELD_WORKER)] == ["2"]


def test_a_new_household_is_registered_by_the_ingest_worker(hub: Hub) -> None:
    extra = [("text", "water_source", "Main water source", "", "", "", "")]
    hub.service.upload_form(xlsform(version="2", extra_rows=extra), "hh.xlsx", "admin")
    hub.xform = hub.service.form_document("hh_test", STAFF).xform  # type: ignore[union-attr]
    instance_id = hub.submit(
        household(location="-1.28 36.82 0 5", water_source="borehole"),
        [
            head(national_id="12345678", owns="tv"),
            head(given_name="Ali", relationship="child", sex="male", birth_date="2012-01-01"),
        ],
    )
    assert hub.work(1)["processed"] == 1
    row = hub.row(instance_id)
    assert row["status"] == "applied", row["reason"]
    registered = hub.runtime.registry.get_household(row["household_id"])
    assert registered["admin_area_code"] == "R01-D02"
    assert [m["given_name"] for m in registered["members"]] == ["Amina", "Ali"]
    assert registered["location"] == {"lat": -1.28, "lon": 36.82}
    person = hub.runtime.registry.find_person_by_identifier("national_id", "12345678")
    assert person is not None and person["id"] == registered["members"][0]["id"]
    with hub.runtime.sessions() as session:
        facts = {
            a.name: a
            for a in session.scalars(
                select(SocioEconomicAttribute).where(
                    SocioEconomicAttribute.household_id == uuid.UUID(row["household_id"])
                )
            )
        }
    # The program's new question, answered: an attribute named after it, no code, no migration.
    assert facts["water_source"].value == "borehole"
    assert facts["water_source"].source_system == "intake"
    assert facts["water_source"].source_record_id == f"hh_test@2/{instance_id}"
    assert facts["rooms"].domain == "dwelling" and facts["rooms"].value == 3
    assert facts["owns"].person_id == uuid.UUID(registered["members"][0]["id"])
    assert row["result"]["household"]["id"] == row["household_id"]


def test_an_update_based_on_an_old_version_becomes_a_conflict(hub: Hub) -> None:
    created = hub.runtime.registry.register_household(
        {
            "admin_area_code": "R01-D02",
            "address": "Old road 1",
            "members": [{**head(), "relationship": "head"}],
        },
        Source("field_survey"),
    ).record
    household_id, person_id = created["id"], created["members"][0]["id"]
    update = household(
        household_id=household_id, base_version=created["version"], address="New road 2"
    )
    ok = hub.submit(update, [head(person_id=person_id, given_name="Amina B")])
    assert hub.work(1)["processed"] == 1
    assert hub.row(ok)["status"] == "applied", hub.row(ok)["reason"]
    now = hub.runtime.registry.get_household(household_id)
    assert now["address"] == "New road 2" and now["members"][0]["given_name"] == "Amina B"
    # A second enumerator's form was based on the first version: never a silent overwrite.
    stale = hub.submit(
        household(
            household_id=household_id, base_version=created["version"], address="Other road 3"
        ),
        [head(person_id=person_id)],
    )
    assert hub.work(1)["processed"] == 1
    row = hub.row(stale)
    assert row["status"] == "conflict"
    sides = row["result"]
    assert sides["registry"]["address"] == "New road 2"
    assert sides["submitted"]["household"]["address"] == "Other road 3"
    assert sides["base_version"] == created["version"]
    assert sides["current_version"] == now["version"]
    assert "address" in sides["differences"] and "members[1].given_name" in sides["differences"]
    assert hub.runtime.registry.get_household(household_id)["address"] == "New road 2"
    assert [c["instance_id"] for c in hub.service.list_submissions(STAFF, status="conflict")] == [
        stale
    ]
    # The reviewer applies it over the version they saw.
    resolved = hub.service.resolve_conflict(
        stale, "apply_submission", STAFF, registry_version=now["version"]
    )
    assert resolved["status"] == "applied" and resolved["resolved_by"] == "officer"
    assert hub.runtime.registry.get_household(household_id)["address"] == "Other road 3"


def test_fifty_submissions_with_one_bad_one(hub: Hub) -> None:
    ids = []
    for n in range(50):
        members = [head(given_name=f"Person{n}")]
        if n == 17:  # two heads: the registry refuses the household
            members.append(head(given_name="Second"))
        ids.append(hub.submit(household(), members))
    status = hub.work(50)
    assert status["processed"] == 50 and status["dead_lettered"] == 0
    rows = {r["instance_id"]: r for r in hub.service.list_submissions(STAFF, limit=200)}
    assert sum(r["status"] == "applied" for r in rows.values()) == 49
    bad = rows[ids[17]]
    assert bad["status"] == "invalid" and "head" in bad["reason"]
    assert hub.row(ids[17])["result"]["problems"]


def test_receiving_takes_one_transaction_and_publishes_the_instance_id(hub: Hub) -> None:
    """A sync burst costs one transaction per submission (bench.intake measures it): the
    row is stored already stamped as queued, then published, with no second transaction."""
    from sqlalchemy import event

    published: list[str] = []

    class Recording:
        def publish_messages(self, connector: str, messages: Any) -> None:
            assert connector == "intake"
            published.extend(m.message_id for m in messages)

    hub.service.publisher = Recording()
    statements: list[str] = []
    commits: list[int] = []

    def statement(_conn: Any, _cursor: Any, text: str, *_rest: Any) -> None:
        statements.append(text.split(None, 1)[0].upper())

    def commit(_conn: Any) -> None:
        commits.append(1)

    engine = hub.runtime.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        instance_id = hub.submit(household(), [head()])
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    assert published == [instance_id]
    assert len(commits) == 1, statements
    assert "UPDATE" not in statements and statements.count("INSERT") == 1, statements
    with hub.runtime.sessions() as session:
        row = session.scalar(
            select(IntakeSubmission).where(IntakeSubmission.instance_id == instance_id)
        )
        assert row is not None and row.queued_at is not None and row.status == "received"


def test_stored_submissions_whose_publish_failed_are_queued_again(hub: Hub) -> None:
    class Down:
        def publish_messages(self, connector: str, messages: Any) -> None:
            raise ConnectionError("broker down")

    hub.service.publisher = Down()
    instance_id = hub.submit(household(), [head()])  # stored: the device got its answer
    with hub.runtime.sessions() as session:
        row = session.scalar(
            select(IntakeSubmission).where(IntakeSubmission.instance_id == instance_id)
        )
        assert row is not None and row.queued_at is None and row.status == "received"
    assert requeue_received(hub.runtime.engine, hub.publisher, older_than_seconds=0) == 1
    assert hub.work(1)["processed"] == 1
    assert hub.row(instance_id)["status"] == "applied"
    assert requeue_received(hub.runtime.engine, hub.publisher, older_than_seconds=0) == 0


def test_an_applied_submission_opens_a_review_item_and_records_the_visit(
    db_url: str, tmp_path: Path
) -> None:
    from hub.review.service import ReviewQueue

    made = Hub(db_url, tmp_path, review=ReviewQueue())
    try:
        answers = household(location="-1.2921 36.8219 1600 8")
        first = made.submit(answers, [head()])
        made.work(1)
        household_id = made.row(first)["household_id"]
        with made.runtime.sessions() as session:
            items, total = ReviewQueue.list_items(session, state="submitted")
            visits, _ = ReviewQueue.visits_for(session, household_id)
        assert total == 1 and items[0]["household_id"] == household_id
        assert items[0]["submitted_by"] == "enumerator-7"
        assert [v["instance_id"] for v in visits] == [first]
        visit = visits[0]
        assert (visit["visited_by"], visit["outcome"]) == ("enumerator-7", "completed")
        assert visit["location"]["lat"] == pytest.approx(-1.2921)
        assert visit["location"]["lon"] == pytest.approx(36.8219)
    finally:
        made.close()
