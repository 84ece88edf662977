"""Coverage reports over real databases (SQLite and PostgreSQL): a small registry is built
from a seeded description, every expected count is worked out here from that description
(not from the hub), and the report must agree on every count it shows, hide every count under
k, and hide enough that no hidden small count can be worked out. Also: CSV, the gaps and
overlaps views, roles, and bad parameters."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from registry_core.reports.coverage import ALL
from registry_core.service import Source
from standards.timeutil import utcnow

SURVEY = Source("field_survey", "form-1")
MIS = Source("programs", "mis-1")
AREAS = ("R01-D01-L01", "R01-D01-L02", "R01-D02-L01", "R02-D01-L01")
AGES = (2, 9, 13, 16, 30, 45, 64, 80)
MIN_CELL = 3
MODEL = {
    "variables": [
        {"name": "size", "source": "members"},
        {"name": "children", "source": "members", "age_max": 14},
        {"name": "older", "source": "members", "age_min": 60},
        {
            "name": "rooms",
            "source": "household_attribute",
            "domain": "dwelling",
            "attribute": "rooms",
            "missing": {"rule": "not_scorable"},
        },
    ],
    "intercept": 10.0,
    "weights": {"size": -1.0, "children": -2.0, "rooms": 0.5},
}
RULES = {
    "CCT": {"model_code": "pmt", "threshold": {"max_score": 8.0}, "condition": "children >= 1.0"},
    "OAP": {"model_code": "pmt", "threshold": {"max_score": 100.0}, "condition": "older >= 1.0"},
}


@dataclass
class Member:
    age: int
    sex: str
    disabled: bool
    id: str = ""


@dataclass
class Home:
    area: str
    members: list[Member]
    rooms: int | None
    settlement: str | None
    enrolled: dict[str, str] = field(default_factory=dict)  # program -> active / exited

    def children(self) -> int:
        return sum(m.age <= 14 for m in self.members)

    def older(self) -> int:
        return sum(m.age >= 60 for m in self.members)

    def scored(self) -> bool:
        return self.rooms is not None

    def eligible(self, program: str) -> bool:
        if not self.scored():
            return False
        if program == "CCT":
            score = 10.0 - len(self.members) - 2.0 * self.children() + 0.5 * (self.rooms or 0)
            return self.children() >= 1 and score <= 8.0
        return self.older() >= 1

    def is_enrolled(self, program: str) -> bool:
        return self.enrolled.get(program) == "active"

    def kind(self) -> str:
        if len(self.members) == 1:
            return "one_person"
        if any(m.age < 18 for m in self.members):
            return "with_children"
        if all(m.age >= 60 for m in self.members):
            return "older_only"
        return "adults_only"


def describe(seed: int, count: int) -> list[Home]:
    rng = random.Random(seed)
    homes = []
    for index in range(count):
        members = [
            Member(rng.choice(AGES), rng.choice(("female", "male")), rng.random() < 0.2)
            for _ in range(rng.randint(1, 5))
        ]
        members[0].age = max(members[0].age, 30)  # the head is an adult
        home = Home(
            area=AREAS[index % len(AREAS)] if index < 30 else AREAS[0],
            members=members,
            rooms=None if rng.random() < 0.15 else rng.randint(1, 3),
            settlement=rng.choice(("urban", "rural", None)),
        )
        for program in RULES:
            roll = rng.random()
            if roll < 0.45:
                home.enrolled[program] = "active"
            elif roll < 0.5:
                home.enrolled[program] = "exited"
        homes.append(home)
    return homes


def birth_date(age: int, today: date) -> str:
    return (today - relativedelta(years=age, days=120)).isoformat()


def build(registry, homes: list[Home], today: date) -> None:
    for number, home in enumerate(homes):
        record = {
            "admin_area_code": home.area,
            "members": [
                {
                    "given_name": f"P{number}x{i}",
                    "family_name": f"Family{number}",
                    "sex": m.sex,
                    "birth_date": birth_date(m.age, today),
                    "relationship": "head" if i == 0 else "other_relative",
                }
                for i, m in enumerate(home.members)
            ],
        }
        attributes = []
        if home.rooms is not None:
            attributes.append({"domain": "dwelling", "name": "rooms", "value": home.rooms})
        if home.settlement:
            attributes.append({"domain": "other", "name": "urban_rural", "value": home.settlement})
        if attributes:
            record["attributes"] = attributes
        created = registry.register_household(record, SURVEY).record
        for member, stored in zip(home.members, created["members"], strict=True):
            member.id = stored["id"]
            if member.disabled:
                registry.record_person_attributes(
                    member.id, [{"domain": "other", "name": "disability", "value": 1}], SURVEY
                )
        for program, status in home.enrolled.items():
            registry.record_enrolment(home.members[0].id, program, f"{number:05d}", status, MIS)


def expected_counts(homes: list[Home], level: int, segment: str) -> dict[tuple, Counter]:
    """Counts by (area at level, segment) worked out from the description."""
    grid: dict[tuple, Counter] = {}
    for home in homes:
        area = "-".join(home.area.split("-")[:level])
        if segment in ("age_band", "sex", "disability"):
            units = [(home, unit_segment(segment, m, home)) for m in home.members]
        else:
            units = [(home, unit_segment(segment, None, home))]
        for _, seg in units:
            for key in ((area, seg), (ALL, seg), (area, ALL), (ALL, ALL)):
                counter = grid.setdefault(key, Counter())
                counter["registered"] += 1
                counter["scored"] += home.scored()
                counter["enrolled_several"] += sum(map(home.is_enrolled, RULES)) >= 2
                for p in RULES:
                    eligible, enrolled = home.eligible(p), home.is_enrolled(p)
                    counter[(p, "eligible")] += eligible
                    counter[(p, "enrolled")] += enrolled
                    counter[(p, "eligible_not_enrolled")] += eligible and not enrolled
                    counter[(p, "enrolled_not_eligible")] += enrolled and not eligible
    return grid


def unit_segment(segment: str, member: Member | None, home: Home) -> str:
    if segment == "none":
        return "all"
    if segment == "household_type":
        return home.kind()
    if segment == "urban_rural":
        return home.settlement or "unknown"
    assert member is not None
    if segment == "sex":
        return member.sex
    if segment == "disability":
        return "disability" if member.disabled else "no_disability"
    bands = [("60+", 60), ("18-59", 18), ("5-17", 5), ("0-4", 0)]
    return next(label for label, low in bands if member.age >= low)


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(
        env={"SRHUB_REPORTS__MIN_CELL": str(MIN_CELL)}, database_url=db_url, data_dir=tmp_path
    )
    app = create_app(settings)
    registry = app.extensions["srhub_runtime"].registry
    registry.ensure_identifier_systems()

    def auth(*roles: str, areas: tuple[str, ...] = (), program: str | None = None) -> dict:
        token = issue_token(
            settings, subject="tester", roles=list(roles), admin_areas=areas, program=program
        )
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.registry = registry  # type: ignore[attr-defined]
    yield client
    app.extensions["srhub_runtime"].close()


@pytest.fixture
def populated(api):
    homes = describe(seed=7, count=44)
    build(api.registry, homes, utcnow().date())
    admin = api.auth("admin")
    assert api.post("/api/v1/scoring/models/pmt/versions", json=MODEL, headers=admin).status_code
    activated = api.post("/api/v1/scoring/models/pmt/versions/1/activate", headers=admin)
    assert activated.status_code == 200, activated.json
    for program, rule in RULES.items():
        assert api.post(f"/api/v1/programs/{program}/eligibility-rules", json=rule, headers=admin)
        decided = api.post(
            f"/api/v1/programs/{program}/eligibility-rules/1/activate", headers=admin
        )
        assert decided.status_code == 200, decided.json
    return homes


def shown_cells(row: dict) -> dict:
    cells = {m: row[m] for m in ("registered", "scored", "enrolled_several")}
    for p, measures in row["programs"].items():
        for m in ("eligible", "enrolled", "eligible_not_enrolled", "enrolled_not_eligible"):
            cells[(p, m)] = measures[m]
    return cells


@pytest.mark.parametrize(
    ("level", "segment"),
    [
        (1, "none"),
        (2, "sex"),
        (3, "age_band"),
        (2, "disability"),
        (3, "household_type"),
        (1, "urban_rural"),
    ],
)
def test_the_report_agrees_with_the_registry_and_hides_small_counts(api, populated, level, segment):
    homes = populated
    answer = api.get(
        f"/api/v1/reports/coverage?level={level}&segment={segment}", headers=api.auth("auditor")
    )
    assert answer.status_code == 200, answer.json
    report = answer.json
    assert report["programs"] == sorted(RULES)
    assert report["suppression"]["min_cell"] == MIN_CELL
    expected = expected_counts(homes, level, segment)
    if segment == "none":
        expected = {k: v for k, v in expected.items() if k[1] != ALL}
    rows = {(row["area"], row["segment"]): row for row in report["rows"]}
    assert set(rows) == set(expected)
    hidden = shown = 0
    for key, row in rows.items():
        for name, value in shown_cells(row).items():
            truth = expected[key][name]
            if value is None:
                hidden += 1
            else:
                shown += 1
                assert value == truth, (key, name)
                assert not 0 < value < MIN_CELL, (key, name)
            if 0 < truth < MIN_CELL:
                assert value is None, (key, name)
    assert shown > 0
    assert report["suppression"]["suppressed_cells"] == hidden
    assert_nothing_small_can_be_worked_out(rows, expected)


def assert_nothing_small_can_be_worked_out(rows: dict, expected: dict) -> None:
    """The identities a reader would try: a difference of two shown counts of nested groups is
    never 1 to k - 1, and where a line (an area over segments, a segment over areas, with its
    total) hides one count only, that count, worked out, is not 1 to k - 1 either (a count
    hidden only to protect another may be worked out)."""
    small = range(1, MIN_CELL)
    for row in rows.values():
        cells = shown_cells(row)
        pairs = [("registered", "scored"), ("registered", "enrolled_several")]
        for p in RULES:
            pairs += [
                (("registered"), (p, "eligible")),
                (("registered"), (p, "enrolled")),
                ((p, "eligible"), (p, "eligible_not_enrolled")),
                ((p, "enrolled"), (p, "enrolled_not_eligible")),
            ]
        for whole, part in pairs:
            if cells[whole] is not None and cells[part] is not None:
                assert cells[whole] - cells[part] not in small, (row["area"], whole, part)
        # the report's two programs are the only ones enrolling: households in neither
        parts = [cells["registered"], cells[("CCT", "enrolled")], cells[("OAP", "enrolled")]]
        if None not in parts and cells["enrolled_several"] is not None:
            neither = parts[0] - parts[1] - parts[2] + cells["enrolled_several"]
            assert neither not in small, row["area"]
    areas = {a for a, _ in rows}
    segments = {s for _, s in rows}
    for name in shown_cells(next(iter(rows.values()))):
        lines = [[(a, s) for s in segments] for a in areas] + [
            [(a, s) for a in areas] for s in segments
        ]
        for line in lines:
            present = [rows[key] for key in line if key in rows]
            if len(present) < 2:
                continue
            hidden = [key for key in line if key in rows and shown_cells(rows[key])[name] is None]
            if len(hidden) == 1:
                assert expected[hidden[0]][name] not in small, (name, hidden[0])


def test_rates_are_shown_counts_over_shown_denominators(api, populated):
    report = api.get("/api/v1/reports/coverage?level=1", headers=api.auth("admin")).json
    for row in report["rows"]:
        if row["scored"] is not None and row["registered"]:
            assert row["scored_rate"] == pytest.approx(row["scored"] / row["registered"], abs=1e-4)
        for measures in row["programs"].values():
            eligible, gap = measures["eligible"], measures["eligible_not_enrolled"]
            if eligible and gap is not None:
                assert measures["gap_rate"] == pytest.approx(gap / eligible, abs=1e-4)
                assert measures["coverage_rate"] == pytest.approx(
                    (eligible - gap) / eligible, abs=1e-4
                )
            if eligible is None or gap is None:
                assert measures["gap_rate"] is None and measures["coverage_rate"] is None


def test_csv_carries_the_same_suppressed_counts(api, populated):
    staff = api.auth("registry_staff")
    query = "level=2&segment=sex&program=cct"
    report = api.get(f"/api/v1/reports/coverage?{query}", headers=staff).json
    exported = api.get(f"/api/v1/reports/coverage?{query}&format=csv", headers=staff)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert report["programs"] == ["CCT"]
    assert len(lines) == len(report["rows"])
    for line, row in zip(lines, report["rows"], strict=True):
        assert (line["area"], line["segment"], line["program"]) == (
            row["area"],
            row["segment"],
            "CCT",
        )
        for name in ("registered", "scored"):
            assert line[name] == ("" if row[name] is None else str(row[name]))
        for name in ("eligible", "enrolled", "eligible_not_enrolled", "enrolled_not_eligible"):
            value = row["programs"]["CCT"][name]
            assert line[name] == ("" if value is None else str(value))
        for value in (line["registered"], line["eligible"], line["enrolled"]):
            assert value == "" or not 0 < int(value) < MIN_CELL


def test_gaps_list_the_largest_shown_gaps_first(api, populated):
    homes = populated
    answer = api.get(
        "/api/v1/reports/coverage/gaps?level=3&program=CCT", headers=api.auth("policymaker")
    )
    assert answer.status_code == 200, answer.json
    items = answer.json["items"]
    gaps = [item["eligible_not_enrolled"] for item in items]
    shown = [g for g in gaps if g is not None]
    assert shown == sorted(shown, reverse=True)
    assert gaps == shown + [None] * (len(gaps) - len(shown))  # hidden ones last
    truth = Counter(h.area for h in homes if h.eligible("CCT") and not h.is_enrolled("CCT"))
    for item in items:
        if item["eligible_not_enrolled"] is not None:
            assert item["eligible_not_enrolled"] == truth[item["area"]]
    csv_answer = api.get(
        "/api/v1/reports/coverage/gaps?level=3&program=CCT&format=csv",
        headers=api.auth("policymaker"),
    )
    assert csv_answer.get_data(as_text=True).splitlines()[0].startswith("area,segment,program")


def test_overlaps_count_enrolled_not_eligible_and_several_programs(api, populated):
    homes = populated
    items = api.get("/api/v1/reports/coverage/overlaps?level=1", headers=api.auth("admin")).json[
        "items"
    ]
    by_area = {item["area"]: item for item in items if item["segment"] == "all"}
    several = Counter(h.area.split("-")[0] for h in homes if sum(map(h.is_enrolled, RULES)) >= 2)
    leak = Counter(
        h.area.split("-")[0] for h in homes if h.is_enrolled("OAP") and not h.eligible("OAP")
    )
    for area, item in by_area.items():
        if area == ALL:
            continue
        if item["enrolled_several"] is not None:
            assert item["enrolled_several"] == several[area]
        shown = item["programs"]["OAP"]["enrolled_not_eligible"]
        if shown is not None:
            assert shown == leak[area]


def test_only_aggregate_readers_are_admitted(api, populated):
    for role, kwargs in (
        ("field_worker", {"areas": ("R01",)}),
        ("supervisor", {"areas": ("R01",)}),
        ("partner", {}),
        ("program", {"program": "CCT"}),
    ):
        refused = api.get("/api/v1/reports/coverage", headers=api.auth(role, **kwargs))
        assert refused.status_code == 403, role
    assert api.get("/api/v1/reports/coverage").status_code == 401
    policymaker = api.auth("policymaker")
    assert api.get("/api/v1/reports/coverage", headers=policymaker).status_code == 200
    household = api.get("/api/v1/households", headers=policymaker)
    assert household.status_code == 403  # aggregates only: no household, no person


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("level=0", "level"),
        ("level=x", "level"),
        ("segment=religion", "segment"),
        ("format=xlsx", "format"),
        ("program=%27%3B--", "program"),
        ("colour=red", "unknown query parameter"),
    ],
)
def test_bad_parameters_are_refused_with_what_to_fix(api, query, says):
    answer = api.get(f"/api/v1/reports/coverage?{query}", headers=api.auth("admin"))
    assert answer.status_code == 400
    assert says in answer.json["detail"]
