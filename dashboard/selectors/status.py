"""Tests by status: counts now and at a time, the per-day trend, transitions per day and
the median time to fix (the overview's figures).

Figures that come from a test's whole history read rollup tables that the projections
keep (events/rollups/), so their cost stays nearly flat as history grows.
"""

# SQL here is assembled from constant fragments only; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from events.metrics import Period, end_of_day, start_of_day, utc_day
from events.models import (
    OwnerDayDelta,
    Status,
    StatusChange,
    StatusDayDelta,
    StatusInterval,
    TestCase,
    TransitionDayCount,
)

from .common import as_date, day_sql, in_repository, median_sql, owner_condition, run_sql


def status_counts_at(at: datetime, *, repository: int | None = None) -> dict[str, int]:
    """Tests by status at time `at`, counting only tests known by then (docs/metrics.md "Status at
    time t"): the status intervals (events.rollups) covering `at`.

    Unfiltered, in two small index range reads whatever the history: the running sum
    of day deltas up to the end of the day before, plus the intervals that started and
    minus those that ended between that midnight and `at`. Two queries; with a repository,
    one query over the intervals of its tests.
    """
    counts = {s.value: 0 for s in Status}
    if repository is not None:
        for status, n in (
            StatusInterval.objects.filter(
                Q(ended_at__isnull=True) | Q(ended_at__gt=at),
                started_at__lte=at,
                test_case__repository=repository,
            )
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        ):
            counts[status] = n
        return counts
    midnight = start_of_day(utc_day(at))
    for status, n in (
        StatusDayDelta.objects.filter(day__lt=midnight.date())
        .values_list("status")
        .annotate(n=Sum("delta"))
        .order_by()
    ):
        counts[status] += n
    started = Q(started_at__gte=midnight, started_at__lte=at)
    ended = Q(ended_at__gte=midnight, ended_at__lte=at)
    for row in (
        StatusInterval.objects.filter(started | ended)
        .values("status")
        .annotate(started=Count("id", filter=started), ended=Count("id", filter=ended))
        .order_by()
    ):
        counts[row["status"]] += row["started"] - row["ended"]
    return counts


def status_summary(*, period: Period, repository: int | None = None) -> dict:
    """Current counts by status and quarantined, with the change over the period.

    Current state is "now" (TestCase.status is the status at now: the latest change by
    event time); "change" is count now minus count at the start of the period. For all
    repositories the counts now are the sums of the day deltas (events.rollups: each test
    adds +1 to the status of its current interval, and its ended intervals cancel out), a
    few rows a day instead of every test.
    """
    tests = TestCase.objects.filter(in_repository("repository", repository))
    if repository is None:
        now = dict(StatusDayDelta.objects.values_list("status").annotate(n=Sum("delta")).order_by())
    else:
        now = dict(tests.values_list("status").annotate(n=Count("id")).order_by())
    current = {s.value: now.get(s.value, 0) for s in Status}
    if period.start is None:
        before = {s.value: 0 for s in Status}
    else:
        before = status_counts_at(period.start, repository=repository)
    return {
        "status": {s: {"now": current[s], "change": current[s] - before[s]} for s in current},
        "total": sum(current.values()),
        "quarantined": tests.filter(quarantined=True).count(),
    }


def status_trend(
    *, period: Period, repository: int | None = None, owner_key: str | None = None
) -> list[dict]:
    """Tests by status at the end of each day of the period (docs/metrics.md: "Tests by status on
    day D"), optionally only one owner's tests (`owner_key`; "" = tests without owners).

    Each status interval of a test (events.rollups) adds +1 to its status on the day it
    starts and -1 on the day it ends; a running sum over days gives the counts. For all
    tests, and for one owner's tests, these day deltas are kept as rollups (StatusDayDelta,
    OwnerDayDelta: a few rows a day, whatever the number of tests or events); for one
    repository they are summed from the intervals of its tests. Python only adds up days.
    One query.
    """
    if repository is None and owner_key is None:
        all_deltas = StatusDayDelta.objects.exclude(delta=0).values_list("day", "status", "delta")
        return _running_daily_counts(list(all_deltas), period)
    if repository is None:
        owner_deltas = (
            OwnerDayDelta.objects.filter(owner_key=owner_key)
            .exclude(delta=0)
            .values_list("day", "status", "delta")
        )
        return _running_daily_counts(list(owner_deltas), period)
    conditions, params = ["(%s IS NULL OR tc.repository_id = %s)"], [repository, repository]
    if owner_key is not None:
        owned, owned_params = owner_condition(owner_key)
        conditions.append(owned)
        params += owned_params
    rows = run_sql(
        f"""
        WITH intervals AS (
            SELECT si.status, si.started_at, si.ended_at
              FROM events_statusinterval si JOIN events_testcase tc ON tc.id = si.test_case_id
             WHERE {" AND ".join(conditions)}
        ),
        deltas AS (
            SELECT {day_sql("started_at")} AS day, status, 1 AS delta FROM intervals
            UNION ALL
            SELECT {day_sql("ended_at")}, status, -1 FROM intervals WHERE ended_at IS NOT NULL
        )
        SELECT day, status, SUM(delta) FROM deltas GROUP BY day, status ORDER BY day
        """,
        params,
    )
    return _running_daily_counts(rows, period)


def _running_daily_counts(rows: Sequence[tuple[Any, ...]], period: Period) -> list[dict]:
    """(day, status, net change) rows -> one row per day of the period with running counts."""
    by_day: dict[date, dict[str, int]] = {}
    for day, status, delta in rows:
        by_day.setdefault(as_date(day), {})[status] = int(delta)
    if not by_day:
        return []
    running = {s.value: 0 for s in Status}
    day = period.start.date() if period.start else min(by_day)
    for d in sorted(k for k in by_day if k < day):  # days before the period feed the sum only
        for status, delta in by_day[d].items():
            running[status] += delta
    series = []
    while day <= period.now.date():
        for status, delta in by_day.get(day, {}).items():
            running[status] += delta
        series.append({"day": day, **running})
        day += timedelta(days=1)
    return series


def transitions_per_day(*, period: Period, repository: int | None = None) -> list[dict]:
    """Status change events by day of event time, grouped by new_status (docs/metrics.md
    "Transitions on day D"). One query.

    For all repositories, the days wholly inside the period come from TransitionDayCount
    (events/rollups/: a few rows a day, whatever the number of changes) and only the
    period's first and last days, which it covers in part (after its start, up to now),
    from the changes themselves (occurred_at index); changes dated after now are never
    counted. For one repository (a test may move between repositories, so no rollup),
    the changes of its tests. tests/events/test_transition_rollups.py proves both equal.
    """
    changes = StatusChange.objects.filter(
        period.filter("occurred_at"), in_repository("test_case__repository", repository)
    )
    if repository is None:
        today = utc_day(period.now)
        whole_days = TransitionDayCount.objects.filter(day__lt=today, count__gt=0)
        partial = Q(occurred_at__gte=end_of_day(today - timedelta(days=1)))
        if period.start is not None:
            first_whole_day = utc_day(period.start) + timedelta(days=1)
            whole_days = whole_days.filter(day__gte=first_whole_day)
            partial |= Q(occurred_at__lt=end_of_day(first_whole_day - timedelta(days=1)))
        rows = (
            whole_days.values_list("day", "new_status", "count")
            .order_by()
            .union(_changes_by_day(changes.filter(partial)), all=True)
        )
    else:
        rows = _changes_by_day(changes)
    return [{"day": as_date(day), "new_status": status, "count": n} for day, status, n in sorted(rows)]


def _changes_by_day(changes: QuerySet[StatusChange]) -> QuerySet:
    """(day, new_status, count) of these changes (UTC days of event time), unordered."""
    return (
        changes.annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .values_list("day", "new_status")
        .annotate(count=Count("id"))
        .order_by()
    )


def median_time_to_fix(*, period: Period, repository: int | None = None) -> timedelta | None:
    """Median time to fix over all closed episodes that ended inside the period (docs/metrics.md
    "Episodes"), from Episode.seconds (kept by events/rollups/).

    All history in all repositories: one query reading a few rows a day and two index
    entries (_all_median_time_to_fix). Otherwise (or when some episode ended after now,
    an event time ahead of our clock), the episodes that ended inside the period (the
    ended_at index; with a repository, its tests' episodes). One query either way (two
    in the rare second case).
    """
    if period.start is None and repository is None:
        future, median = _all_median_time_to_fix(period.now)
        if not future:
            return None if median is None else timedelta(seconds=float(median))
    inner = """
        SELECT 1 AS everyone, seconds
          FROM events_episode e JOIN events_testcase tc ON tc.id = e.test_case_id
         WHERE seconds IS NOT NULL AND ended_at <= %s AND (%s IS NULL OR ended_at > %s)
           AND (%s IS NULL OR tc.repository_id = %s)
    """
    rows = run_sql(
        median_sql(inner, "everyone", "seconds"),
        [period.now, period.start, period.start, repository, repository],
    )
    return timedelta(seconds=float(rows[0][1])) if rows else None


def _all_median_time_to_fix(now: datetime) -> tuple[bool, float | None]:
    """(whether some episode ended after `now`, median time to fix over every closed
    episode): the number of fixes n from TransitionDayCount (a few rows a day), then the
    middle one or two fixes (the mean of both for an even count, as median_sql) read at
    their offset in the (seconds) index, instead of ranking every episode. One query."""
    return run_sql(
        """
        WITH fixes AS (
            -- Every closed episode, less those whose start is unknown (no time to fix).
            SELECT COALESCE(SUM(fixes), 0)
                   - (SELECT COUNT(*) FROM events_episode WHERE NOT start_known AND ended_at IS NOT NULL) AS n
              FROM events_transitiondaycount)
        SELECT EXISTS (SELECT 1 FROM events_episode WHERE ended_at > %s),
               (SELECT AVG(seconds) FROM (
                    SELECT seconds FROM events_episode WHERE seconds IS NOT NULL ORDER BY seconds
                     LIMIT (SELECT 2 - n %% 2 FROM fixes) OFFSET (SELECT (n - 1) / 2 FROM fixes)
                ) AS middle
                 WHERE (SELECT n FROM fixes) > 0)
        """,
        [now],
    )[0]


def recent_status_changes(*, repository: int | None = None, limit: int = 12) -> QuerySet[StatusChange]:
    """The latest status changes by event time, with their test (the overview's list)."""
    changes = StatusChange.objects.select_related("test_case").order_by("-occurred_at", "-id")
    if repository:
        changes = changes.filter(test_case__repository=repository)
    return changes[:limit]
