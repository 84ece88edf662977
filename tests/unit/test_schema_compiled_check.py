"""The compiled schema check of the mapping engine (``mappings.schema_check``) agrees with
jsonschema, the authority: it never passes a record jsonschema refuses, and it writes no
defaults into the record it checks."""

from __future__ import annotations

import copy

import pytest

from mappings.schema_check import check, compiled_check, fast_validator

GOOD = {
    "household_ref": "H1",
    "household": {"admin_area_code": "R01-D01", "location": {"lat": 1.5, "lon": 2.5}},
    "person": {
        "given_name": "Ann",
        "family_name": "Doe",
        "sex": "female",
        "birth_date": "1980-02-03",
        "relationship": "head",
        "identifiers": [{"system": "national_id", "value": "123"}],
    },
}


def _with(path: list[str], value: object) -> dict:
    record = copy.deepcopy(GOOD)
    node = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return record


@pytest.mark.parametrize(
    "record",
    [
        _with(["person", "birth_date"], "2024-02-30"),  # no such day
        _with(["person", "birth_date"], "20240201"),  # not the ISO form
        _with(["person", "sex"], "f"),
        _with(["household", "admin_area_code"], "r01"),
        _with(["household", "location"], {"lat": 1.0}),
        _with(["person", "surprise"], 1),
        _with(["household_ref"], ""),
    ],
)
def test_it_refuses_what_jsonschema_refuses(record):
    name = "inbound/household_row.json"
    quick = compiled_check(name)
    assert quick is not None
    assert not fast_validator(name).is_valid(record)
    assert quick(record) is False
    assert check(name, record)  # the authority's violations, worded as ever


def test_a_good_record_passes_unchanged():
    name = "inbound/household_row.json"
    record = copy.deepcopy(GOOD)
    quick = compiled_check(name)
    assert quick is not None and quick(record) is True
    assert record == GOOD
    assert check(name, record) == []
