"""The relapse curve (METRICS "Fixes that held"): the share of fixes still without a new
episode d days after the fix, as a step chart; the owner's curve beside the overall one."""

from __future__ import annotations

import plotly.graph_objects as go

from events.metrics import RELAPSE_CURVE_DAYS, RELAPSE_CURVE_MARKS, CurvePoint

from .base import PALETTE, _axis, _layout, _text, to_json

# The overall curve is the reference: grey and dashed when an owner's is drawn beside it.
OVERALL_COLOR = "#868e96"
TITLE = "Relapse curve: fixes still without a new episode"


def relapse_curve(curves: list[tuple[str, list[CurvePoint]]]) -> dict | None:
    """One step line (Kaplan-Meier) per (name, points), in order: the first solid (the
    owner's, or the overall curve alone), the others dashed grey. A curve without points
    (no closed episode) is left out; None when none is left. The number still observed
    is in each point's hover and in the table under the chart."""
    drawn = [(name, points) for name, points in curves if points]
    if not drawn:
        return None
    traces: list[go.Scatter] = []
    arrays: list[dict[str, list]] = []
    for i, (name, points) in enumerate(drawn):
        label = _text(name)
        first = i == 0
        traces.append(
            go.Scatter(
                name=label,
                mode="lines",
                line_shape="hv",
                line={"color": PALETTE[0] if first else OVERALL_COLOR, "dash": "solid" if first else "dash"},
                # The name from the trace, not in the template: an owner may be named "%{y}".
                hovertemplate="%{fullData.name}: %{y:.0%} after %{x} days (%{customdata} observed)<extra></extra>",
            )
        )
        arrays.append(
            {
                "x": [p.day for p in points],
                "y": [round(p.surviving, 4) for p in points],
                "customdata": [p.at_risk for p in points],
            }
        )
    fig = go.Figure(
        traces,
        layout=_layout(
            TITLE,
            "Days since the fix",
            "Still without a new episode",
            showlegend=len(drawn) > 1,
            xaxis=_axis(
                "Days since the fix",
                range=[0, RELAPSE_CURVE_DAYS],
                tickmode="array",
                tickvals=list(RELAPSE_CURVE_MARKS),
            ),
            yaxis=_axis("Still without a new episode", range=[0, 1.02], tickformat=".0%"),
        ),
    )
    return to_json(fig, arrays)
