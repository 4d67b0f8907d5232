"""The per-day charts add their per-point arrays after Plotly validated the rest of the
figure (dashboard.charts.to_json): what they give must be what Plotly itself gives for
the whole figure, arrays included."""

import json
from datetime import date, timedelta

import plotly.graph_objects as go
import pytest

from dashboard import charts

DAYS = [date(2026, 1, 1) + timedelta(days=i) for i in range(40)]


def per_day_charts() -> dict[str, dict]:
    series = [{"day": d, "FLAKY": i % 5, "BROKEN": i % 3, "HEALTHY": 10} for i, d in enumerate(DAYS)]
    transitions = [
        {"day": d, "new_status": s, "count": i % 4 + 1}
        for i, d in enumerate(DAYS)
        for s in ("FLAKY", "HEALTHY")
    ]
    activations = [
        {"day": d, "type": t, "count": i % 6 + 1}
        for i, d in enumerate(DAYS[::2])
        for t in ("a<b>", "failure_rate")
    ]
    confidence = [{"day": d, "count": i + 1, "mean_confidence": 0.1 + i / 100} for i, d in enumerate(DAYS)]
    return {
        "status_trend": charts.status_trend(series, owner="@acme/web", repository=3),
        "transitions": charts.transitions(transitions, days=DAYS),
        "monitor_activations": charts.monitor_activations(activations, start=None, end=DAYS[-1]),
        "confidence_over_time": charts.confidence_over_time(confidence),
    }


@pytest.mark.parametrize("name", list(per_day_charts()))
def test_per_day_chart_is_what_plotly_gives_for_the_whole_figure(name):
    figure = per_day_charts()[name]
    assert json.loads(go.Figure(figure).to_json()) == figure
    for trace in figure["data"]:
        assert len(trace["x"]) == len(trace["y"]) > 1


def test_per_day_points_line_up_with_their_days():
    figure = per_day_charts()["transitions"]
    into_flaky = figure["data"][0]
    assert into_flaky["name"] == "Into FLAKY"
    assert into_flaky["x"][:2] == ["2026-01-01", "2026-01-02"] and into_flaky["y"][:2] == [1, 2]
    assert figure["data"][1]["y"] == [0] * len(DAYS)  # no change into BROKEN


def test_status_trend_points_link_to_their_own_status_list():
    """Each line's points open the tests with that line's status (in the owner's and
    repository's scope), and the hover says the list is of the tests with it now."""
    series = [{"day": d, "FLAKY": 4, "BROKEN": 1} for d in DAYS[:7]]
    figure = charts.status_trend(series, period="7d", owner="@acme/web", repository=3)
    assert figure is not None
    by_name = {trace["name"]: trace for trace in figure["data"]}
    assert set(by_name) == {"Flaky", "Broken"}
    for name, trace in by_name.items():
        status = name.upper()
        assert trace["customdata"] == [
            f"/tests/?owner=%40acme%2Fweb&status={status}&period=7d&repository=3"
        ] * len(series)
        assert f"click: the tests {name.lower()} now" in trace["hovertemplate"]
