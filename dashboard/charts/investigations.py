"""Investigation charts: confidence histogram, mean confidence per day, facts by type."""

from __future__ import annotations

import plotly.graph_objects as go
from django.urls import reverse

from events.metrics import BAND_LABELS, CONFIDENCE_BANDS, HISTOGRAM_BINS, band_of

from .base import BAND_COLORS, PALETTE, _axis, _text, _top_layout, link_query, to_json

# Each band's lower bound, lowest first: the threshold lines of the confidence chart.
BAND_THRESHOLDS = sorted(
    ((band, low) for band, (low, _high) in CONFIDENCE_BANDS.items() if low is not None), key=lambda b: b[1]
)


def investigations_url(**params) -> str:
    return reverse("dashboard:investigations") + link_query(params) + "#list"


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
            line={"color": "#343a40", "width": 2},  # not a band colour: the bands are the guides
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
            marker={"color": PALETTE[1]},
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


def reliability_diagram(bins: list[dict]) -> dict | None:
    """Is Trunk's AI right? Per confidence tenth with verdicts, the share confirmed against
    the bin's mean confidence (the verdicts counted beside each point), and the diagonal
    of perfect calibration: a point below it is over-confident, above under-confident."""
    rated = [b for b in bins if b["count"]]
    if not rated:
        return None
    fig = go.Figure(
        [
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                name="Perfect calibration",
                line={"color": PALETTE[7], "width": 1, "dash": "dash"},
                hoverinfo="skip",
            ),
            go.Scatter(
                x=[round(b["mean_confidence"], 3) for b in rated],
                y=[round(b["share_confirmed"], 3) for b in rated],
                mode="lines+markers+text",
                name="Share confirmed",
                line={"color": PALETTE[0], "width": 2},
                marker={"size": 9, "color": [BAND_COLORS[band_of(b["low"])] for b in rated]},
                text=[f"n={b['count']}" for b in rated],
                textposition="top center",
                customdata=[[f"{b['low']:.1f}–{b['high']:.1f}", b["confirmed"], b["count"]] for b in rated],
                hovertemplate="Confidence %{customdata[0]} (mean %{x:.2f}): %{customdata[1]} of "
                "%{customdata[2]} confirmed (%{y:.0%})<extra></extra>",
            ),
        ],
        layout=_top_layout(
            "Reliability: share confirmed by confidence",
            "Mean confidence",
            "Share confirmed",
            hovermode="closest",
            xaxis=_axis("Mean confidence", range=[-0.02, 1.02], dtick=0.1, tickformat=".1f", zeroline=False),
            yaxis=_axis("Share confirmed", range=[-0.02, 1.1], tickformat=".0%", zeroline=False),
        ),
    )
    return to_json(fig)
