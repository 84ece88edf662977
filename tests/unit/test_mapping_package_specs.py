"""Mapping specs shipped inside a plugin's package: ``"<package>:<relative/path>.toml"``.

Each test makes a package of its own under ``tmp_path`` (a unique name, on ``sys.path`` for
the test only, and out of ``sys.modules`` afterwards), so nothing is left behind.
"""

from __future__ import annotations

import importlib
import json
import sys
import tomllib
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest

from mappings.engine import IdentifierReview, SpecError, SpecNotFound, load_spec, map_record
from standards.identifiers import IdentifierProfile, parse_profile

SPEC = """
[spec]
name = "{name}"
version = 2
output_schema = "inbound/person_attributes.json"

[[fields]]
target = "person.identifiers[system=national_id].value"
from = "nin"
transforms = [{{ name = "identifier", system = "national_id", subject = true }}]

[[fields]]
target = "observed_on"
from = "seen"
transforms = [{{ name = "date", formats = ["dd/mm/yyyy"] }}]

[[fields]]
target = "attributes[name=water_source].domain"
const = "dwelling"

[[fields]]
target = "attributes[name=water_source].value"
from = "water"
transforms = [{{ name = "map", values = {{ TAP = "piped", WELL = "well" }} }}]
required = true

[[fields]]
target = "attributes[name=metered].domain"
const = "dwelling"

[[fields]]
target = "attributes[name=metered].value"
hook = "absent"
args = {{ paths = ["unmetered_since"] }}
"""


def ten_digit_profile() -> IdentifierProfile:
    data = tomllib.loads(
        resources.files("standards.identifiers").joinpath("default.toml").read_text("utf-8")
    )
    data["systems"]["national_id"].update(pattern="[0-9]{10}")
    return parse_profile(data, "test")


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def make(files: dict[str, str]) -> str:
        name = f"plugin_{uuid.uuid4().hex[:12]}"
        root = tmp_path / name
        root.mkdir()
        (root / "__init__.py").write_text("", "utf-8")
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
        made.append(name)
        importlib.invalidate_caches()
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for name in made:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def test_a_package_spec_maps_with_the_built_in_transforms_and_hooks(make_package):
    package = make_package({"specs/utility_meter.toml": SPEC.format(name="utility_meter")})
    spec = load_spec(f"{package}:specs/utility_meter.toml")
    assert (spec.name, spec.version, spec.file) == (
        "utility_meter",
        2,
        f"{package}:specs/utility_meter.toml",
    )
    record = {"nin": " AB 12-34 ", "seen": "02/03/2025", "water": "well"}
    assert map_record(f"{package}:specs/utility_meter.toml", record) == {
        "person": {"identifiers": [{"system": "national_id", "value": "AB1234"}]},
        "observed_on": "2025-03-02",
        "attributes": [
            {"name": "water_source", "domain": "dwelling", "value": "well"},
            {"name": "metered", "domain": "dwelling", "value": True},
        ],
    }
    # The registry's own country profile applies to a plugin's spec like any other: the
    # subject's identifier breaking it sends the record to review.
    with pytest.raises(IdentifierReview) as caught:
        spec.map(record, ten_digit_profile())
    assert [p.rule for p in caught.value.problems] == ["identifier:pattern"]


def test_a_package_spec_is_cached_by_name(make_package):
    package = make_package({"m/x_rows.json": _json_spec("x_rows")})
    assert load_spec(f"{package}:m/x_rows.json") is load_spec(f"{package}:m/x_rows.json")


def _json_spec(name: str) -> str:
    return json.dumps(
        {
            "spec": {"name": name, "version": 1, "output_schema": "inbound/person_attributes.json"},
            "fields": [{"target": "attributes[name=a].domain", "const": "other"}],
        }
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("plugin_not_installed_anywhere:specs/x.toml", "'plugin_not_installed_anywhere' is not"),
        ("{package}:specs/missing.toml", "has no such file"),
        ("{package}:../outside.toml", "must be a built-in spec name"),
        ("{package}:specs/../../outside.toml", "stay inside it"),
        ("{package}:specs/x.yaml", "must be a built-in spec name"),
        ("no_such_builtin", "available: civil_registry_birth"),
    ],
)
def test_a_spec_that_is_not_there_says_what_was_looked_for(make_package, name, message):
    package = make_package({"specs/x.toml": SPEC.format(name="x")})
    with pytest.raises(SpecNotFound, match=message) as caught:
        load_spec(name.format(package=package))
    assert isinstance(caught.value, KeyError)  # what callers of load_spec caught before
    assert not str(caught.value).startswith(("'", '"'))


def test_a_package_spec_is_checked_like_a_built_in_one(make_package):
    broken = SPEC.format(name="meter").replace('"date"', '"dat"')
    package = make_package({"specs/meter.toml": broken})
    with pytest.raises(SpecError) as caught:
        load_spec(f"{package}:specs/meter.toml")
    assert str(caught.value).startswith(f"{package}:specs/meter.toml: $.fields[1].transforms[0]")
    assert "unknown transform 'dat'" in str(caught.value)
    renamed = SPEC.format(name="not_the_file_name")
    package = make_package({"specs/meter.toml": renamed})
    with pytest.raises(SpecError, match="must be 'meter', the file's name"):
        load_spec(f"{package}:specs/meter.toml")
