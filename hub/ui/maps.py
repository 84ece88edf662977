"""Choropleth maps of admin areas, drawn on the server as SVG from the GIS outlines.

No tiles, no script, no CDN: the page works on an air-gapped network and under the
dashboard's CSP (no script at all). Each area is one ``<path>`` filled with the colour of its
value's class, with a ``<title>`` (the browser's hover text) naming the area and its value.
Areas whose counts are hidden by small-cell suppression get a hatched fill of their own and a
title that says so without any number; areas without a value are drawn pale.

Coordinates are longitude/latitude (GeoJSON); the projection is equirectangular with the
longitude scaled by the cosine of the middle latitude, which keeps a country's shapes right
at the scale of one map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

SUPPRESSED_FILL = "url(#suppressed)"
SUPPRESSED_BACK = "#d0d7de"
SUPPRESSED_LINE = "#6e7781"
NO_DATA_FILL = "#f6f8fa"
STROKE = "#57606a"
# Five classes per palette, light to dark (sequential); one palette per kind of layer.
PALETTES: dict[str, tuple[str, ...]] = {
    "green": ("#e5f5e0", "#a1d99b", "#74c476", "#31a354", "#006d2c"),
    "orange": ("#feedde", "#fdbe85", "#fd8d3c", "#e6550d", "#a63603"),
    "blue": ("#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c"),
    "purple": ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f"),
    "teal": ("#edf8fb", "#b2e2e2", "#66c2a4", "#2ca25f", "#006d2c"),
}


@dataclass(frozen=True)
class MapArea:
    """One area to draw: its outline and what it shows."""

    code: str
    name: str | None
    geometry: dict[str, Any]
    value: float | None  # None: no value (suppressed or no data)
    suppressed: bool = False
    shown: str = ""  # the value as the title shows it ("62.5%", "41 households")


@dataclass(frozen=True)
class LegendClass:
    low: float
    high: float
    colour: str
    label: str


def classes(
    values: Sequence[float], palette: str, *, share: bool, count: int = 5
) -> list[LegendClass]:
    """Equal-interval classes: ``share`` values (0..1) always over 0..1 in steps of 20%, so
    maps of one layer compare between levels and days; counts over 0..the largest value
    (rounded up to a round number)."""
    colours = PALETTES[palette]
    if share:
        top = 1.0
    else:
        largest = max(values, default=0.0)
        top = _round_up(largest if largest > 0 else 1.0, count)
    step = top / count
    found = []
    for i in range(count):
        low, high = step * i, step * (i + 1)
        if share:
            label = f"{low * 100:.0f} to {high * 100:.0f}%"
        else:
            label = f"{_number(low)} to {_number(high)}"
        found.append(LegendClass(low, high, colours[i], label))
    return found


def _round_up(value: float, count: int) -> float:
    """``count`` times the smallest whole step of 1, 2, 2.5 or 5 times 10^k that reaches
    ``value``: counts are whole numbers, so class bounds are too."""
    raw = value / count
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10, 20):
        step = factor * power
        if step >= raw and step >= 1 and float(step).is_integer():
            return step * count
    return value  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def colour_of(value: float, legend: Sequence[LegendClass]) -> str:
    """The class colour of ``value``: a class holds its lower bound; the top class also its
    upper bound (and anything above, which a rounded top never leaves)."""
    for entry in legend:
        if value < entry.high:
            return entry.colour
    return legend[-1].colour


def _frame(areas: Sequence[MapArea]) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []
    for area in areas:
        for polygon in _polygons(area.geometry):
            for ring in polygon:
                xs.extend(float(p[0]) for p in ring)
                ys.extend(float(p[1]) for p in ring)
    if not xs:
        return (0.0, 0.0, 1.0, 1.0)
    return (min(xs), min(ys), max(xs), max(ys))


def _polygons(geometry: dict[str, Any]) -> list[Any]:
    if geometry.get("type") == "Polygon":
        return [geometry.get("coordinates") or []]
    if geometry.get("type") == "MultiPolygon":
        return list(geometry.get("coordinates") or [])
    return []


class Projection:
    """Longitude/latitude to SVG pixels, fitted to ``width`` (height follows the shape)."""

    def __init__(
        self, frame: tuple[float, float, float, float], width: int, max_height: int, pad: int
    ) -> None:
        x0, y0, x1, y1 = frame
        self.x0, self.y1, self.pad = x0, y1, pad
        self.kx = math.cos(math.radians((y0 + y1) / 2))
        span_x = max((x1 - x0) * self.kx, 1e-9)
        span_y = max(y1 - y0, 1e-9)
        self.scale = min((width - 2 * pad) / span_x, (max_height - 2 * pad) / span_y)
        self.width = math.ceil(span_x * self.scale + 2 * pad)  # no blank band beside a tall map
        self.height = math.ceil(span_y * self.scale + 2 * pad)

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        x = self.pad + (lon - self.x0) * self.kx * self.scale
        y = self.pad + (self.y1 - lat) * self.scale
        return round(x, 1), round(y, 1)


def _path(geometry: dict[str, Any], project: Projection) -> str:
    parts: list[str] = []
    for polygon in _polygons(geometry):
        for ring in polygon:
            points = [project(float(p[0]), float(p[1])) for p in ring]
            if len(points) < 3:
                continue
            head, *rest = points
            parts.append(f"M{head[0]},{head[1]}" + "".join(f"L{x},{y}" for x, y in rest) + "Z")
    return "".join(parts)


def choropleth_svg(
    areas: Sequence[MapArea],
    legend: Sequence[LegendClass],
    *,
    title: str,
    width: int = 720,
    max_height: int = 520,
) -> str:
    """The map as one ``<svg>`` element (ids: ``policy-map``; each path ``data-area``)."""
    project = Projection(_frame(areas), width, max_height, 8)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="policy-map" role="img" '
        f'width="{project.width}" height="{project.height}" '
        f'viewBox="0 0 {project.width} {project.height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        '<defs><pattern id="suppressed" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        f'<rect width="8" height="8" fill="{SUPPRESSED_BACK}"/>'
        f'<rect width="3" height="8" fill="{SUPPRESSED_LINE}"/></pattern></defs>',
    ]
    for area in areas:
        name = f"{area.name} ({area.code})" if area.name else area.code
        if area.suppressed:
            fill, state, text = SUPPRESSED_FILL, "suppressed", "hidden: small numbers"
        elif area.value is None:
            fill, state, text = NO_DATA_FILL, "no-data", area.shown or "no data"
        else:
            fill, state, text = colour_of(area.value, legend), "value", area.shown
        value = "" if area.value is None or area.suppressed else f' data-value="{area.value}"'
        out.append(
            f'<path d="{_path(area.geometry, project)}" fill="{fill}" stroke="{STROKE}" '
            f'stroke-width="0.8" fill-rule="evenodd" data-area="{escape(area.code)}" '
            f'data-state="{state}"{value}><title>{escape(name)}: {escape(text)}</title></path>'
        )
    out.append("</svg>")
    return "".join(out)


def legend_svg(legend: Sequence[LegendClass], *, unit: str) -> str:
    """The classes, then the suppressed and no-data swatches (id ``map-legend``)."""
    row = 22
    height = row * (len(legend) + 2) + 8
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="map-legend" width="220" '
        f'height="{height}" role="img" aria-label="legend ({escape(unit)})">',
        '<defs><pattern id="suppressed-key" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        f'<rect width="8" height="8" fill="{SUPPRESSED_BACK}"/>'
        f'<rect width="3" height="8" fill="{SUPPRESSED_LINE}"/></pattern></defs>',
    ]
    y = 4
    for entry in legend:
        out.append(
            f'<rect class="swatch" x="4" y="{y}" width="28" height="16" fill="{entry.colour}" '
            f'stroke="{STROKE}" data-low="{entry.low}" data-high="{entry.high}"/>'
            f'<text x="40" y="{y + 13}" font-size="12">{escape(entry.label)}</text>'
        )
        y += row
    out.append(
        f'<rect class="swatch-suppressed" x="4" y="{y}" width="28" height="16" '
        f'fill="url(#suppressed-key)" stroke="{STROKE}"/>'
        f'<text x="40" y="{y + 13}" font-size="12">hidden (small numbers)</text>'
    )
    y += row
    out.append(
        f'<rect class="swatch-no-data" x="4" y="{y}" width="28" height="16" '
        f'fill="{NO_DATA_FILL}" stroke="{STROKE}"/>'
        f'<text x="40" y="{y + 13}" font-size="12">no data</text>'
    )
    out.append("</svg>")
    return "".join(out)
