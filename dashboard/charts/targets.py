"""Owners' targets: the weekly attainment of an owner's triage and fix targets."""

from __future__ import annotations

import plotly.graph_objects as go

from ..selectors.targets import WeekAttainment
from .base import PALETTE, _axis, _top_layout, to_json


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def attainment_trend(weeks: list[WeekAttainment], *, triage_days: int, fix_days: int) -> dict | None:
    """The share of episodes that met the triage and the fix target, per ISO week of the
    episodes' start (a line each; a week without a decided episode is a gap; hover: met
    of decided)."""
    if not weeks:
        return None
    series = (
        (f"Triaged within {triage_days} d", "triage", PALETTE[0]),
        (f"Fixed within {fix_days} d", "fix", PALETTE[2]),
    )
    fig = go.Figure(
        [
            go.Scatter(
                name=name,
                mode="lines+markers",
                line={"color": color, "width": 2},
                marker={"size": 6},
                connectgaps=False,
                hovertemplate=f"{name}: %{{y}}% (%{{customdata}})<extra></extra>",
            )
            for name, _kind, color in series
        ],
        layout=_top_layout(
            "Targets met per week of episode start",
            "Week of the episodes' start (ISO, UTC)",
            "Episodes that met the target (%)",
            xaxis=_axis("Week of the episodes' start (ISO, UTC)", type="date"),
            yaxis=_axis("Episodes that met the target (%)", range=[0, 105], ticksuffix="%"),
        ),
    )
    points: list[dict[str, list]] = []
    for _name, kind, _color in series:
        met = [getattr(w, f"{kind}_met") for w in weeks]
        missed = [getattr(w, f"{kind}_missed") for w in weeks]
        points.append(
            {
                "x": [w.week.date().isoformat() for w in weeks],
                "y": [_percent(getattr(w, f"{kind}_attainment")) for w in weeks],
                "customdata": [f"{m} of {m + x}" for m, x in zip(met, missed, strict=True)],
            }
        )
    return to_json(fig, points)
