"""Owner charts: top owners by flaky and broken tests (overview), tests by status per owner."""

from __future__ import annotations

from collections.abc import Iterable

import plotly.graph_objects as go

from .base import STATUS_COLORS, _axis, _layout, _text, _top_layout, tests_url, to_json


def top_owners(
    owner_rows: Iterable[dict], *, limit: int = 10, period: str | None = None, repository: int | None = None
) -> dict | None:
    """Owners with the most flaky and broken tests now (stacked horizontal bars, the most
    on top; ties by name, as the codeowners table); a segment links to the owner's tests
    in that status."""
    rows = sorted(
        (r for r in owner_rows if r["flaky"] or r["broken"]),
        key=lambda r: (-r["flaky"] - r["broken"], r["owner"].casefold()),
    )[:limit]
    if not rows:
        return None
    rows.reverse()  # Plotly draws the first category at the bottom
    labels = [_text(r["owner"]) for r in rows]
    fig = go.Figure(
        [
            go.Bar(
                x=[r[status.lower()] for r in rows],
                y=labels,
                orientation="h",
                name=status.capitalize(),
                marker={"color": STATUS_COLORS[status]},
                customdata=[
                    tests_url(
                        status=status, owner=r["owner_key"] or "none", period=period, repository=repository
                    )
                    for r in rows
                ],
                hovertemplate="%{y}: %{x} " + status.lower() + "<extra></extra>",
            )
            for status in ("BROKEN", "FLAKY")
        ],
        layout=_layout(
            "Top owners by flaky and broken tests",
            "Flaky and broken tests now",
            "Owner",
            barmode="stack",
            legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
            hovermode="closest",
            height=max(260, 60 + 28 * len(rows)),
            margin={"l": 160, "r": 20, "t": 50, "b": 50},
        ),
    )
    return to_json(fig)


def owner_statuses(
    owner_rows: Iterable[dict], *, limit: int = 30, period: str | None = None, repository: int | None = None
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
                    tests_url(
                        owner=r["owner_key"] or "none", status=status, period=period, repository=repository
                    )
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
