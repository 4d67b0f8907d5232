"""Plotly figure builders: query results in, figure dicts out (JSON-ready).

Every chart has a title, labelled axes, a legend when it has several series and hover
details. A builder returns None when there is nothing to draw, and the template shows
a readable empty state instead. Colours are the app's (see static/flakyboard/app.css).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlencode

import plotly.graph_objects as go
from django.urls import reverse

STATUS_COLORS = {"HEALTHY": "#2f9e44", "FLAKY": "#f08c00", "BROKEN": "#e03131"}
PALETTE = ["#3b5bdb", "#f08c00", "#e03131", "#2f9e44", "#7048e8", "#1098ad", "#d6336c", "#868e96"]
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


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


def to_json(figure: go.Figure) -> dict:
    """A plain dict for `json_script` (which escapes <, > and & in untrusted names)."""
    return json.loads(figure.to_json())


def tests_url(**params) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse("dashboard:tests") + (f"?{query}" if query else "")


def status_trend(series: list[dict], *, repository: int | None = None) -> dict | None:
    """Flaky and broken tests at the end of each day (from status history)."""
    if not series:
        return None
    days = [row["day"].isoformat() for row in series]
    fig = go.Figure(
        [
            go.Scatter(
                x=days,
                y=[row[status] for row in series],
                name=status.title(),
                mode="lines",
                line={"color": STATUS_COLORS[status], "width": 2, "shape": "hv"},
                customdata=[tests_url(status=status, repository=repository)] * len(days),
                hovertemplate=f"{status.title()}: %{{y}}<extra></extra>",
            )
            for status in ("FLAKY", "BROKEN")
        ],
        layout=_layout("Flaky and broken tests over time", "Day (UTC)", "Tests"),
    )
    return to_json(fig)


def transitions(rows: list[dict], *, days: list) -> dict | None:
    """Status changes per day, by the status they went into."""
    if not rows:
        return None
    by = {(r["day"], r["new_status"]): r["count"] for r in rows}
    x = [d.isoformat() for d in days]
    labels = {"FLAKY": "Into FLAKY", "BROKEN": "Into BROKEN", "HEALTHY": "Back to HEALTHY"}
    fig = go.Figure(
        [
            go.Bar(
                x=x,
                y=[by.get((d, status), 0) for d in days],
                name=labels[status],
                marker={"color": STATUS_COLORS[status]},
                hovertemplate=f"{labels[status]}: %{{y}}<extra></extra>",
            )
            for status in ("FLAKY", "BROKEN", "HEALTHY")
        ],
        layout=_layout("Status transitions per day", "Day (UTC)", "Status changes", barmode="stack"),
    )
    return to_json(fig)


def top_owners(owner_rows: Iterable[dict], *, limit: int = 10, repository: int | None = None) -> dict | None:
    """Owners with the most flaky tests now (horizontal bars, biggest on top)."""
    rows = sorted((r for r in owner_rows if r["flaky"]), key=lambda r: (-r["flaky"], r["owner"].casefold()))[
        :limit
    ]
    if not rows:
        return None
    rows.reverse()
    fig = go.Figure(
        go.Bar(
            x=[r["flaky"] for r in rows],
            y=[r["owner"] for r in rows],
            orientation="h",
            name="Flaky tests",
            marker={"color": STATUS_COLORS["FLAKY"]},
            customdata=[
                tests_url(status="FLAKY", owner=r["owner_key"] or "none", repository=repository) for r in rows
            ],
            hovertemplate="%{y}: %{x} flaky<extra></extra>",
        ),
        layout=_layout(
            "Top owners by flaky tests",
            "Flaky tests now",
            "Owner",
            hovermode="closest",
            height=max(260, 60 + 28 * len(rows)),
            margin={"l": 160, "r": 20, "t": 50, "b": 50},
        ),
    )
    return to_json(fig)


# ---------------------------------------------------------------- tests and test detail
# This section's imports sit here, not at the top, so that sections added to this module
# in parallel merge without conflicts.

from datetime import datetime  # noqa: E402
from html import escape  # noqa: E402

from .templatetags.dashboard import duration  # noqa: E402


def _timeline_layout(title: str, y_title: str, *, rows: int, start: datetime, now: datetime) -> dict:
    return _layout(
        title,
        "Time (UTC)",
        y_title,
        barmode="overlay",
        hovermode="closest",
        height=140 + 32 * rows,
        bargap=0.3,
        # A small left margin grown to fit the row labels (automargin): usable at 390 px.
        margin={"l": 10, "r": 20, "t": 70, "b": 50},
        xaxis={"type": "date", "range": [start.isoformat(), now.isoformat()], "gridcolor": "#eef0f4",
               "title": {"text": "Time (UTC)"}},
        yaxis={"title": {"text": y_title}, "automargin": True, "autorange": "reversed", "type": "category"},
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
    )  # fmt: skip


def _span_ms(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0) * 1000


def _moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def status_timeline(intervals: list, *, now: datetime) -> dict | None:
    """A test's HEALTHY / FLAKY / BROKEN intervals as one horizontal strip (an open
    interval ends at `now`). Bars on a date axis: base = start, x = duration in ms."""
    if not intervals:
        return None
    traces = []
    for status in ("HEALTHY", "FLAKY", "BROKEN"):
        mine = [i for i in intervals if i.state == status]
        if not mine:
            continue
        ends = [max(i.end or now, i.start) for i in mine]
        traces.append(
            go.Bar(
                base=[i.start.isoformat() for i in mine],
                x=[_span_ms(i.start, end) for i, end in zip(mine, ends, strict=True)],
                y=["Status"] * len(mine),
                orientation="h",
                name=status.title(),
                marker={"color": STATUS_COLORS[status], "line": {"width": 0}},
                customdata=[
                    [_moment(i.start), _moment(end) if i.end else "now", duration(end - i.start)]
                    for i, end in zip(mine, ends, strict=True)
                ],
                hovertemplate=(
                    f"<b>{status.title()}</b><br>%{{customdata[0]}} → %{{customdata[1]}} UTC"
                    "<br>%{customdata[2]}<extra></extra>"
                ),
            )
        )
    start = min(i.start for i in intervals)
    return to_json(
        go.Figure(
            traces, layout=_timeline_layout("Status from first seen to now", "", rows=1, start=start, now=now)
        )
    )


def monitor_timeline(monitors: list[dict], *, now: datetime, start: datetime | None = None) -> dict | None:
    """Each monitor's active intervals, one row per monitor ("type 1a2b3c4d"), one colour
    per monitor type. Open intervals end at `now`."""
    rows = [m for m in monitors if m["intervals"]]
    if not rows:
        return None
    types = sorted({m["type"] for m in rows})
    # Not the status colours: an orange monitor bar would read as "flaky".
    palette = [c for c in PALETTE if c not in STATUS_COLORS.values()]
    colors = {t: palette[i % len(palette)] for i, t in enumerate(types)}
    traces = []
    for monitor_type in types:
        base, spans, labels, custom = [], [], [], []
        for monitor in (m for m in rows if m["type"] == monitor_type):
            label = _plain(monitor_label(monitor["type"], monitor["monitor_id"]))
            for interval in monitor["intervals"]:
                end = max(interval["end"] or now, interval["start"])
                base.append(interval["start"].isoformat())
                spans.append(_span_ms(interval["start"], end))
                labels.append(label)
                custom.append(
                    [
                        _moment(interval["start"]),
                        _moment(end) if interval["end"] else "now (still active)",
                        duration(end - interval["start"]),
                    ]
                )
        traces.append(
            go.Bar(
                base=base,
                x=spans,
                y=labels,
                orientation="h",
                name=_plain(monitor_type),
                marker={"color": colors[monitor_type], "line": {"width": 0}},
                customdata=custom,
                hovertemplate=(
                    "<b>%{y}</b> active<br>%{customdata[0]} → %{customdata[1]} UTC"
                    "<br>%{customdata[2]}<extra></extra>"
                ),
            )
        )
    first = min(i["start"] for m in rows for i in m["intervals"])
    start = min(start, first) if start else first
    layout = _timeline_layout("Monitors active over time", "Monitor", rows=len(rows), start=start, now=now)
    return to_json(go.Figure(traces, layout=layout))


def monitor_label(monitor_type: str, monitor_id) -> str:
    return f"{monitor_type} {str(monitor_id)[:8]}"


def _plain(text: str) -> str:
    """Untrusted text for a plotly label: plotly reads a little HTML in labels (<a href>,
    <b>, <span style>) and shows entities as characters, so escaping keeps it text."""
    return escape(text, quote=False)
