"""Owner charts: top owners by flaky tests (overview), tests by status per owner."""

from __future__ import annotations

from collections.abc import Iterable

import plotly.graph_objects as go

from .base import STATUS_COLORS, _axis, _layout, _text, _top_layout, tests_url, to_json


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
