"""Period `all` on the monitors page reads the rollups (events/rollups/monitors.py); a bounded
period reads the events and intervals inside it. Both must give the METRICS numbers."""

import statistics
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.selectors import monitors as monitors_selectors
from events import rollups
from events.demo import payloads
from events.metrics import Period
from events.models import ResolutionBucket, TestCase
from tests.events.factories import MONITOR, at, deliver, fake_test
from tests.events.state import wipe

pytestmark = pytest.mark.django_db
RATE = uuid.UUID(int=991)
NOW = datetime(2026, 5, 31, tzinfo=UTC)


def monitor(test, when, status, *, monitor_id=MONITOR, monitor_type="pass_on_retry"):
    deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=monitor_id, monitor_type=monitor_type, status=status
        )
    )


def summaries(now=NOW):
    """All history through the rollups, and a period that holds the same history."""
    return monitors_selectors.monitor_summary(period=Period("all", now)), monitors_selectors.monitor_summary(
        period=Period("90d", now)
    )


def hours(medians):
    """Median hours per type (SQLite's julianday arithmetic is off by microseconds)."""
    return {kind: round(median.total_seconds() / 3600, 6) for kind, median in medians.items()}


def comparable(summary):
    return {
        "activations": summary["activations"],
        "median_time_to_resolve": summary["median_time_to_resolve"],
        "flapping": summary["flapping"],
    }


@pytest.fixture
def intervals():
    """pass_on_retry: 3 resolved intervals of 1, 2 and 5 hours (odd count: 2 h), plus a
    repeated `active` (no new interval), a `resolved` twice in a row (no interval) and an
    interval still open. failure_rate: 4 intervals of 1, 2, 4 and 10 hours (even: 3 h)."""
    t1, t2, t3 = fake_test(1), fake_test(2), fake_test(3)
    for test, day, hours in [(t1, 2, 1), (t1, 5, 2), (t2, 3, 5)]:
        monitor(test, at(day), "active")
        monitor(test, at(day, hours), "resolved")
    monitor(t2, at(3, 1), "active")  # repeated: the interval still starts at hour 0
    monitor(t2, at(4), "resolved")  # a second `resolved`: no interval
    monitor(t3, at(20), "active")  # still open
    for test, day, hours in [(t1, 7, 1), (t2, 8, 2), (t3, 9, 4), (t3, 12, 10)]:
        monitor(test, at(day), "active", monitor_id=RATE, monitor_type="failure_rate")
        monitor(test, at(day, hours), "resolved", monitor_id=RATE, monitor_type="failure_rate")
    return t1, t2, t3


def test_all_history_medians_odd_and_even_counts(intervals):
    every, bounded = summaries()
    assert hours(every["median_time_to_resolve"]) == {"pass_on_retry": 2, "failure_rate": 3}
    assert comparable(every) == comparable(bounded)


def test_all_history_activations_and_flapping_equal_the_period_definition(intervals):
    t1, t2, t3 = intervals
    every, bounded = summaries()
    assert comparable(every) == comparable(bounded)
    assert sum(row["count"] for row in every["activations"]) == 9
    # t1 and t2 flap on pass_on_retry (2 activations each), t3 on failure_rate (2).
    assert sorted(
        (row["test_case_id"], row["type"], row["activations"]) for row in every["flapping"]
    ) == sorted([(t1.id, "pass_on_retry", 2), (t2.id, "pass_on_retry", 2), (t3.id, "failure_rate", 2)])


def test_an_event_dated_after_now_is_outside_period_all(intervals):
    """The rollups count it; the summary must not (it reads the events instead)."""
    t1, _, _ = intervals
    monitor(t1, NOW + timedelta(hours=1), "active")
    monitor(t1, NOW + timedelta(hours=2), "active")
    monitor(t1, NOW + timedelta(hours=4), "resolved")  # an interval of 3 hours
    every, bounded = summaries()
    assert comparable(every) == comparable(bounded)
    assert sum(row["count"] for row in every["activations"]) == 9
    assert hours(every["median_time_to_resolve"])["pass_on_retry"] == 2
    # Later, the same events are inside the period, through the rollups.
    later = NOW + timedelta(days=1)
    every, bounded = summaries(later)
    assert comparable(every) == comparable(bounded)
    assert sum(row["count"] for row in every["activations"]) == 11
    assert hours(every["median_time_to_resolve"])["pass_on_retry"] == 2.5  # 1, 2, 3 and 5 hours


def test_all_history_with_a_repository_filter(intervals):
    t1, _, _ = intervals
    repository = TestCase.objects.get(pk=t1.id).repository_id
    every = monitors_selectors.monitor_summary(period=Period("all", NOW), repository=repository)
    bounded = monitors_selectors.monitor_summary(period=Period("90d", NOW), repository=repository)
    assert comparable(every) == comparable(bounded)


# ---------------------------------------------------------------- resolution buckets


def test_resolution_buckets_cover_every_duration_once():
    edges = rollups.RESOLUTION_BUCKET_EDGES
    for seconds in [0.0, 0.5, 1.0, 1.04, 1.1, 3600.0, 86400 * 3.3, edges[-1] - 1, edges[-1], 1e12]:
        low, high = rollups.resolution_bucket_range(rollups.resolution_bucket(seconds))
        assert (low is None or low <= seconds) and (high is None or seconds < high), seconds
    assert rollups.resolution_bucket(0.0) == 0
    assert rollups.resolution_bucket(1.0) == 1  # an edge opens the next bucket
    assert rollups.resolution_bucket(1e12) == len(edges)  # the last, unbounded


def resolve(test, kind, monitor_id, start, seconds):
    monitor(test, start, "active", monitor_id=monitor_id, monitor_type=kind)
    monitor(test, start + timedelta(seconds=seconds), "resolved", monitor_id=monitor_id, monitor_type=kind)


@given(
    durations=st.lists(
        st.tuples(
            st.sampled_from(["pass_on_retry", "failure_rate"]),
            # A second to years, many ties (the median between two equal values or on a
            # bucket edge), whole seconds so that SQLite's julianday is exact enough. (At
            # 0 s, svix ids would order `active` and `resolved`: maybe no interval.)
            st.one_of(
                st.sampled_from([1, 2, 3600, 3601, 86400]),
                st.integers(min_value=1, max_value=3 * 365 * 86400),
            ),
        ),
        min_size=1,
        max_size=12,
    )
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_all_history_median_from_buckets_equals_the_median_of_every_resolution(durations):
    wipe()
    ids = {"pass_on_retry": MONITOR, "failure_rate": RATE}
    for i, (kind, seconds) in enumerate(durations):
        resolve(fake_test(i + 1), kind, ids[kind], datetime(2023, 1, 1, tzinfo=UTC), seconds)
    expected = {
        kind: statistics.median(s for k, s in durations if k == kind) for kind in {k for k, _ in durations}
    }
    got = monitors_selectors.monitor_summary(period=Period("all", NOW))["median_time_to_resolve"]
    assert {k: round(v.total_seconds(), 2) for k, v in got.items()} == pytest.approx(expected, abs=0.01)
    # The rebuild's buckets are the receiver's.
    buckets = sorted(ResolutionBucket.objects.exclude(count=0).values_list("monitor_type", "bucket", "count"))
    ResolutionBucket.objects.all().delete()
    rollups.rebuild_resolution_buckets()
    assert sorted(ResolutionBucket.objects.values_list("monitor_type", "bucket", "count")) == buckets


def test_all_history_median_reads_the_middle_in_its_bucket(intervals, django_assert_num_queries):
    with django_assert_num_queries(2):
        monitors_selectors._all_resolve_medians()
