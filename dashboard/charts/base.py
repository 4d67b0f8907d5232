"""What every chart shares: the app's colours, the layout and axis helpers, the JSON
conversion, and the tests page links a point or bar opens."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import urlencode

import plotly.graph_objects as go
from django.urls import reverse

from events.metrics import DEFAULT_PERIOD
from events.palette import BAND_COLORS as BAND_COLORS
from events.palette import STATUS_COLORS as STATUS_COLORS

# Series that are not a status or a confidence band (a mean, a count of facts...).
PALETTE = ["#3b5bdb", "#7048e8", "#1098ad", "#d6336c", "#5c940d", "#ae3ec9", "#0b7285", "#868e96"]
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def _text(value: str) -> str:
    """Untrusted text as a Plotly label: Plotly reads a subset of HTML in labels (<a>,
    <b>, <br>, <span style>...) and decodes entities, so escaping shows it literally."""
    return escape(value, quote=False)


def _layout(title: str, x_title: str, y_title: str, **extra) -> dict:
    """The layout every chart starts from. `title` names the chart: the page shows it as
    the chart's caption and accessible name (the chart tag), and charts.js does not draw
    it inside the plot, where it was clipped at the top and collided with the legend.
    The legend sits above the plot (below it, it collided with the x-axis title and
    rotated ticks on a phone); the margins are small and grow to fit the axis labels
    and the legend (automargin), so nothing overlaps at 390 px either."""
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "xaxis": _axis(x_title),
        "yaxis": _axis(y_title, rangemode="tozero"),
        "legend": TOP_LEGEND,
        "margin": {"l": 8, "r": 12, "t": 8, "b": 8},
        "font": {"family": FONT, "size": 12, "color": "#1d2330"},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "hovermode": "x unified",
        "height": 320,
        **extra,
    }


def to_json(figure: go.Figure, points: list[dict[str, list]] | None = None) -> dict:
    """A plain dict for `json_script` (which escapes <, > and & in untrusted names).

    `points`: per trace, in order, its per-point arrays (x, y, customdata), added after
    Plotly validated the rest. Plotly checks and deep-copies every point it is given
    (about 5 ms per thousand), which made two years of a per-day chart cost more than
    its queries; these arrays are lists of numbers and ISO dates built here, and
    tests/dashboard/test_charts.py checks they come out as Plotly would give them."""
    data = json.loads(figure.to_json())
    for trace, arrays in zip(data["data"], points or [], strict=bool(points)):
        trace.update(arrays)
    return data


def link_query(params: dict) -> str:
    """`?a=1&b=2` of the parameters given (None, "" and the default period left out)."""
    kept = {k: v for k, v in params.items() if v not in (None, "") and (k, v) != ("period", DEFAULT_PERIOD)}
    query = urlencode(kept)
    return f"?{query}" if query else ""


def tests_url(**params) -> str:
    """The tests page with these filters; pass the scope's period and repository last, so
    that a drill-down keeps the scope chosen."""
    return reverse("dashboard:tests") + link_query(params)


# Horizontal, above the plot: it pushes the top margin, so it never covers a bar.
TOP_LEGEND = {
    "orientation": "h",
    "x": 0,
    "xanchor": "left",
    "y": 1.02,
    "yanchor": "bottom",
    "traceorder": "normal",
}


def _top_layout(title: str, x_title: str, y_title: str, **extra) -> dict:
    """_layout (kept as the name the chart modules use)."""
    return _layout(title, x_title, y_title, **extra)


def count_ticks(highest: int) -> dict:
    """Whole-number ticks for an axis of counts (no "0.5 tests"), about eight of them."""
    return {"tick0": 0, "dtick": max(1, -(-int(highest) // 8)), "tickformat": ",d"}


def _axis(title: str, **extra) -> dict:
    return {"title": {"text": title}, "gridcolor": "#eef0f4", "automargin": True, **extra}
