"""The choropleth's pure parts: classes, colours, projection and escaping."""

from __future__ import annotations

import re

import pytest

from hub.ui.maps import (
    NO_DATA_FILL,
    PALETTES,
    MapArea,
    choropleth_svg,
    classes,
    colour_of,
    legend_svg,
)


def square(x: float, y: float, size: float = 1.0) -> dict:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def test_shares_are_classed_in_fifths_whatever_the_values() -> None:
    legend = classes([0.31, 0.32], "green", share=True)
    bounds = [bound for c in legend for bound in (c.low, c.high)]
    assert bounds == pytest.approx([0.0, 0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8, 1.0])
    assert [c.colour for c in legend] == list(PALETTES["green"])
    assert colour_of(0.0, legend) == PALETTES["green"][0]
    assert colour_of(0.2, legend) == PALETTES["green"][1]  # a class holds its lower bound
    assert colour_of(0.999, legend) == PALETTES["green"][4]
    assert colour_of(1.0, legend) == PALETTES["green"][4]  # and the top class its top
    assert legend[1].label == "20 to 40%"


@pytest.mark.parametrize(
    ("largest", "top"),
    [(9, 10), (10, 10), (11, 25), (47, 50), (130, 250), (0, 5), (3, 5), (1300, 2500)],
)
def test_counts_are_classed_up_to_a_round_top(largest: float, top: float) -> None:
    legend = classes([0, largest], "orange", share=False)
    assert legend[-1].high == pytest.approx(top)
    assert legend[0].low == 0


def test_each_area_is_a_path_with_its_state_and_an_escaped_title() -> None:
    legend = classes([0.1, 0.9], "blue", share=True)
    areas = [
        MapArea("R01", "North <b>&</b>", square(0, 0), 0.1, shown="10.0%"),
        MapArea("R02", "South", square(1, 0), 0.9, shown="90.0%"),
        MapArea("R03", None, square(0, 1), None, suppressed=True),
        MapArea("R04", "East", square(1, 1), None, shown="no households"),
    ]
    svg = choropleth_svg(areas, legend, title="Coverage <rate>")
    assert "<b>" not in svg and "North &lt;b&gt;&amp;&lt;/b&gt; (R01): 10.0%" in svg
    assert "Coverage &lt;rate&gt;" in svg
    paths = {
        m[2]: (m[1], m[3])
        for m in re.finditer(r'fill="([^"]+)"[^>]*data-area="([^"]+)" data-state="([^"]+)"', svg)
    }
    assert paths == {
        "R01": (PALETTES["blue"][0], "value"),
        "R02": (PALETTES["blue"][4], "value"),
        "R03": ("url(#suppressed)", "suppressed"),
        "R04": (NO_DATA_FILL, "no-data"),
    }
    assert "R03: hidden: small numbers" in svg
    # A square country stays square: the frame is as wide as it is high (near the equator).
    width, height = map(int, re.search(r'width="(\d+)" height="(\d+)"', svg).groups())
    assert abs(width - height) <= 2
    assert "<script" not in svg and "<script" not in legend_svg(legend, unit="x")
