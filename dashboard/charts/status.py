"""Status charts: flaky and broken tests over time, status transitions per day."""

from __future__ import annotations

import plotly.graph_objects as go

from .base import STATUS_COLORS, _axis, _layout, _top_layout, count_ticks, tests_url, to_json


def status_trend(
    series: list[dict], *, period: str | None = None, repository: int | None = None, owner: str | None = None
) -> dict | None:
    """Flaky and broken tests at the end of each day (from status history), all tests or
    one owner's; a point of a line links to the tests with that line's status (`owner`
    is the URL parameter: the owner's key or "none"). The tests list shows the status of
    now, not of the day clicked, and the hover says so."""
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
                hovertemplate=f"{status.title()}: %{{y}} (click: the tests {status.lower()} now)<extra></extra>",
            )
            for status in statuses
        ],
        layout=_top_layout(
            "Flaky and broken tests over time",
            "Day (UTC)",
            "Tests",
            yaxis=_axis(
                "Tests", rangemode="tozero", **count_ticks(max(row[s] for row in series for s in statuses))
            ),
        ),
    )
    return to_json(
        fig,
        [
            {
                "x": days,
                "y": [int(row[status]) for row in series],
                "customdata": [tests_url(owner=owner, status=status, period=period, repository=repository)]
                * len(days),
            }
            for status in statuses
        ],
    )


def transitions(rows: list[dict], *, days: list) -> dict | None:
    """Status changes per day, by the status they went into."""
    if not rows:
        return None
    by = {(r["day"], r["new_status"]): r["count"] for r in rows}
    daily: dict = {}
    for r in rows:
        daily[r["day"]] = daily.get(r["day"], 0) + r["count"]
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
        layout=_layout(
            "Status transitions per day",
            "Day (UTC)",
            "Status changes",
            barmode="stack",
            yaxis=_axis("Status changes", rangemode="tozero", **count_ticks(max(daily.values(), default=1))),
        ),
    )
    return to_json(fig, [{"x": x, "y": [int(by.get((d, status), 0)) for d in days]} for status in statuses])
