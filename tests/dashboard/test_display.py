"""The display layer: one name for a monitor on every page and chart (issue 14)."""

import uuid

import pytest

from dashboard import charts
from dashboard.display import monitor_label, monitor_type_label

MONITOR = uuid.UUID("0b6f1d7e-5a43-4c1e-9a57-2f7d2c1e8a10")


@pytest.mark.parametrize(
    ("monitor_type", "label"),
    [
        ("failure_rate", "Failure rate monitor"),
        ("pass_on_retry", "Pass on retry monitor"),
        ("failure_count", "Failure count monitor"),
        ("  odd--type_ ", "Odd type monitor"),
        ("", "Monitor"),
    ],
)
def test_monitor_type_label(monitor_type, label):
    assert monitor_type_label(monitor_type) == label


def test_monitor_label_type_and_short_id_or_name():
    assert monitor_label("failure_rate", MONITOR) == "Failure rate monitor · 0b6f1d7e"
    assert monitor_label("failure_rate", str(MONITOR)) == "Failure rate monitor · 0b6f1d7e"
    assert monitor_label("pass_on_retry", MONITOR, name="Nightly") == "Pass on retry monitor · Nightly"
    # The charts name monitors the same way (one function).
    assert charts.monitor_label is monitor_label


def test_monitor_timeline_rows_and_legend_use_the_label():
    from datetime import UTC, datetime

    start = datetime(2026, 11, 1, tzinfo=UTC)
    figure = charts.monitor_timeline(
        [{"type": "failure_rate", "monitor_id": MONITOR, "intervals": [{"start": start, "end": None}]}],
        now=datetime(2026, 11, 2, tzinfo=UTC),
    )
    trace = figure["data"][0]
    assert trace["name"] == "Failure rate monitor"
    assert trace["y"] == ["Failure rate monitor · 0b6f1d7e"]
