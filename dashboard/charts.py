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
