"""Transitions per day and the overall median time to fix from their rollups
(TransitionDayCount, Episode.seconds: events/rollups/status.py) equal the same figures computed
from every status change and episode, on both paths of dashboard/selectors (all
repositories: the rollups; one repository: the rows), whatever the period and `now`;
and a rebuild of the rollups fills them exactly as the projections keep them."""

import statistics
from datetime import UTC, timedelta

import pytest

from dashboard.selectors import status as queries
from events import rollups
from events.demo import payloads
from events.metrics import PERIODS, Period
from events.models import Episode, Repository, StatusChange, StatusInterval, TestCase, TransitionDayCount
from tests.conftest import DEMO_NOW
from tests.events.factories import MONITOR, at, deliver, fake_test
from tests.events.state import projected_state

pytestmark = pytest.mark.django_db

# `now` at the demo's end, mid-day, and days before its end (events dated after now).
NOWS = [DEMO_NOW, DEMO_NOW - timedelta(hours=7, minutes=13), DEMO_NOW - timedelta(days=9, hours=5)]


def change(test, when, previous, new):
    return deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


def reference_transitions(period: Period, repository: int | None = None) -> list[dict]:
    """METRICS "Transitions on day D", from every status change in Python."""
    counts: dict = {}
    for occurred_at, status, repo in StatusChange.objects.values_list(
        "occurred_at", "new_status", "test_case__repository"
    ):
        inside = occurred_at <= period.now and (period.start is None or occurred_at > period.start)
        if inside and (repository is None or repo == repository):
            key = (occurred_at.astimezone(UTC).date(), status)
            counts[key] = counts.get(key, 0) + 1
    return [{"day": day, "new_status": status, "count": n} for (day, status), n in sorted(counts.items())]


def reference_median(period: Period, repository: int | None = None) -> float | None:
    """METRICS "Time to fix": median over the closed episodes that ended inside the period."""
    seconds = [
        (ended - started).total_seconds()
        for started, ended, repo in Episode.objects.filter(ended_at__isnull=False).values_list(
            "started_at", "ended_at", "test_case__repository"
        )
        if ended <= period.now
        and (period.start is None or ended > period.start)
        and (repository is None or repo == repository)
    ]
    return statistics.median(seconds) if seconds else None


def seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def test_rollup_paths_equal_every_change_and_episode(load_demo):
    load_demo(tests=40, days=60)
    repositories = list(Repository.objects.values_list("pk", flat=True))
    assert TransitionDayCount.objects.exists() and len(repositories) > 1
    for now in NOWS:
        for name in PERIODS:
            period = Period(name, now)
            assert queries.transitions_per_day(period=period) == reference_transitions(period), (name, now)
            median = reference_median(period)
            assert seconds(queries.median_time_to_fix(period=period)) == pytest.approx(median), (name, now)
            for repository in repositories:
                assert queries.transitions_per_day(period=period, repository=repository) == (
                    reference_transitions(period, repository)
                )
                assert seconds(queries.median_time_to_fix(period=period, repository=repository)) == (
                    pytest.approx(reference_median(period, repository))
                )
    # The demo has transitions and fixes inside the compared periods.
    assert reference_transitions(Period("7d", DEMO_NOW)) and reference_median(Period("all", DEMO_NOW))


def test_partial_first_and_last_days_and_later_changes():
    t1, t2 = fake_test(1), fake_test(2)
    change(t1, at(1, 10), "HEALTHY", "FLAKY")  # before the period
    change(t1, at(3, 5), "FLAKY", "HEALTHY")  # first day, before the start (at(3, 6))
    change(t2, at(3, 7), "HEALTHY", "BROKEN")  # first day, after the start
    change(t2, at(5, 1), "BROKEN", "FLAKY")  # a whole day
    change(t1, at(10, 1), "HEALTHY", "FLAKY")  # today, before now
    change(t2, at(10, 9), "FLAKY", "HEALTHY")  # today, after now
    change(t1, at(12), "FLAKY", "HEALTHY")  # after now
    period = Period("7d", at(10, 6))
    assert period.start == at(3, 6)
    expected = [
        {"day": at(3).date(), "new_status": "BROKEN", "count": 1},
        {"day": at(5).date(), "new_status": "FLAKY", "count": 1},
        {"day": at(10).date(), "new_status": "FLAKY", "count": 1},
    ]
    assert queries.transitions_per_day(period=period) == expected == reference_transitions(period)
    everything = Period("all", at(10, 6))
    assert queries.transitions_per_day(period=everything) == reference_transitions(everything)
    assert len(reference_transitions(everything)) == 5
    # Fixes: t1 43 h (ended at(3, 5)), t2 170 h (BROKEN, FLAKY, then HEALTHY at(10, 9)),
    # t1 again 47 h (at(12)): the last two end after now, then before a later now.
    assert queries.median_time_to_fix(period=everything) == timedelta(hours=43)
    assert queries.median_time_to_fix(period=Period("all", at(13))) == timedelta(hours=47)
    assert TransitionDayCount.objects.filter(fixes__gt=0).count() == 3


def test_rebuild_fills_exactly_what_the_projections_keep(load_demo):
    load_demo(tests=30, days=45)
    state = projected_state()
    TransitionDayCount.objects.all().delete()
    StatusInterval.objects.update(changed=False)
    Episode.objects.update(seconds=None)
    rollups.rebuild_all()
    assert projected_state() == state
    assert TestCase.objects.exists()
