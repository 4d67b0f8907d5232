"""Plotly figure builders: query results in, figure dicts out (JSON-ready).

Every chart has a title, labelled axes, a legend when it has several series and hover
details. A builder returns None when there is nothing to draw, and the template shows
a readable empty state instead. Colours are the app's (see static/flakyboard/app.css).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from html import escape
from urllib.parse import urlencode

import plotly.graph_objects as go
from django.urls import reverse

from events.metrics import BAND_LABELS, CONFIDENCE_BANDS, HISTOGRAM_BINS, band_of

from .templatetags.dashboard import duration

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


def tests_url(**params) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse("dashboard:tests") + (f"?{query}" if query else "")


def status_trend(
    series: list[dict], *, repository: int | None = None, owner: str | None = None
) -> dict | None:
    """Flaky and broken tests at the end of each day (from status history), all tests or
    one owner's; a point links to those tests with that status (`owner` is the URL
    parameter: the owner's key or "none")."""
    if not series:
        return None
    days = [row["day"].isoformat() for row in series]
    statuses = ("FLAKY", "BROKEN")
    fig = go.Figure(
        [
            go.Scatter(
                name=status.title(),
                mode="lines",
                line={"color": STATUS_COLORS[status], "width": 2, "shape": "hv"},
                hovertemplate=f"{status.title()}: %{{y}}<extra></extra>",
            )
            for status in statuses
        ],
        layout=_top_layout("Flaky and broken tests over time", "Day (UTC)", "Tests"),
    )
    return to_json(
        fig,
        [
            {
                "x": days,
                "y": [int(row[status]) for row in series],
                "customdata": [tests_url(owner=owner, status=status, repository=repository)] * len(days),
            }
            for status in statuses
        ],
    )


def transitions(rows: list[dict], *, days: list) -> dict | None:
    """Status changes per day, by the status they went into."""
    if not rows:
        return None
    by = {(r["day"], r["new_status"]): r["count"] for r in rows}
    x = [d.isoformat() for d in days]
    labels = {"FLAKY": "Into FLAKY", "BROKEN": "Into BROKEN", "HEALTHY": "Back to HEALTHY"}
    statuses = ("FLAKY", "BROKEN", "HEALTHY")
    fig = go.Figure(
        [
            go.Bar(
                name=labels[status],
                marker={"color": STATUS_COLORS[status]},
                hovertemplate=f"{labels[status]}: %{{y}}<extra></extra>",
            )
            for status in statuses
        ],
        layout=_layout("Status transitions per day", "Day (UTC)", "Status changes", barmode="stack"),
    )
    return to_json(fig, [{"x": x, "y": [int(by.get((d, status), 0)) for d in days]} for status in statuses])


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
            y=[_text(r["owner"]) for r in rows],
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


# ---- codeowners, monitors, investigations

# low is red-ish, medium orange, high green (the status colours: same meaning of good and bad)
BAND_COLORS = {"low": "#e03131", "medium": "#f08c00", "high": "#2f9e44"}
# Each band's lower bound, lowest first: the threshold lines of the confidence chart.
BAND_THRESHOLDS = sorted(
    ((band, low) for band, (low, _high) in CONFIDENCE_BANDS.items() if low is not None), key=lambda b: b[1]
)
# Monitor types get colours that do not read as a status (no green, orange or red).
TYPE_PALETTE = ["#3b5bdb", "#7048e8", "#1098ad", "#d6336c", "#868e96", "#5c940d", "#ae3ec9", "#0b7285"]
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


def investigations_url(**params) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse("dashboard:investigations") + (f"?{query}" if query else "") + "#list"


def owner_statuses(
    owner_rows: Iterable[dict], *, limit: int = 30, repository: int | None = None
) -> dict | None:
    """Each owner's tests by status now (stacked horizontal bars, most troubled on top);
    a segment links to the tests page filtered by that owner and status."""
    rows = sorted(owner_rows, key=lambda r: (-r["flaky"] - r["broken"], -r["tests"], r["owner"].casefold()))
    shown = rows[:limit]
    if not shown:
        return None
    shown.reverse()  # Plotly draws the first category at the bottom
    labels = [_text(r["owner"]) for r in shown]
    counts = {
        "BROKEN": [r["broken"] for r in shown],
        "FLAKY": [r["flaky"] for r in shown],
        "HEALTHY": [r["tests"] - r["flaky"] - r["broken"] for r in shown],
    }
    title = "Tests by status per owner" + (f" (top {limit} of {len(rows)})" if len(rows) > limit else "")
    fig = go.Figure(
        [
            go.Bar(
                x=counts[status],
                y=labels,
                orientation="h",
                name=status.title(),
                marker={"color": STATUS_COLORS[status]},
                customdata=[
                    tests_url(owner=r["owner_key"] or "none", status=status, repository=repository)
                    for r in shown
                ],
                hovertemplate=f"%{{y}}: %{{x}} {status.lower()}<extra></extra>",
            )
            for status in ("BROKEN", "FLAKY", "HEALTHY")
        ],
        layout=_top_layout(
            title,
            "Tests now",
            "Owner",
            barmode="stack",
            hovermode="closest",
            height=max(280, 110 + 24 * len(shown)),
            margin={"l": 120, "r": 20, "t": 50, "b": 60},
            xaxis=_axis("Tests now"),
            yaxis=_axis("Owner"),
        ),
    )
    return to_json(fig)


def _day_range(days: Iterable[date], start: date | None, end: date) -> list[date]:
    first = start or min(days, default=end)
    return [first + timedelta(days=i) for i in range((end - first).days + 1)]


def monitor_activations(rows: list[dict], *, start: date | None, end: date) -> dict | None:
    """Monitor activations per day (event time), stacked by monitor type."""
    if not rows:
        return None
    days = _day_range((r["day"] for r in rows), start, end)
    by = {(r["day"], r["type"]): r["count"] for r in rows}
    types = sorted({r["type"] for r in rows})
    x = [d.isoformat() for d in days]
    fig = go.Figure(
        [
            go.Bar(
                name=_text(monitor_type),
                marker={"color": TYPE_PALETTE[i % len(TYPE_PALETTE)]},
                hovertemplate=f"{_text(monitor_type)}: %{{y}}<extra></extra>",
            )
            for i, monitor_type in enumerate(types)
        ],
        layout=_top_layout(
            "Monitor activations per day",
            "Day (UTC)",
            "Activations",
            barmode="stack",
            xaxis=_axis("Day (UTC)"),
            yaxis=_axis("Activations", rangemode="tozero"),
        ),
    )
    return to_json(fig, [{"x": x, "y": [int(by.get((d, kind), 0)) for d in days]} for kind in types])


def monitor_resolve_times(medians: dict[str, timedelta]) -> dict | None:
    """Median time from a monitor's activation to its resolution, per monitor type."""
    if not medians:
        return None
    types = sorted(medians, key=lambda t: medians[t])
    in_days = max(medians.values()) >= timedelta(hours=48)
    unit, scale = ("days", 86400) if in_days else ("hours", 3600)
    fig = go.Figure(
        go.Bar(
            x=[round(medians[t].total_seconds() / scale, 2) for t in types],
            y=[_text(t) for t in types],
            orientation="h",
            name="Median time to resolve",
            marker={"color": PALETTE[0]},
            text=[duration(medians[t]) for t in types],
            textposition="auto",
            hovertemplate="%{y}: median %{text}<extra></extra>",
        ),
        layout=_top_layout(
            "Median time to resolve per monitor type",
            f"Median time to resolve ({unit})",
            "Monitor type",
            hovermode="closest",
            height=max(240, 110 + 40 * len(types)),
            xaxis=_axis(f"Median time to resolve ({unit})", rangemode="tozero"),
            yaxis=_axis("Monitor type"),
        ),
    )
    return to_json(fig)


def _bins_of(band: str) -> list[tuple[int, float, float]]:
    """(index, low edge, high edge) of the histogram's bins in `band`: the band limits fall
    on bin edges, so a bin's band is its low edge's (the last bin ends at 1.0, included)."""
    return [
        (i, low, 1.0 if high is None else high)
        for i, (low, high) in enumerate(HISTOGRAM_BINS)
        if band_of(low) == band
    ]


def confidence_histogram(histogram: list[int], *, period: str, repository: int | None = None) -> dict | None:
    """Investigations by confidence in tenths (bars between the bin edges), coloured by
    band; a bar links to the list filtered by its band."""
    if not any(histogram):
        return None
    fig = go.Figure(
        [
            go.Bar(
                x=[round(low + 0.05, 2) for _i, low, _high in _bins_of(band)],
                y=[histogram[i] for i, _low, _high in _bins_of(band)],
                width=0.092,
                name=BAND_LABELS[band],
                marker={"color": BAND_COLORS[band]},
                customdata=[
                    [
                        investigations_url(band=band, period=period, repository=repository),
                        f"{low:.1f}–{high:.1f}",
                    ]
                    for _i, low, high in _bins_of(band)
                ],
                hovertemplate="Confidence %{customdata[1]}: %{y} investigation(s)<extra>" + band + "</extra>",
            )
            for band in ("low", "medium", "high")
        ],
        layout=_top_layout(
            "Investigations by confidence",
            "Confidence",
            "Investigations",
            hovermode="closest",
            xaxis=_axis("Confidence", range=[-0.02, 1.02], dtick=0.1, tickformat=".1f", zeroline=False),
            yaxis=_axis("Investigations", rangemode="tozero"),
        ),
    )
    return to_json(fig)


def confidence_over_time(rows: list[dict]) -> dict | None:
    """Mean confidence of the investigations completed each day (count on hover), with
    the band thresholds drawn as guides."""
    if not rows:
        return None
    fig = go.Figure(
        go.Scatter(
            name="Mean confidence",
            mode="lines+markers",
            line={"color": PALETTE[0], "width": 2},
            marker={"size": 6},
            hovertemplate="Mean confidence %{y:.2f} over %{customdata} investigation(s)<extra></extra>",
        ),
        layout=_top_layout(
            "Mean confidence per day",
            "Day (UTC)",
            "Mean confidence",
            xaxis=_axis("Day (UTC)"),
            yaxis=_axis("Mean confidence", range=[0, 1.05]),
            shapes=[
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": y,
                    "y1": y,
                    "line": {"color": BAND_COLORS[band], "width": 1, "dash": "dot"},
                }
                for band, y in BAND_THRESHOLDS
            ],
            annotations=[
                {
                    "xref": "paper",
                    "x": 1,
                    "xanchor": "right",
                    "y": y,
                    "yanchor": "bottom",
                    "text": text,
                    "showarrow": False,
                    "font": {"size": 11, "color": BAND_COLORS[band]},
                }
                for band, y, text in ((band, y, f"{band} ≥ {y}") for band, y in BAND_THRESHOLDS)
            ],
        ),
    )
    points = {
        "x": [r["day"].isoformat() for r in rows],
        "y": [round(float(r["mean_confidence"]), 3) for r in rows],
        "customdata": [int(r["count"]) for r in rows],
    }
    return to_json(fig, [points])


def facts_by_type(rows: list[dict], *, period: str, repository: int | None = None) -> dict | None:
    """Facts per type (horizontal bars, most frequent on top) with their mean confidence
    on hover; a bar links to the investigations that have such a fact."""
    if not rows:
        return None
    rows = list(reversed(rows))  # Plotly draws the first category at the bottom
    fig = go.Figure(
        go.Bar(
            x=[r["count"] for r in rows],
            y=[_text(r["fact_type"]) for r in rows],
            orientation="h",
            name="Facts",
            marker={"color": PALETTE[4]},
            customdata=[
                [
                    investigations_url(fact_type=r["fact_type"], period=period, repository=repository),
                    "—" if r["mean_confidence"] is None else f"{r['mean_confidence']:.2f}",
                ]
                for r in rows
            ],
            hovertemplate="%{y}: %{x} facts, mean confidence %{customdata[1]}<extra></extra>",
        ),
        layout=_top_layout(
            "Facts by type",
            "Facts",
            "Fact type",
            hovermode="closest",
            height=max(260, 110 + 34 * len(rows)),
            xaxis=_axis("Facts", rangemode="tozero"),
            yaxis=_axis("Fact type"),
        ),
    )
    return to_json(fig)


# ---------------------------------------------------------------- tests and test detail


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
            label = _text(monitor_label(monitor["type"], monitor["monitor_id"]))
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
                name=_text(monitor_type),
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
