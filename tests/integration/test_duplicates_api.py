"""The duplicate scan, the match review queue, merges and unmerges over HTTP (both databases):
a scan finds the planted pairs once, reviews show both records with provenance, decisions and
their refusals, roles, reads of a merged person, and a scan that resumes after a crash."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.duplicates.runner import ScanRunner
from hub.settings import load_settings
from registry_core.matching import Matcher, Outcome, PersonRecord
from registry_core.service import Registry, Source

LIST_A = Source("program_ct_ovc", "CT-1")
LIST_B = Source("program_opct", "OP-1")


def _head(given: str, family: str, birth: str, sex: str = "female", nid: str | None = None):
    person: dict[str, Any] = {
        "given_name": given,
        "family_name": family,
        "birth_date": birth,
        "sex": sex,
        "relationship": "head",
    }
    if nid:
        person["identifiers"] = [{"system": "national_id", "value": nid}]
    return person


def _register(registry: Registry, source: Source, area: str, person: dict[str, Any]) -> str:
    record = registry.register_household(
        {"admin_area_code": area, "address": f"{area} village", "members": [person]}, source
    ).record
    return str(record["members"][0]["id"])


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path)
    app = create_app(settings)
    registry = app.extensions["srhub_runtime"].registry
    registry.ensure_identifier_systems()

    def auth(*roles: str, areas: tuple[str, ...] = ()) -> dict[str, str]:
        token = issue_token(settings, subject="tester", roles=list(roles), admin_areas=areas)
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.registry = registry  # type: ignore[attr-defined]
    client.app_ref = app  # type: ignore[attr-defined]
    yield client
    runner = app.extensions.get("srhub_duplicate_scans")
    if runner is not None:
        runner.join(30)
    app.extensions["srhub_runtime"].close()


@pytest.fixture
def people(api: Any) -> dict[str, str]:
    """Two planted duplicate pairs (a typo; a spelling) and people who only look alike."""
    registry = api.registry
    return {
        "achieng_a": _register(
            registry, LIST_A, "KE-042-01", _head("Achieng", "Otieno", "1961-02-03")
        ),
        "achieng_b": _register(
            registry, LIST_B, "KE-042-02", _head("Achieng", "Otieeno", "1961-02-03")
        ),
        "mohamed_a": _register(
            registry, LIST_A, "KE-007-01", _head("Mohamed", "Abdi", "1950-07-01", "male")
        ),
        "mohamed_b": _register(
            registry, LIST_B, "KE-007-02", _head("Mohammed", "Abdi", "1950-07-01", "male")
        ),
        "kamau": _register(
            registry, LIST_A, "KE-022-01", _head("Kamau", "Njoroge", "1988-05-05", "male")
        ),
        "wambui": _register(
            registry, LIST_B, "KE-030-01", _head("Wambui", "Karanja", "1995-09-09")
        ),
    }


def _wait_done(api: Any, scan_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        scan = api.get(f"/api/v1/duplicates/scans/{scan_id}", headers=headers).json
        if scan["state"] in ("done", "failed"):
            return scan
        time.sleep(0.1)
    pytest.fail("the scan did not finish within 60 s")


def _pairs(api: Any, headers: dict[str, str], status: str = "open") -> dict[frozenset, dict]:
    page = api.get(f"/api/v1/match-reviews?kind=duplicate&status={status}", headers=headers).json
    return {frozenset(c["person_id"] for c in r["candidates"]): r for r in page["items"]}


def test_scan_review_merge_keep_apart_and_unmerge(api: Any, people: dict[str, str]) -> None:
    staff, auditor = api.auth("registry_staff"), api.auth("auditor")
    assert api.post("/api/v1/duplicates/scans", headers=auditor).status_code == 403
    assert (
        api.post(
            "/api/v1/duplicates/scans", headers=api.auth("supervisor", areas=("KE",))
        ).status_code
        == 403
    )
    started = api.post("/api/v1/duplicates/scans", headers=staff)
    assert started.status_code == 202, started.json
    assert started.headers["Location"].endswith(started.json["id"])
    scan = _wait_done(api, started.json["id"], auditor)
    assert scan["state"] == "done" and scan["progress"]["percent"] == 100.0
    assert scan["candidates_found"] == 2 and scan["already_known"] == 0
    pairs = _pairs(api, staff)
    achieng = frozenset({people["achieng_a"], people["achieng_b"]})
    mohamed = frozenset({people["mohamed_a"], people["mohamed_b"]})
    assert set(pairs) == {achieng, mohamed}

    # Both records side by side, with where each value came from.
    detail = api.get(f"/api/v1/match-reviews/{pairs[achieng]['id']}", headers=auditor).json
    sides = {s["person_id"]: s for s in detail["people"]}
    assert set(sides) == achieng
    family = {
        (a["source_system"], a["value"])
        for s in sides.values()
        for a in s["provenance"]
        if a["field"] == "family_name"
    }
    assert family == {("program_ct_ovc", "Otieno"), ("program_opct", "Otieeno")}
    assert {s["household"]["admin_area_code"] for s in sides.values()} == {"KE-042-01", "KE-042-02"}

    # Deciding: reasons required, auditors may not, the survivor must be one of the pair.
    merge_url = f"/api/v1/match-reviews/{pairs[achieng]['id']}/merge"
    assert api.post(merge_url, json={}, headers=staff).status_code == 400
    assert api.post(merge_url, json={"reason": "same"}, headers=auditor).status_code == 403
    wrong = api.post(
        merge_url, json={"reason": "same", "survivor_id": people["kamau"]}, headers=staff
    )
    assert wrong.status_code == 409 and "one of the pair" in wrong.json["detail"]
    forced = api.post(merge_url, json={"reason": "same", "force_reason": "sure"}, headers=staff)
    assert forced.status_code == 403
    merged = api.post(
        merge_url,
        json={"reason": "one woman, two lists", "survivor_id": people["achieng_a"]},
        headers=staff,
    )
    assert merged.status_code == 201, merged.json
    merge = merged.json
    assert merge["survivor_id"] == people["achieng_a"] and merge["merged_id"] == people["achieng_b"]
    again = api.post(merge_url, json={"reason": "again"}, headers=staff)
    assert again.status_code == 409 and "already decided" in again.json["detail"]

    # A read of the merged-away person points to the survivor (API: 307; FHIR: replaced-by).
    moved = api.get(f"/api/v1/persons/{people['achieng_b']}", headers=staff)
    assert moved.status_code == 307 and moved.json["merged_into"] == people["achieng_a"]
    assert moved.headers["Location"].endswith(people["achieng_a"])
    patient = api.get(f"/fhir/Patient/{people['achieng_b']}", headers=staff).json
    assert patient["active"] is False
    assert patient["link"] == [
        {"other": {"reference": f"Patient/{people['achieng_a']}"}, "type": "replaced-by"}
    ]

    keep = api.post(
        f"/api/v1/match-reviews/{pairs[mohamed]['id']}/keep-apart",
        json={"reason": "father and son share the name"},
        headers=staff,
    )
    assert keep.status_code == 200 and keep.json["status"] == "kept_apart"
    assert _pairs(api, staff) == {}

    undo_url = f"/api/v1/merges/{merge['id']}/unmerge"
    assert api.post(undo_url, json={"reason": "x"}, headers=staff).status_code == 400
    undone = api.post(undo_url, json={"reason": "two women after all"}, headers=staff)
    assert undone.status_code == 200 and undone.json["state"] == "unmerged"
    assert api.post(undo_url, json={"reason": "once more"}, headers=staff).status_code == 409
    back = api.get(f"/api/v1/persons/{people['achieng_b']}", headers=staff)
    assert back.status_code == 200 and back.json["family_name"] == "Otieeno"
    assert _pairs(api, staff, "unmerged")[achieng]["resolution"].startswith("merge undone")

    # A second scan proposes nothing decided again.
    second = api.post("/api/v1/duplicates/scans", headers=staff).json
    rescan = _wait_done(api, second["id"], staff)
    assert rescan["candidates_found"] == 0 and rescan["already_known"] == 2
    assert _pairs(api, staff) == {}


def test_unsafe_merges_need_an_administrator_and_a_reason(api: Any) -> None:
    registry = api.registry
    first = _register(
        registry, LIST_A, "KE-1", _head("Akinyi", "Odhiambo", "1970-01-01", nid="5551234567")
    )
    second = _register(
        registry, LIST_B, "KE-2", _head("Akinyi", "Odhiambo", "1970-01-01", nid="5557654321")
    )
    runner = ScanRunner(api.app_ref.extensions["srhub_runtime"].sessions, registry._ws.cipher)
    runner.request_scan("test", start=False)
    assert runner.run_pending() == 1
    [review] = _pairs(api, api.auth("registry_staff")).values()
    url = f"/api/v1/match-reviews/{review['id']}/merge"
    refused = api.post(url, json={"reason": "same"}, headers=api.auth("registry_staff"))
    assert refused.status_code == 409
    assert refused.json["unsafe"] == ["the two hold different national_id identifiers"]
    assert "5557654321" not in refused.text
    forced = api.post(
        url, json={"reason": "same", "force_reason": "card reissued"}, headers=api.auth("admin")
    )
    assert forced.status_code == 201 and forced.json["forced_reason"] == "card reissued"
    assert {forced.json["survivor_id"], forced.json["merged_id"]} == {first, second}


class _Crash(BaseException):
    """Stands for the process dying between two batches (not an error the runner handles)."""


def test_an_interrupted_scan_resumes_after_its_cursor(api: Any, people: dict[str, str]) -> None:
    runtime = api.app_ref.extensions["srhub_runtime"]
    batches: list[uuid.UUID] = []

    def crash_after_first(scan_id: uuid.UUID) -> None:
        batches.append(scan_id)
        raise _Crash

    crashing = ScanRunner(
        runtime.sessions, runtime.cipher, batch_keys=3, after_batch=crash_after_first
    )
    scan_id = crashing.request_scan("test", start=False)["id"]
    with pytest.raises(_Crash):
        crashing.run_pending()
    staff = api.auth("registry_staff")
    halfway = api.get(f"/api/v1/duplicates/scans/{scan_id}", headers=staff).json
    assert halfway["state"] == "running" and halfway["progress"]["keys_done"] == 3
    # Another process finds it stalled and takes it over from its cursor.
    resumer = ScanRunner(runtime.sessions, runtime.cipher, batch_keys=3, stale_after=0)
    assert resumer.run_pending() == 1
    done = resumer.get(scan_id)
    assert done is not None and done["state"] == "done"
    assert done["progress"]["keys_done"] == done["progress"]["keys_total"]
    assert done["candidates_found"] == 2
    assert len(_pairs(api, staff)) == 2


def test_one_scan_at_a_time_large_blocks_and_a_failing_scan(
    api: Any, people: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    from registry_core.matching import Matcher, MatcherConfig

    runtime = api.app_ref.extensions["srhub_runtime"]
    staff = api.auth("registry_staff")
    # A matcher that expands no block of more than one person: every pair's block is "too
    # large", so nothing is compared and nothing queued, and the count says why.
    narrow = ScanRunner(
        runtime.sessions, runtime.cipher, matcher=Matcher(MatcherConfig(max_block_size=1))
    )
    queued = narrow.request_scan("test", start=False)
    refused = api.post("/api/v1/duplicates/scans", headers=staff)
    assert refused.status_code == 409 and refused.json["scan"]["id"] == queued["id"]
    api.app_ref.extensions["srhub_duplicate_scans"].join(30)  # the API's runner took it
    done = narrow.get(queued["id"])
    assert done is not None and done["state"] == "done"
    assert done["pairs_compared"] > 0  # the API's own runner used the default matcher

    narrow.request_scan("test", start=False)
    assert narrow.run_pending() == 1
    latest = narrow.recent(1)[0]
    assert latest["pairs_compared"] == 0 and latest["blocks_too_large"] >= 2
    assert latest["candidates_found"] == 0

    class Broken(Matcher):
        def judge(self, a: Any, b: Any) -> Any:
            raise RuntimeError("Grace Ochieng 5551234567")  # data must not reach the row

    _register(api.registry, LIST_A, "KE-9", _head("Zawadi", "Mwangi", "1999-01-01"))
    _register(api.registry, LIST_B, "KE-9", _head("Zawadi", "Mwangi", "1999-01-01"))
    failing = ScanRunner(runtime.sessions, runtime.cipher, matcher=Broken())
    failing.request_scan("test", start=False)
    failing.run_pending()
    failed = failing.recent(1)[0]
    assert failed["state"] == "failed" and failed["error"].startswith("RuntimeError")
    assert "Grace" not in failed["error"] and "5551234567" not in failed["error"]
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelname != "DEBUG")
    assert "RuntimeError" in logged and "Grace" not in logged
    assert api.get(f"/api/v1/duplicates/scans/{uuid.uuid4()}", headers=staff).status_code == 404
    listed = api.get("/api/v1/duplicates/scans", headers=api.auth("auditor")).json["items"]
    assert listed[0]["id"] == failed["id"]


def test_who_reads_what_of_the_queue(api: Any) -> None:
    registry = api.registry
    _register(registry, LIST_A, "KE-1", _head("Akinyi", "Odhiambo", "1970-01-01", nid="5551234567"))
    _register(registry, LIST_B, "KE-2", _head("Akinyi", "Odhiambo", "1970-01-01"))
    # An incoming record the ingest could not place sits in the same queue.
    incoming = registry.queue_review(
        kind="death",
        reason="identifiers of this record belong to different people",
        record={"deceased": {"identifiers": [{"system": "national_id", "value": "5559990001"}]}},
        candidates=[],
        source=Source("civil_registry", "DRN-1"),
        message_id="m-1",
    )
    runtime = api.app_ref.extensions["srhub_runtime"]
    runner = ScanRunner(runtime.sessions, runtime.cipher)
    runner.request_scan("test", start=False)
    runner.run_pending()

    auditor = api.auth("auditor")
    everything = api.get("/api/v1/match-reviews?status=all", headers=auditor).json
    assert everything["total"] == 2
    death = next(i for i in everything["items"] if i["kind"] == "death")
    assert "5559990001" not in str(death["record"])  # masked for auditors
    staff_view = api.get(f"/api/v1/match-reviews/{incoming}", headers=api.auth("registry_staff"))
    assert "5559990001" in str(staff_view.json["record"])
    [pair] = [i for i in everything["items"] if i["kind"] == "duplicate"]
    detail = api.get(f"/api/v1/match-reviews/{pair['id']}", headers=auditor).json
    values = [i["value"] for s in detail["people"] for i in s["person"]["identifiers"]]
    assert values and all(v != "5551234567" for v in values)

    field_worker = api.auth("field_worker", areas=("KE",))
    assert api.get("/api/v1/match-reviews", headers=field_worker).status_code == 403
    # A supervisor sees the duplicate pairs of their areas, never an incoming record.
    supervisor = api.auth("supervisor", areas=("KE",))
    theirs = api.get("/api/v1/match-reviews?status=all", headers=supervisor).json
    assert [i["kind"] for i in theirs["items"]] == ["duplicate"]
    assert api.get(f"/api/v1/match-reviews/{incoming}", headers=supervisor).status_code == 403
    assert api.get("/api/v1/match-reviews?status=later", headers=auditor).status_code == 400
    keep = api.post(
        f"/api/v1/match-reviews/{incoming}/keep-apart",
        json={"reason": "not a pair"},
        headers=api.auth("registry_staff"),
    )
    assert keep.status_code == 409 and "incoming death record" in keep.json["detail"]
    unknown = api.post(
        f"/api/v1/merges/{uuid.uuid4()}/unmerge",
        json={"reason": "why not"},
        headers=api.auth("registry_staff"),
    )
    assert unknown.status_code == 404


def test_simultaneous_requests_queue_one_scan(api: Any) -> None:
    import threading

    from hub.duplicates.runner import ScanAlreadyActive

    runtime = api.app_ref.extensions["srhub_runtime"]
    runner = ScanRunner(runtime.sessions, runtime.cipher)
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def ask() -> None:
        start.wait()
        try:
            runner.request_scan("test", start=False)
            outcomes.append("queued")
        except ScanAlreadyActive:
            outcomes.append("refused")

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["queued", "refused", "refused", "refused"]
    assert runner.run_pending() == 1
    assert runner.request_scan("test", start=False)["state"] == "queued"  # the slot is free


class _RulesEverythingOut(Matcher):
    """The built-in matcher that rules every pair out, counting the pairs it was asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.judged = 0

    def judge(self, a: PersonRecord, b: PersonRecord) -> tuple[float, Outcome]:
        self.judged += 1
        return 0.0, Outcome.NO_MATCH


def test_the_scan_judges_with_the_hub_s_own_matcher(api: Any, people: dict[str, str]) -> None:
    """A scan decides as the hub resolves incoming records: with ``runtime.matcher`` (the
    trained model when ``settings.matcher_model`` names one), not a matcher of its own."""
    hubs_matcher = _RulesEverythingOut()
    api.app_ref.extensions["srhub_runtime"].__dict__["matcher"] = hubs_matcher
    staff = api.auth("registry_staff")
    started = api.post("/api/v1/duplicates/scans", headers=staff)
    assert started.status_code == 202, started.json
    scan = _wait_done(api, started.json["id"], staff)
    assert scan["state"] == "done" and hubs_matcher.judged >= 2
    assert scan["candidates_found"] == 0 and _pairs(api, staff) == {}
