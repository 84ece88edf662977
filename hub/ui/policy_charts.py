"""The policy pages' charts, drawn on the server with pygal like ``hub.ui.charts``: program
comparison bars and the trend lines from the daily snapshots. No script (the dashboard's CSP
runs none), no CDN. A hidden count is a gap in a line or a missing bar, never a zero."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pygal

from hub.ui.charts import _SCRIPT, _STYLE, daily_svg


def _clean(chart: Any) -> str:
    rendered: str = chart.render(is_unicode=True)
    return _SCRIPT.sub("", rendered)


def programs_svg(rows: Sequence[dict[str, Any]]) -> str:
    """Eligible, enrolled and the gap (households) side by side per program."""
    chart = pygal.Bar(
        title="Households per program",
        style=_STYLE,
        width=720,
        height=280,
        js=(),
        disable_xml_declaration=True,
        legend_at_bottom=True,
        include_x_axis=True,
        print_values=False,
        no_data_text="no program yet",
    )
    chart.x_labels = [row["program"] for row in rows]
    for measure, title in (
        ("eligible", "eligible"),
        ("enrolled", "enrolled"),
        ("eligible_not_enrolled", "eligible, not enrolled"),
    ):
        chart.add(title, [row[measure] for row in rows])
    return _clean(chart)


def trend_svg(title: str, days: Sequence[str], series: dict[str, Sequence[int | None]]) -> str:
    """A line per series over the snapshot days (``MM-DD`` labels); gaps where hidden."""
    return daily_svg(title, days, series, height=260, no_data_text="no snapshot yet")
