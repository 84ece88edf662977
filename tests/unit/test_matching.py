"""Unit tests of the person matcher: normalisation, comparators, blocking, scoring, decisions."""

from __future__ import annotations

import pytest

from registry_core.matching import (
    FieldError,
    Matcher,
    MatcherConfig,
    Model,
    Outcome,
    blocking_keys,
    compare,
    make_person,
    person_from_canonical,
)
from registry_core.matching.compare import (
    address_level,
    birth_level,
    code_level,
    name_level,
    postcode_level,
)
from registry_core.matching.nicknames import same_by_nickname
from registry_core.matching.normalise import fold_name, fold_text, normalise_sex, parse_birth_date
from registry_core.matching.phonetic import soundex
from registry_core.matching.scoring import estimate_u


def person(record_id: str, **fields: str):
    base = {
        "given_name": "Amelia",
        "family_name": "Okonkwo",
        "birth_date": "1984-06-21",
        "sex": "f",
        "address": "14 Baobab Road",
        "locality": "Riverside",
        "postcode": "4410",
        "national_id": "NI-5521-0098",
    }
    base.update(fields)
    return make_person(record_id, **base)


# -- normalisation ---------------------------------------------------------------------------


def test_fold_text_strips_case_accents_punctuation_and_spacing() -> None:
    assert fold_text("  José  O'Brien-Smith ") == "jose o brien smith"
    assert fold_text("ZOË") == "zoe"
    assert fold_name("van der Berg") == fold_name("Van-der-Berg") == "vanderberg"


def test_birth_dates_in_febrl_and_iso_forms_read_alike() -> None:
    assert parse_birth_date("19840621") == parse_birth_date("1984-06-21") == "19840621"
    assert parse_birth_date("1984/6/1") == "19840601"
    assert parse_birth_date("") is None


@pytest.mark.parametrize("bad", ["19841321", "1984-02-30", "21/06/1984", "soon"])
def test_unreadable_birth_date_names_the_column(bad: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_birth_date(bad)
    assert caught.value.column == "birth_date"
    assert bad not in str(caught.value)  # no personal data in the message


def test_lenient_dates_keep_impossible_digits_and_drop_garbage() -> None:
    assert parse_birth_date("19840231", lenient=True) == "19840231"
    assert parse_birth_date("nope", lenient=True) is None


def test_sex_codes() -> None:
    assert normalise_sex("Female") == "f"
    assert normalise_sex("1") == "m"
    assert normalise_sex("unknown") is None
    with pytest.raises(FieldError):
        normalise_sex("q")


def test_soundex_classic_values() -> None:
    assert soundex("robert") == soundex("rupert") == "r163"
    assert soundex("ashcraft") == "a261"
    assert soundex("tymczak") == "t522"
    assert soundex("pfister") == "p236"
    assert soundex("") == ""


def test_nicknames() -> None:
    assert same_by_nickname("bob", "robert")
    assert same_by_nickname("sam", "samantha")
    assert same_by_nickname("liz", "beth")  # both short for elizabeth
    assert not same_by_nickname("bob", "william")
    assert not same_by_nickname("robert", "robert")  # equality is level 0, not a nickname


# -- comparators -----------------------------------------------------------------------------


def test_name_levels() -> None:
    assert name_level("amelia", "amelia", 1.0) == 0
    assert name_level("bob", "robert", 0.0) == 1
    assert name_level("a", "amelia", 0.0) == 2
    assert name_level("amelia", "zanele", 0.4) == 3


def test_birth_levels() -> None:
    assert birth_level("19840621", "19840621") == 0
    assert birth_level("19840612", "19841206") == 1  # day and month transposed
    assert birth_level("19840621", "19850621") == 2  # one part wrong
    assert birth_level("19840621", "19910305") == 3


def test_identifier_and_postcode_levels() -> None:
    assert code_level("55210098", "55210098") == 0
    assert code_level("55210098", "55120098") == 1  # adjacent transposition
    assert code_level("55210098", "91827364") == 2
    assert postcode_level("4410", "4411") == 1
    assert postcode_level("4410", "9001") == 2


def test_address_split_words_still_agree() -> None:
    a = person("a", address="7 Pridham Street")
    b = person("b", address="7 pridhamstreet")
    c = person("c", address="99 Jacaranda Crescent West")
    assert address_level(a, b) == 0
    assert address_level(a, c) == 3


def test_swapped_names_are_recognised() -> None:
    a = person("a")
    b = person("b", given_name="Okonkwo", family_name="Amelia")
    comparison = compare(a, b)
    assert comparison.swapped
    assert comparison.levels[:2] == (0, 0)
    assert not compare(a, person("c")).swapped


def test_missing_fields_carry_no_evidence() -> None:
    a = person("a", national_id="", address="")
    comparison = compare(a, person("b"))
    assert comparison.levels[4] is None and comparison.levels[5] is None
    matcher = Matcher()
    assert matcher.weight(comparison) > 0


# -- blocking --------------------------------------------------------------------------------


def test_blocking_keys_survive_swaps_transpositions_and_id_typos() -> None:
    base = set(blocking_keys(person("a", birth_date="1984-06-12")))
    swapped = set(blocking_keys(person("b", given_name="Okonkwo", family_name="Amelia")))
    transposed = set(
        blocking_keys(person("c", birth_date="1984-12-06", given_name="Zed", family_name="Q"))
    )
    id_typo = set(
        blocking_keys(person("d", national_id="NI-5521-0099", given_name="Zed", birth_date=""))
    )
    assert base & swapped
    assert base & transposed
    assert base & id_typo
    stranger = person(
        "e",
        given_name="Kofi",
        family_name="Mensah",
        birth_date="1950-01-01",
        postcode="8000",
        national_id="XY-0000-1111",
    )
    assert not base & set(blocking_keys(stranger))


def test_oversized_blocks_are_not_expanded() -> None:
    from registry_core.matching import candidate_pairs

    crowd = [person(str(i), national_id=f"{i:08d}") for i in range(8)]
    assert len(list(candidate_pairs(crowd, max_block_size=50))) == 28
    assert list(candidate_pairs(crowd, max_block_size=4)) == []


# -- scoring ---------------------------------------------------------------------------------


def test_weights_never_favour_a_weaker_level() -> None:
    records = [
        person(str(i), given_name=f"g{i % 37}x", family_name=f"f{i % 53}y", national_id=str(i))
        for i in range(300)
    ]
    weights = Model(u=estimate_u(records, samples=3000)).weights()
    for row in weights:
        assert list(row) == sorted(row, reverse=True)
    given, family = weights[0], weights[1]
    assert given[0] > 0 > given[-1] and family[0] > 0 > family[-1]


# -- decisions -------------------------------------------------------------------------------


def test_clear_match_on_the_ingest_path() -> None:
    matcher = Matcher()
    incoming = person("new", given_name="Amelya", national_id="")
    existing = [
        person("p1"),
        person(
            "p2", given_name="Kofi", family_name="Mensah", birth_date="1950-01-01", national_id="X1"
        ),
    ]
    decision = matcher.match_one(incoming, existing)
    assert decision.outcome is Outcome.MATCH
    assert decision.person_id == "p1"


def test_identifier_first() -> None:
    decision = Matcher().match_one(person("new", address="", locality=""), [person("p1")])
    assert decision.outcome is Outcome.MATCH
    assert decision.reason == "identifier match"


def test_identifier_held_twice_goes_to_review() -> None:
    decision = Matcher().match_one(person("new"), [person("p1"), person("p2", given_name="Ama")])
    assert decision.outcome is Outcome.REVIEW
    assert decision.person_id is None


def test_ambiguous_candidates_go_to_review_not_merge() -> None:
    # Two registry records both fit the incoming one: the registry may hold a duplicate.
    incoming = person("new", national_id="")
    existing = [person("p1", national_id=""), person("p2", national_id="", address="")]
    decision = Matcher().match_one(incoming, existing)
    assert decision.outcome is Outcome.REVIEW
    assert decision.person_id is None
    assert {c[0] for c in decision.candidates} == {"p1", "p2"}


def test_weak_evidence_is_a_possible_match() -> None:
    # The same two names and nothing else: plausible, not proven.
    incoming = make_person("new", given_name="Amelia", family_name="Okonkwo")
    decision = Matcher().match_one(incoming, [person("p1")])
    assert decision.outcome is Outcome.REVIEW
    assert decision.person_id is None
    assert decision.candidates and decision.candidates[0][0] == "p1"


def test_twins_in_one_household_are_not_merged() -> None:
    # Same family name, birth date, address and place; only the given name differs.
    twin = person("t", given_name="Chidi", national_id="NI-5521-0777")
    decision = Matcher().match_one(twin, [person("p1")])
    assert decision.outcome is Outcome.REVIEW
    assert Matcher().judge(twin, person("p1"))[1] is Outcome.REVIEW
    # ... whereas a differing given name with the same identifier is a recording error.
    renamed = person("r", given_name="Chidi")
    assert Matcher().match_one(renamed, [person("p1")]).outcome is Outcome.MATCH


def test_different_names_with_shared_facts_are_not_merged() -> None:
    # Neighbours born the same day: no name in common, no identifier.
    other = person("o", given_name="Chidi", family_name="Eze", national_id="")
    decision = Matcher().match_one(other, [person("p1", national_id="")])
    assert decision.outcome is not Outcome.MATCH


def test_no_candidates_and_strangers() -> None:
    matcher = Matcher()
    assert matcher.match_one(person("x"), []).outcome is Outcome.NO_MATCH
    stranger = person(
        "s",
        given_name="Kofi",
        family_name="Mensah",
        birth_date="1950-01-01",
        sex="m",
        address="1 Other Lane",
        locality="Hilltop",
        postcode="9000",
        national_id="ZZ-1",
    )
    assert matcher.match_one(person("x"), [stranger]).outcome is Outcome.NO_MATCH


def test_batch_pairs_with_nickname_swap_and_transitive_closure() -> None:
    records = [
        person("a", given_name="Robert", family_name="Tembo", sex="m"),
        person("b", given_name="Bob", family_name="Tembo", sex="m", national_id=""),
        person("c", given_name="Tembo", family_name="Robert", sex="m", address=""),
        person(
            "d",
            given_name="Kofi",
            family_name="Mensah",
            birth_date="1950-01-01",
            sex="m",
            national_id="ZZ-1",
        ),
    ]
    pairs = Matcher().pairs(records)
    found = {(p.id_a, p.id_b) for p in pairs if p.outcome is Outcome.MATCH}
    assert found == {("a", "b"), ("a", "c"), ("b", "c")}
    assert all(p.id_a < p.id_b for p in pairs)


def test_threshold_moves_the_decision() -> None:
    a, b = person("a"), person("b", given_name="Amelya", address="", national_id="")
    strict = Matcher(MatcherConfig(match_threshold=0.999999999, review_threshold=0.5))
    lax = Matcher(MatcherConfig(match_threshold=0.5, review_threshold=0.1))
    assert strict.judge(a, b)[1] is Outcome.REVIEW
    assert lax.judge(a, b)[1] is Outcome.MATCH


def test_one_name_in_the_wrong_field_counts_as_a_swap() -> None:
    full = person("a", given_name="Keex", family_name="Kothroth")
    lone = person("b", given_name="Kothroth", family_name="")
    comparison = compare(full, lone)
    assert comparison.swapped
    assert comparison.levels[:2] == (None, 0)
    assert comparison.names_support


def test_short_names_with_one_typo_are_close() -> None:
    assert name_level("nul", "nyl") == 2
    assert name_level("ann", "bob") == 3


def test_review_pairs_only_when_asked() -> None:
    records = [
        make_person("a", given_name="Amelia", family_name="Okonkwo"),
        make_person("b", given_name="Amelia", family_name="Okonkwo"),
    ]
    with_review = Matcher().pairs(records)
    assert [(p.id_a, p.id_b, p.outcome) for p in with_review] == [("a", "b", Outcome.REVIEW)]
    assert Matcher().pairs(records, include_review=False) == []


def test_canonical_person_converts_with_household_context() -> None:
    canonical = {
        "id": "0b0e7c5e-8d55-4c3e-9f59-4d1f1c0c2a11",
        "given_name": "Amélia",
        "family_name": "Okonkwo",
        "sex": "female",
        "birth_date": "1984-06-21",
        "identifiers": [
            {"system": "tax_id", "value": "T-1"},
            {"system": "national_id", "value": "NI 5521 0098"},
        ],
    }
    record = person_from_canonical(
        canonical, household={"address": "14 Baobab Rd", "admin_area_code": "R01-D02"}
    )
    assert record.id == canonical["id"]
    assert (record.given, record.birth, record.sex) == ("amelia", "19840621", "f")
    assert record.national_id == "NI55210098"
    assert record.locality == "r01 d02"
    same = person_from_canonical({**canonical, "id": None}, record_id="msg-1")
    assert same.id == "msg-1"
    assert set(blocking_keys(record)) & set(blocking_keys(same))


def test_collision_probability_is_the_exact_u_of_equality() -> None:
    from registry_core.matching.scoring import collision_probability

    assert collision_probability(["a", "a", "b", "c"]) == pytest.approx(2 / 12)
    assert collision_probability(["a"]) is None


def test_sharing_a_rare_name_weighs_more_than_a_common_one() -> None:
    records = [person(f"s{i}", family_name="Smith", national_id=str(i)) for i in range(200)]
    records += [
        person(f"o{i}", family_name=f"Other{i:03d}x", national_id=f"x{i}") for i in range(200)
    ]
    records += [person("r1", family_name="Quagmire"), person("r2", family_name="Quagmire")]
    matcher = Matcher().fitted(records)
    common = compare(records[0], records[1])
    rare = compare(records[-2], records[-1])
    assert common.levels[1] == rare.levels[1] == 0
    common_bits = matcher.weight(common, records[0]) - matcher.weight(common)
    rare_bits = matcher.weight(rare, records[-2]) - matcher.weight(rare)
    assert rare_bits > 0 > common_bits
