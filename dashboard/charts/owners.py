"""Owner charts: top owners by flaky and broken tests (overview), tests by status per owner."""

from __future__ import annotations

from collections.abc import Iterable

import plotly.graph_objects as go

from ..selectors.owners import severity_order
from .base import STATUS_COLORS, _axis, _layout, _text, _top_layout, count_ticks, tests_url, to_json


def top_owners(
    owner_rows: Iterable[dict], *, limit: int = 10, period: str | None = None, repository: int | None = None
) -> dict | None:
    """Owners with the most flaky and broken tests now (stacked horizontal bars, the most
    on top; ties by name, as the codeowners table); a segment links to the owner's tests
    in that status."""
    rows = sorted(
        (r for r in owner_rows if r["flaky"] or r["broken"]),
        key=severity_order,
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
            hovermode="closest",
            height=max(260, 90 + 28 * len(rows)),
            xaxis=_axis(
                "Flaky and broken tests now", **count_ticks(max(r["flaky"] + r["broken"] for r in rows))
            ),
        ),
    )
    return to_json(fig)


def owner_statuses(
    owner_rows: Iterable[dict], *, limit: int = 30, period: str | None = None, repository: int | None = None
) -> dict | None:
    """Each owner's flaky and broken tests now (stacked horizontal bars, most troubled on
    top, in the table's order), each bar labelled with the owner's total ("of 40"): the
    healthy tests are context, not bars, or they dwarf the problems. A segment links to
    the tests page filtered by that owner and status. Owners with no flaky or broken test
    are left out (the table lists them)."""
    rows = sorted(
        (r for r in owner_rows if r["flaky"] or r["broken"]), key=severity_order
    )  # the table's order, ties included
    shown = rows[:limit]
    if not shown:
        return None
    shown.reverse()  # Plotly draws the first category at the bottom
    labels = [_text(r["owner"]) for r in shown]
    title = "Flaky and broken tests per owner" + (
        f" (top {limit} of {len(rows)})" if len(rows) > limit else ""
    )
    widest = max(r["flaky"] + r["broken"] for r in shown)
    fig = go.Figure(
        [
            go.Bar(
                x=[r[status.lower()] for r in shown],
                y=labels,
                orientation="h",
                name=status.title(),
                marker={"color": STATUS_COLORS[status]},
                customdata=[
                    [
                        tests_url(
                            owner=r["owner_key"] or "none",
                            status=status,
                            period=period,
                            repository=repository,
                        ),
                        r["tests"],
                    ]
                    for r in shown
                ],
                hovertemplate=f"%{{y}}: %{{x}} {status.lower()} of %{{customdata[1]}} tests<extra></extra>",
            )
            for status in ("BROKEN", "FLAKY")
        ],
        layout=_top_layout(
            title,
            "Flaky and broken tests now (label: all the owner's tests)",
            "Owner",
            barmode="stack",
            hovermode="closest",
            height=max(240, 90 + 26 * len(shown)),
            xaxis=_axis("Flaky and broken tests now", range=[0, widest * 1.12 + 0.5], **count_ticks(widest)),
            yaxis=_axis("Owner"),
            annotations=[
                {
                    "x": r["flaky"] + r["broken"],
                    "y": label,
                    "xanchor": "left",
                    "xshift": 4,
                    "text": f"of {r['tests']}",
                    "showarrow": False,
                    "font": {"size": 11, "color": "#5c6475"},
                }
                for r, label in zip(shown, labels, strict=True)
            ],
        ),
    )
    return to_json(fig)
