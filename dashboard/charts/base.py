"""What every chart shares: the app's colours, the layout and axis helpers, the JSON
conversion, and the tests page links a point or bar opens."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import urlencode

import plotly.graph_objects as go
from django.urls import reverse

from events.metrics import DEFAULT_PERIOD

STATUS_COLORS = {"HEALTHY": "#2f9e44", "FLAKY": "#f08c00", "BROKEN": "#e03131"}
PALETTE = ["#3b5bdb", "#f08c00", "#e03131", "#2f9e44", "#7048e8", "#1098ad", "#d6336c", "#868e96"]
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def _text(value: str) -> str:
    """Untrusted text as a Plotly label: Plotly reads a subset of HTML in labels (<a>,
    <b>, <br>, <span style>...) and decodes entities, so escaping shows it literally."""
    return escape(value, quote=False)


def _layout(title: str, x_title: str, y_title: str, **extra) -> dict:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "xaxis": {"title": {"text": x_title}, "gridcolor": "#eef0f4"},
        "yaxis": {"title": {"text": y_title}, "gridcolor": "#eef0f4", "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.25},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
        "font": {"family": FONT, "size": 12, "color": "#1d2330"},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "hovermode": "x unified",
        "height": 340,
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


# Legends sit above the plot, under the title: below it they collide with the x-axis
# title and rotated ticks on narrow screens.
TOP_LEGEND = {
    "orientation": "h",
    "x": 0,
    "xanchor": "left",
    "y": 1.02,
    "yanchor": "bottom",
    "traceorder": "normal",
}
# The title pushes the top margin (automargin) so that a legend wrapping onto several
# rows on a phone sits between the title and the plot instead of over them.
TOP_TITLE = {"automargin": True, "pad": {"b": 10, "l": 4}}


def _top_layout(title: str, x_title: str, y_title: str, **extra) -> dict:
    """_layout with the legend (if any) above the plot, under the title; labelled axes
    that make room for long labels."""
    extra = {"xaxis": _axis(x_title), "yaxis": _axis(y_title, rangemode="tozero"), **extra}
    layout = _layout(title, x_title, y_title, legend=TOP_LEGEND, **extra)
    layout["title"] = {**layout["title"], **TOP_TITLE}
    return layout


def _axis(title: str, **extra) -> dict:
    return {"title": {"text": title}, "gridcolor": "#eef0f4", "automargin": True, **extra}
