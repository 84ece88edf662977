"""Bar charts of the simulation workbench: current policy beside a scenario, drawn on the
server as SVG with pygal like the monitoring charts (``hub.ui.charts``): no script, no asset
from elsewhere, so the pages work offline under the dashboard's CSP.

Bars are opaque and of two fixed colours (``CURRENT_COLOUR``, ``SIMULATED_COLOUR``) so that a
screenshot can be read back: the browser test measures the bars' heights by their pixels. A
suppressed count is ``None`` and draws no bar (never a number a policymaker may not see).
"""

from __future__ import annotations

from collections.abc import Sequence

import pygal
from pygal.style import Style

from hub.ui.charts import _SCRIPT

CURRENT_COLOUR = "#6e7781"
SIMULATED_COLOUR = "#1f6feb"
EXTRA_COLOURS = ("#2da44e", "#bf8700", "#8250df", "#cf222e")

_STYLE = Style(
    background="transparent",
    plot_background="#ffffff",
    foreground="#222222",
    foreground_strong="#111111",
    foreground_subtle="#888888",
    colors=(CURRENT_COLOUR, SIMULATED_COLOUR, *EXTRA_COLOURS),
    opacity="1",
    opacity_hover="1",
    font_family="sans-serif",
)


def bars_svg(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | int | None]]],
    width: int = 560,
    height: int = 260,
) -> str:
    """Grouped bars: one group per label, one bar per series (first series grey, second
    blue). ``None`` values draw nothing."""
    chart = pygal.Bar(
        title=title,
        style=_STYLE,
        width=width,
        height=height,
        explicit_size=True,  # width and height on the <svg>: it keeps its size in any box
        js=(),  # the page runs no script; pygal's tooltips need one
        disable_xml_declaration=True,
        legend_at_bottom=True,
        include_x_axis=True,
        truncate_label=24,
        print_values=False,
        no_data_text="nothing to show",
        show_x_guides=False,
    )
    chart.x_labels = list(labels)
    for name, values in series:
        chart.add(name, [None if v is None else float(v) for v in values])
    rendered: str = chart.render(is_unicode=True)
    return _SCRIPT.sub("", rendered)
