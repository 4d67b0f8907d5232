"""Monitor charts: activations per day, median time to resolve per monitor type."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import plotly.graph_objects as go

from events.metrics import LABELS

from ..display import monitor_type_label
from ..templatetags.dashboard import duration
from .base import PALETTE, _axis, _text, _top_layout, to_json

# Monitor types get colours that do not read as a status (no green, orange or red).
TYPE_PALETTE = ["#3b5bdb", "#7048e8", "#1098ad", "#d6336c", "#868e96", "#5c940d", "#ae3ec9", "#0b7285"]


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
                name=_text(monitor_type_label(monitor_type)),
                marker={"color": TYPE_PALETTE[i % len(TYPE_PALETTE)]},
                hovertemplate=f"{_text(monitor_type_label(monitor_type))}: %{{y}}<extra></extra>",
            )
            for i, monitor_type in enumerate(types)
        ],
        layout=_top_layout(
            "Monitor activations per day",
            "Day (UTC)",
            LABELS["activations"],
            barmode="stack",
            xaxis=_axis("Day (UTC)"),
            yaxis=_axis(LABELS["activations"], rangemode="tozero"),
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
            y=[_text(monitor_type_label(t)) for t in types],
            orientation="h",
            name=LABELS["median_time_to_resolve"],
            marker={"color": PALETTE[0]},
            text=[duration(medians[t]) for t in types],
            textposition="auto",
            hovertemplate="%{y}: median %{text}<extra></extra>",
        ),
        layout=_top_layout(
            f"{LABELS['median_time_to_resolve']} per monitor type",
            f"{LABELS['median_time_to_resolve']} ({unit})",
            LABELS["monitor_type"],
            hovermode="closest",
            height=max(240, 110 + 40 * len(types)),
            xaxis=_axis(f"{LABELS['median_time_to_resolve']} ({unit})", rangemode="tozero"),
            yaxis=_axis(LABELS["monitor_type"]),
        ),
    )
    return to_json(fig)
