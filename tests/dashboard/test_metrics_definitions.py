"""The definitions in events.metrics (docs/metrics.md) that the read side relies on."""

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from events import metrics, rollups


@pytest.mark.parametrize(
    "confidence, band",
    [
        (None, ""),
        (0.0, "low"),
        (0.499, "low"),
        (0.5, "medium"),
        (0.799, "medium"),
        (0.8, "high"),
        (1.0, "high"),
    ],
)
def test_bands(confidence, band):
    assert metrics.band_of(confidence) == band


def test_histogram_bins_are_tenths_with_one_point_zero_in_the_last():
    assert metrics.HISTOGRAM_BINS[0] == (0.0, 0.1) and metrics.HISTOGRAM_BINS[-1] == (0.9, None)
    # Contiguous: each bin starts where the previous one ends (no value falls in two).
    assert all(high == low for (_, high), (low, _) in pairwise(metrics.HISTOGRAM_BINS))
    # The day rollups (InvestigationDay) keep one count per bin.
    assert len(rollups.BIN_FIELDS) == len(metrics.HISTOGRAM_BINS)
    assert metrics.band_counts([1] * 10) == {"high": 2, "medium": 3, "low": 5}


def test_period_start_is_excluded_and_now_included():
    now = datetime(2026, 5, 31, 12, tzinfo=UTC)
    period = metrics.Period("7d", now)
    assert period.start == now - timedelta(days=7)
    assert dict(period.filter("t").children) == {"t__lte": now, "t__gt": now - timedelta(days=7)}
    assert metrics.Period("all", now).start is None
    assert metrics.Period.parse("bogus", now=now).name == metrics.DEFAULT_PERIOD


def test_days_are_utc():
    assert metrics.utc_day(datetime(2026, 5, 31, 23, 30, tzinfo=UTC)) == date(2026, 5, 31)
    assert metrics.end_of_day(date(2026, 5, 31)) == datetime(2026, 6, 1, tzinfo=UTC)


def test_relapse_window_includes_thirty_days_exactly():
    end = datetime(2026, 5, 1, tzinfo=UTC)
    assert metrics.is_relapse(end + timedelta(days=30), previous_end=end)
    assert not metrics.is_relapse(end + timedelta(days=30, microseconds=1), previous_end=end)
    assert not metrics.is_relapse(end, previous_end=None)
