"""Merging two person records and undoing it (both databases): what moves, what the merge
refuses, and that an unmerge restores both records and their histories even after the
survivor was edited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from registry_core.errors import ConflictError
from registry_core.models import OutboxEvent
from registry_core.service import Source
from registry_core.services.merges import Actor, MergeRefused, UnsafeMerge

CT_OVC = Source("program_ct_ovc", "CT-1", datetime(2025, 3, 1, tzinfo=UTC))
OPCT = Source("program_opct", "OP-7", datetime(2025, 6, 1, tzinfo=UTC))
STAFF = Actor("token:amina")


def _register(registry, source: Source, area: str, members: list[dict[str, Any]]) -> dict:
    return registry.register_household(
        {"admin_area_code": area, "address": "Plot 4, Kibera", "members": members}, source
    ).record


def _person(given, family, birth, relationship="head", sex="female", nid=None):
    record = {
        "given_name": given,
        "family_name": family,
        "birth_date": birth,
        "sex": sex,
        "relationship": relationship,
    }
    if nid:
        record["identifiers"] = [{"system": "national_id", "value": nid}]
    return record


def _without_version(record: dict[str, Any]) -> dict[str, Any]:
    """The record without what every write changes (versions and change times)."""
    kept = {k: v for k, v in record.items() if k not in ("version", "updated_at")}
    if "members" in kept:
        kept["members"] = [_without_version(m) for m in kept["members"]]
    return kept


def _events(registry, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in registry.outbox_since(0, 1000) if e.routing_key == kind]


@pytest.fixture
def pair(registry):
    """Wanjiru in the CT-OVC list (with her national ID and a child) and, spelled Wanjiro,
    alone in the OPCT list with a consent and a fact of her own."""
    first = _register(
        registry,
        CT_OVC,
        "KE-047-01",
        [
            _person("Wanjiru", "Kamau", "1979-03-14", nid="5551234567"),
            _person("Otieno", "Kamau", "2004-11-02", "child", "male"),
        ],
    )
    second = _register(registry, OPCT, "KE-047-02", [_person("Wanjiro", "Kamau", "1979-03-14")])
    survivor = first["members"][0]["id"]
    merged = second["members"][0]["id"]
    registry.grant_consent("opct", "cash_transfer", "paper", OPCT, person_id=merged)
    registry.record_person_attributes(
        merged, [{"domain": "income", "name": "pension", "period": "2025", "value": 3000}], OPCT
    )
    return registry, first, second, survivor, merged


def test_a_merge_moves_everything_and_an_unmerge_restores_both_records(pair):
    registry, _first, second, survivor, merged = pair
    merged_before = registry.get_person(merged)
    merged_history = registry.provenance("person", merged)
    survivor_before = registry.get_person(survivor)
    second_before = registry.get_household(second["id"])

    merge = registry.merge_persons(survivor, merged, reason="same woman, two lists", actor=STAFF)

    assert merge["state"] == "merged" and merge["moved"]["identifiers"] == 0
    assert merge["moved"]["memberships"] == 1 and merge["moved"]["memberships_ended"] == 1
    assert merge["moved"]["consents"] == 1 and merge["moved"]["attributes"] == 1
    assert registry.survivor_of(merged) == survivor and registry.survivor_of(survivor) is None
    after = registry.get_person(survivor)
    # She lives in one household at a time: the OPCT household's membership is history now.
    ended = [m for m in after["memberships"] if m["household_id"] == second["id"]]
    assert ended and ended[0]["end_reason"] == "merged_duplicate"
    assert [c["person_id"] for c in registry.list_consents(person_id=survivor)] == [survivor]
    # Both lists' spellings are now her provenance; the two lists rank alike, so the record
    # staff chose to keep keeps its spelling (the other list's is newer, not better).
    given = {(a["source_system"], a["value"]) for a in registry.provenance("person", survivor)}
    assert {("program_ct_ovc", "Wanjiru"), ("program_opct", "Wanjiro")} <= given
    assert after["given_name"] == "Wanjiru"
    household = registry.get_household(second["id"])
    assert household["status"] == "needs_review" and household["head_person_id"] == survivor
    [event] = _events(registry, "person.merged")
    assert event["person_id"] == survivor and event["merged_person_id"] == merged
    assert set(event["household_ids"]) == {second["id"]}
    [changed] = [e for e in _events(registry, "household.updated") if e.get("reason")]
    assert changed["household_id"] == second["id"] and changed["reason"] == "merged_duplicate"
    assert changed["changed_fields"] == ["members", "head_person_id", "status"]
    assert changed["status"] == "needs_review" and changed["person_id"] == survivor

    # Writes go to the live record: the merged-away one refuses them, naming the survivor.
    with pytest.raises(ConflictError, match=f"merged into {survivor}"):
        registry.update_person(merged, {"other_names": "Njeri"}, Source("registry_staff"))

    # Staff correct her record after the merge: that edit belongs to the survivor.
    registry.update_person(survivor, {"other_names": "Njeri"}, Source("registry_staff", "fix-1"))

    undone = registry.unmerge(merge["id"], reason="two women after all", actor=STAFF)

    assert undone["state"] == "unmerged" and undone["unmerge_notes"] == []
    assert registry.survivor_of(merged) is None
    assert _without_version(registry.get_person(merged)) == _without_version(merged_before)
    assert registry.provenance("person", merged) == merged_history
    restored = registry.get_person(survivor)
    assert restored["other_names"] == "Njeri"  # the later edit stays
    expected = {**_without_version(survivor_before), "other_names": "Njeri"}
    assert _without_version(restored) == expected
    assert _without_version(registry.get_household(second["id"])) == _without_version(second_before)
    assert [c["person_id"] for c in registry.list_consents(person_id=merged)] == [merged]
    events = _events(registry, "person.unmerged")
    assert [e["person_id"] for e in events] == [merged, survivor]  # one about each
    assert {(e["restored_person_id"], e["survivor_person_id"]) for e in events} == {
        (merged, survivor)
    }
    assert events[0]["admin_area_code"] == "KE-047-02"
    restored_household = [
        e for e in _events(registry, "household.updated") if e.get("reason") == "unmerged"
    ]
    assert [(e["household_id"], e["status"], e["person_id"]) for e in restored_household] == [
        (second["id"], "active", merged)
    ]
    with pytest.raises(MergeRefused, match="already undone"):
        registry.unmerge(merge["id"], reason="again", actor=STAFF)


def test_unsafe_and_repeated_merges_are_refused(pair, registry):
    _, _, _, survivor, merged = pair
    other = _register(
        registry, OPCT, "KE-047-03", [_person("Wanjiru", "Kamau", "1979-03-14", nid="5557654321")]
    )["members"][0]["id"]
    with pytest.raises(UnsafeMerge) as refused:
        registry.merge_persons(survivor, other, reason="looks the same", actor=STAFF)
    assert refused.value.problems == ["the two hold different national_id identifiers"]
    assert "5557654321" not in str(refused.value)
    with pytest.raises(MergeRefused, match="themself"):
        registry.merge_persons(survivor, survivor, reason="oops", actor=STAFF)

    registry.merge_persons(survivor, merged, reason="same woman", actor=STAFF)
    with pytest.raises(MergeRefused, match="already merged"):
        registry.merge_persons(other, merged, reason="again", actor=STAFF)
    forced = registry.merge_persons(
        survivor, other, reason="same woman", actor=STAFF, forced_reason="ID card reissued"
    )
    assert forced["forced_reason"] == "ID card reissued"
    assert forced["unsafe"] == ["the two hold different national_id identifiers"]
    held = [i["system"] for i in registry.get_person(survivor)["identifiers"]]
    assert held == ["national_id", "national_id"]


def test_an_unmerge_keeps_what_changed_after_the_merge(pair):
    registry, _first, second, survivor, merged = pair
    merge = registry.merge_persons(survivor, merged, reason="same woman", actor=STAFF)
    # Someone edits the flagged household meanwhile: that edit is not the merge's to undo.
    registry.update_household(second["id"], {"address": "Plot 5"}, Source("registry_staff"))
    undone = registry.unmerge(merge["id"], reason="two women", actor=STAFF)
    assert undone["state"] == "unmerged"
    household = registry.get_household(second["id"])
    assert household["head_person_id"] == merged
    assert household["address"] == "Plot 5"  # a later edit of the household is kept
    with registry._ws.sessions() as session:  # the merge's events are in the outbox, in order
        kinds = [
            e.routing_key
            for e in session.query(OutboxEvent).order_by(OutboxEvent.sequence)
            if e.routing_key.startswith("person.")
        ]
    assert kinds[-3:] == ["person.merged", "person.unmerged", "person.unmerged"]


def test_a_better_ranked_source_of_the_merged_record_wins_and_goes_back(registry):
    """Precedence still rules a merge: the civil registry's birth date (ranked above a
    program's list) becomes the survivor's, and leaves again with the unmerge."""
    survivor = _register(registry, CT_OVC, "KE-1", [_person("Halima", "Hassan", "1990-12-12")])[
        "members"
    ][0]["id"]
    civil = Source("civil_registry", "BRN-9", datetime(2024, 1, 1, tzinfo=UTC))
    merged = _register(registry, civil, "KE-2", [_person("Halima", "Hassan", "1990-12-21")])[
        "members"
    ][0]["id"]
    merge = registry.merge_persons(survivor, merged, reason="same woman", actor=STAFF)
    assert registry.get_person(survivor)["birth_date"] == "1990-12-21"
    registry.unmerge(merge["id"], reason="two women", actor=STAFF)
    assert registry.get_person(survivor)["birth_date"] == "1990-12-12"
    assert registry.get_person(merged)["birth_date"] == "1990-12-21"


def test_an_unmerge_waits_for_a_later_merge_of_the_survivor(pair, registry):
    _, _, _, survivor, merged = pair
    third = _register(registry, OPCT, "KE-047-09", [_person("Wanjiru", "Kamau", "1979-03-14")])[
        "members"
    ][0]["id"]
    first = registry.merge_persons(survivor, merged, reason="same woman", actor=STAFF)
    registry.merge_persons(third, survivor, reason="same woman again", actor=STAFF)
    assert registry.survivor_of(merged) == third  # reads follow the chain to the live record
    with pytest.raises(MergeRefused, match="undo that merge first"):
        registry.unmerge(first["id"], reason="two women", actor=STAFF)
