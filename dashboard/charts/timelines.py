"""The test page's timelines: a test's status strip and its monitors' active intervals."""

from __future__ import annotations

from datetime import datetime

import plotly.graph_objects as go

from ..display import monitor_label, monitor_type_label
from ..templatetags.dashboard import duration
from .base import PALETTE, STATUS_COLORS, _axis, _layout, _text, to_json


def _timeline_layout(title: str, y_title: str, *, rows: int, start: datetime, now: datetime) -> dict:
    return _layout(
        title,
        "Time (UTC)",
        y_title,
        barmode="overlay",
        hovermode="closest",
        height=110 + 32 * rows,
        bargap=0.3,
        xaxis=_axis("Time (UTC)", type="date", range=[start.isoformat(), now.isoformat()]),
        yaxis=_axis(y_title, autorange="reversed", type="category"),
    )


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
    """Each monitor's active intervals, one row per monitor (display.monitor_label), one colour
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
                name=_text(monitor_type_label(monitor_type)),
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
