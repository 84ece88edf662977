"""Throughput and error charts, drawn on the server as SVG with pygal.

Server-side SVG needs no JavaScript asset in the repository or from a CDN, works on an
air-gapped ministry network and is as fast to show on a 1,000,000-message log as on an empty
one: the numbers come from the monitoring recorder's per-minute buckets (bounded memory), never
from scanning the message log.

The recorder exposes "count over the last N seconds"; the count of the minute k minutes ago is
the difference of two such windows, so the chart uses the recorder's public API only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pygal
from pygal.style import Style

from hub.monitoring.metrics import RECORDER, Recorder

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)
KINDS: tuple[str, ...] = ("inbound", "ingest", "partner", "outbound")
DEFAULT_MINUTES = 60

_STYLE = Style(
    background="transparent",
    plot_background="#ffffff",
    foreground="#222222",
    foreground_strong="#111111",
    foreground_subtle="#888888",
    colors=("#1f6feb", "#2da44e", "#bf8700", "#8250df"),
    font_family="sans-serif",
)


def recorder() -> Recorder:
    """The monitoring recorder of this process."""
    return RECORDER


@dataclass(frozen=True)
class Series:
    minutes: list[datetime]  # start of each minute, oldest first
    counts: dict[str, list[int]]  # kind -> messages per minute
    errors: dict[str, list[int]]  # kind -> errors per minute


def per_minute(source: Any, minutes: int = DEFAULT_MINUTES, now: datetime | None = None) -> Series:
    """Messages and errors per minute per component kind, summed over components."""
    now = now or datetime.now(UTC)
    current = now.replace(second=0, microsecond=0)
    stamps = [current - timedelta(minutes=k) for k in range(minutes - 1, -1, -1)]
    counts = {kind: [0] * minutes for kind in KINDS}
    errors = {kind: [0] * minutes for kind in KINDS}
    if source is None:
        return Series(stamps, counts, errors)
    for kind in KINDS:
        for component in source.components(kind):
            # cumulative[k] = totals over the last k+1 minutes (the current one included)
            cumulative = [source.window(component, 60 * (k + 1)) for k in range(minutes)]
            for k in range(minutes):
                before_count = cumulative[k - 1]["count"] if k else 0
                before_errors = cumulative[k - 1]["errors"] if k else 0
                slot = minutes - 1 - k
                counts[kind][slot] += cumulative[k]["count"] - before_count
                errors[kind][slot] += cumulative[k]["errors"] - before_errors
    return Series(stamps, counts, errors)


def _line(title: str, series: Series, values: dict[str, list[int]]) -> str:
    chart = pygal.Line(
        title=title,
        style=_STYLE,
        width=720,
        height=240,
        show_dots=False,
        fill=False,
        js=(),  # no script from a CDN: the page's CSP forbids scripts anyway
        disable_xml_declaration=True,
        x_label_rotation=0,
        show_minor_x_labels=False,
        truncate_label=-1,
        show_x_guides=False,
        legend_at_bottom=True,
        min_scale=2,
        include_x_axis=True,
        no_data_text="no data yet",
    )
    chart.x_labels = [stamp.strftime("%H:%M") for stamp in series.minutes]
    chart.x_labels_major = chart.x_labels[::10]
    for kind in KINDS:
        chart.add(kind, values[kind])
    rendered: str = chart.render(is_unicode=True)
    # pygal embeds its tooltip configuration as a script; the page runs no script at all.
    return _SCRIPT.sub("", rendered)


def throughput_svg(series: Series) -> str:
    return _line("Messages per minute (UTC)", series, series.counts)


def errors_svg(series: Series) -> str:
    return _line("Errors per minute (UTC)", series, series.errors)


def daily_svg(
    title: str,
    days: Sequence[str],
    series: Mapping[str, Sequence[int | None]],
    *,
    height: int = 240,
    no_data_text: str = "no data yet",
) -> str:
    """A line per series over calendar days (``YYYY-MM-DD`` labels, shown as ``MM-DD``), in
    the same style as the monitoring charts; no script (the page's CSP runs none). Used by
    the data-quality page's trend of issues opened and resolved per day and the policy
    overview's snapshot trends. ``None`` values (a hidden count) leave a gap in the line."""
    chart = pygal.Line(
        title=title,
        style=_STYLE,
        width=720,
        height=height,
        show_dots=len(days) <= 31,
        fill=False,
        js=(),
        disable_xml_declaration=True,
        x_label_rotation=0,
        show_minor_x_labels=False,
        truncate_label=-1,
        show_x_guides=False,
        legend_at_bottom=True,
        min_scale=2,
        include_x_axis=True,
        allow_interruptions=True,
        no_data_text=no_data_text,
    )
    chart.x_labels = [day[5:] for day in days]
    chart.x_labels_major = chart.x_labels[:: max(1, len(days) // 6)]
    for name, values in series.items():
        chart.add(name, list(values))
    rendered: str = chart.render(is_unicode=True)
    return _SCRIPT.sub("", rendered)
