"""The executive overview in headless Chromium: a policymaker logs in, lands on the policy
page, reads the headline numbers, the coverage map, the trends and the program comparison,
and switches the map's layer and level. The map is checked on its screenshot: the pixel at
each area's centre has the legend colour its value (worked out from ``policy_support.PLAN``)
belongs to, two areas of different values differ, hidden areas are hatched in neither legend
colour, and areas without households are pale."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from werkzeug.serving import make_server

from hub.api import create_app
from hub.runtime import HubRuntime
from hub.settings import load_settings
from hub.ui.maps import NO_DATA_FILL, SUPPRESSED_BACK, SUPPRESSED_LINE
from standards.timeutil import utcnow
from tests.integration import policy_support as policy
from tests.integration.staff_support import add_dashboard_user
from tests.integration.test_dashboard import PASSWORD

RGB = tuple[int, int, int]


@contextmanager
def running_hub(db_url: str, data_dir: Path) -> Iterator[tuple[HubRuntime, str]]:
    """The hub's app with the policy registry, on a free loopback port."""
    settings = load_settings(
        env={"SRHUB_REPORTS__MIN_CELL": str(policy.MIN_CELL)},
        data_dir=data_dir,
        database_url=db_url,
        sandbox=False,
    )
    runtime = HubRuntime(settings)
    app = create_app(settings, runtime)
    runtime.registry.ensure_identifier_systems()
    policy.build(runtime.registry)
    policy.add_history(runtime.sessions, utcnow().date())
    add_dashboard_user(settings, "pat", "policymaker")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield runtime, f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(10)
        runtime.close()


def rgb(hex_colour: str) -> RGB:
    text = hex_colour.lstrip("#")
    return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))


def close(a: RGB, b: RGB, tolerance: int = 4) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


class MapShot:
    """A screenshot of the map and where each area's centre is on it."""

    def __init__(self, page: Any, path: Path) -> None:
        figure = page.locator("#policy-map")
        png = figure.screenshot(path=str(path))
        self.image = Image.open(io.BytesIO(png)).convert("RGB")
        self.origin = figure.bounding_box()
        self.page = page

    def centre(self, code: str) -> tuple[int, int]:
        box = self.page.locator(f'#policy-map path[data-area="{code}"]').bounding_box()
        x = box["x"] + box["width"] / 2 - self.origin["x"]
        y = box["y"] + box["height"] / 2 - self.origin["y"]
        return int(x), int(y)

    def pixel(self, code: str) -> RGB:
        found: RGB = self.image.getpixel(self.centre(code))
        return found

    def window(self, code: str, half: int = 8) -> set[RGB]:
        x, y = self.centre(code)
        return {
            self.image.getpixel((x + dx, y + dy))
            for dx in range(-half, half + 1)
            for dy in range(-half, half + 1)
        }


def legend(page: Any, path: Path) -> list[tuple[float, float, RGB]]:
    """The legend's classes as drawn: bounds from the swatches, colour from the screenshot."""
    element = page.locator("#map-legend")
    image = Image.open(io.BytesIO(element.screenshot(path=str(path)))).convert("RGB")
    origin = element.bounding_box()
    found = []
    swatches = page.locator("#map-legend rect.swatch")
    for index in range(swatches.count()):
        swatch = swatches.nth(index)
        box = swatch.bounding_box()
        x = int(box["x"] + box["width"] / 2 - origin["x"])
        y = int(box["y"] + box["height"] / 2 - origin["y"])
        low = float(swatch.get_attribute("data-low"))
        high = float(swatch.get_attribute("data-high"))
        found.append((low, high, image.getpixel((x, y))))
    return found


def class_colour(classes: list[tuple[float, float, RGB]], value: float) -> RGB:
    for low, high, colour in classes:
        if low <= value < high:
            return colour
    return classes[-1][2]


def choose(page: Any, **fields: str) -> None:
    for name, value in fields.items():
        page.select_option(f"#map-{name}", value)
    page.locator("#map-show").click()
    page.wait_for_selector(
        f'figure.map[data-layer="{fields.get("layer", "")}"]'
        if "layer" in fields
        else f'figure.map[data-level="{fields["level"]}"]'
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_policymaker_reads_the_overview_and_works_the_map(
    browser: Any, db_url: str, tmp_path: Path
) -> None:
    households = sum(r.households for r in policy.PLAN)
    enrolled = sum(r.enrolled for r in policy.PLAN)
    shown = [r for r in policy.PLAN if r.code not in policy.HIDDEN]
    with running_hub(db_url, tmp_path) as (_runtime, url):
        page = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{url}/ui/login")
        form = page.locator("#password-login")
        form.locator("input[name=username]").fill("pat")
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#policy-map")
        assert page.url.endswith("/ui/policy")

        # Headline numbers and the program comparison.
        assert page.inner_text("#hl-households") == f"{households:,}"
        assert page.inner_text("#hl-people") == f"{2 * households:,}"
        cct = page.locator('#headline-programs tr[data-program="CCT"]')
        assert cct.locator('[data-measure="eligible"]').inner_text() == str(households)
        assert cct.locator('[data-measure="enrolled"]').inner_text() == str(enrolled)
        gap = cct.locator('[data-measure="eligible_not_enrolled"]').inner_text()
        assert gap == str(households - enrolled)
        comparison = page.locator('#program-comparison tr[data-program="CCT"]')
        rate = comparison.locator('[data-measure="coverage_rate"]')
        assert rate.inner_text() == f"{100 * enrolled / households:.1f}%"
        assert page.locator("#programs-chart svg").count() == 1

        # Trends: the snapshot history as charts, CCT's eligible line among them.
        assert page.locator("#trend-charts svg").count() == 2
        assert "CCT: households" in page.inner_text("#trend-charts")

        # The coverage map: each shown area has its value's legend colour.
        classes = legend(page, tmp_path / "legend-coverage.png")
        assert len({c for _, _, c in classes}) == 5
        shot = MapShot(page, tmp_path / "map-coverage.png")
        for region in shown:
            want = class_colour(classes, region.coverage)
            assert close(shot.pixel(region.code), want), (region.code, shot.pixel(region.code))
        assert not close(shot.pixel("R01"), shot.pixel("R02"))  # 60% against 25%
        colours = [c for _, _, c in classes]
        for code in policy.HIDDEN:
            seen = shot.window(code)
            assert any(close(p, rgb(SUPPRESSED_BACK)) for p in seen), code
            assert any(close(p, rgb(SUPPRESSED_LINE)) for p in seen), code
            assert not any(close(p, c) for p in seen for c in colours), code
        title = page.locator('#policy-map path[data-area="R01"] title').text_content()
        assert title == "Region 01 (R01): 60.0% (10 eligible)"
        hidden = page.locator('#policy-map path[data-area="R03"] title').text_content()
        assert hidden == "Region 03 (R03): hidden: small numbers"

        # Another layer: the gap in households.
        choose(page, layer="gap")
        classes = legend(page, tmp_path / "legend-gap.png")
        shot = MapShot(page, tmp_path / "map-gap.png")
        for region in shown:
            assert close(shot.pixel(region.code), class_colour(classes, region.gap)), region
        assert not close(shot.pixel("R01"), shot.pixel("R02"))  # a gap of 4 against 9

        # A GIS layer: nothing hidden, every area coloured by its poverty rate.
        choose(page, layer="poverty_rate")
        classes = legend(page, tmp_path / "legend-poverty.png")
        shot = MapShot(page, tmp_path / "map-poverty.png")
        for region in policy.PLAN:
            assert close(shot.pixel(region.code), class_colour(classes, region.poverty_rate))

        # Districts: the west halves carry the households, the east ones are pale.
        choose(page, level="2", layer="coverage_rate")
        assert page.locator("#policy-map path").count() == 2 * len(policy.PLAN)
        classes = legend(page, tmp_path / "legend-districts.png")
        shot = MapShot(page, tmp_path / "map-districts.png")
        for region in shown:
            west = shot.pixel(f"{region.code}-D01")
            assert close(west, class_colour(classes, region.coverage)), region
            assert close(shot.pixel(f"{region.code}-D02"), rgb(NO_DATA_FILL)), region
        for name in ("map-coverage", "map-gap", "map-poverty", "map-districts"):
            assert (tmp_path / f"{name}.png").stat().st_size > 1000
