"""A small registry described here, for the policy pages' tests (Flask client and headless
Chromium): six regions drawn as unit squares (two columns, three rows; each split into two
districts, the west and east halves), households of two members (each eligible for CCT under
a one-variable model) in the west district, some enrolled, and GIS layers per area. Every
figure a test expects is worked out from ``PLAN``, not read from the hub.

| region | households | enrolled | coverage | gap | poverty_rate |
|---|---|---|---|---|---|
| R01 | 10 | 6 | 60% | 4 | 0.1 |
| R02 | 12 | 3 | 25% | 9 | 0.7 |
| R03 | 3 | 1 | hidden (1 and 2 are under k) | hidden | 0.5 |
| R04 | 8 | 4 | 50% | 4 | 0.3 |
| R05 | 5 | 2 | hidden: it would give R03 away | hidden | 0.9 |
| R06 | 9 | 0 | 0% | 9 | 0.2 |

With ``MIN_CELL`` 3, R03's enrolled (1) and gap (2) are hidden, and the suppression hides
R05's too (the smallest other area), so the region totals cannot give R03's away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from registry_core.reports.snapshots import COMMON, PolicySnapshot
from registry_core.service import Registry, Source

MIN_CELL = 3
PROGRAM = "CCT"
GIS = Source("gis", "outline")
SURVEY = Source("field_survey", "form-1")
MIS = Source("programs", "mis-1")
MODEL = {
    "variables": [{"name": "size", "source": "members"}],
    "intercept": 10.0,
    "weights": {"size": -1.0},
}
RULE = {"model_code": "pmt", "threshold": {"max_score": 8.5}}


@dataclass(frozen=True)
class RegionPlan:
    code: str
    households: int
    enrolled: int
    poverty_rate: float
    column: int  # position of its unit square: lon from column, lat from row
    row: int

    @property
    def gap(self) -> int:
        return self.households - self.enrolled

    @property
    def coverage(self) -> float:
        return self.enrolled / self.households


PLAN = (
    RegionPlan("R01", 10, 6, 0.1, 0, 0),
    RegionPlan("R02", 12, 3, 0.7, 1, 0),
    RegionPlan("R03", 3, 1, 0.5, 0, 1),
    RegionPlan("R04", 8, 4, 0.3, 1, 1),
    RegionPlan("R05", 5, 2, 0.9, 0, 2),
    RegionPlan("R06", 9, 0, 0.2, 1, 2),
)
HIDDEN = ("R03", "R05")  # drawn as suppressed on the program layers
ORIGIN = (36.0, -1.0)  # lon, lat of the south-west corner of the map


def square(x0: float, y0: float, width: float, height: float) -> dict[str, Any]:
    lon, lat = ORIGIN[0] + x0, ORIGIN[1] + y0
    ring = [
        [lon, lat],
        [lon + width, lat],
        [lon + width, lat + height],
        [lon, lat + height],
        [lon, lat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def outlines() -> list[dict[str, Any]]:
    """Regions (unit squares) and their two districts (west and east halves)."""
    found = []
    for region in PLAN:
        found.append(
            {
                "code": region.code,
                "level": 1,
                "name": f"Region {region.code[1:]}",
                "geometry": square(region.column, region.row, 1, 1),
                "layers": {"poverty_rate": region.poverty_rate, "flood_risk": 0.05},
            }
        )
        for half, district in enumerate(("D01", "D02")):
            found.append(
                {
                    "code": f"{region.code}-{district}",
                    "level": 2,
                    "name": f"District {region.code}-{district}",
                    "parent_code": region.code,
                    "geometry": square(region.column + 0.5 * half, region.row, 0.5, 1),
                    "layers": {"poverty_rate": region.poverty_rate, "flood_risk": 0.05},
                }
            )
    return found


def build(registry: Registry) -> None:
    """Areas, households, the model and rule decided, enrolments."""
    for area in outlines():
        assert registry.record_admin_area(area, GIS)
    number = 0
    for region in PLAN:
        for index in range(region.households):
            number += 1
            record = {
                "admin_area_code": f"{region.code}-D01-L01",
                "members": [
                    {
                        "given_name": f"Head{number}",
                        "family_name": f"Family{number}",
                        "sex": "female",
                        "birth_date": "1980-01-01",
                        "relationship": "head",
                    },
                    {
                        "given_name": f"Child{number}",
                        "family_name": f"Family{number}",
                        "sex": "male",
                        "birth_date": "2015-01-01",
                        "relationship": "child",
                    },
                ],
            }
            created = registry.register_household(record, SURVEY).record
            if index < region.enrolled:
                head = created["members"][0]["id"]
                registry.record_enrolment(head, PROGRAM, f"B{number:05d}", "active", MIS)
    registry.scoring.add_model_version("pmt", MODEL, "tester")
    registry.scoring.activate_model("pmt", 1)
    registry.scoring.rescore_all()
    registry.scoring.add_rule_version(PROGRAM, RULE, "tester")
    registry.scoring.activate_rule(PROGRAM, 1)


def add_history(sessions: Any, today: date) -> list[int]:
    """Three past days of snapshots (a test cannot wait for them) with eligible counts that
    grow: 10, 18, 24."""
    eligible = [10, 18, 24]
    with sessions.begin() as session:
        for back, count in zip((3, 2, 1), eligible, strict=True):
            day = today - timedelta(days=back)
            session.add(
                PolicySnapshot(
                    day=day,
                    program_code=COMMON,
                    counts={"registered": 20 + back, "scored": 20, "enrolled_several": 0},
                    min_cell=MIN_CELL,
                )
            )
            session.add(
                PolicySnapshot(
                    day=day,
                    program_code=PROGRAM,
                    counts={
                        "eligible": count,
                        "enrolled": 5,
                        "eligible_not_enrolled": count - 5,
                        "enrolled_not_eligible": 0,
                        "coverage_rate": None,
                    },
                    min_cell=MIN_CELL,
                )
            )
    return eligible
