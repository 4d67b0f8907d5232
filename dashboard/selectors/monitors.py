"""Monitors: activations, pairs active now (with "active since"), time to resolve and
flapping (the monitors page, the overview, the API's monitor list and stats)."""

# SQL here is assembled from constant fragments only; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from datetime import UTC, date, timedelta
from typing import TypedDict

from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest, TruncDate

from events import rollups
from events.metrics import Period
from events.models import (
    Monitor,
    MonitorDayCount,
    MonitorEvent,
    MonitorInterval,
    MonitorState,
    ResolutionBucket,
    TestCase,
)

from .common import in_repository, mean_of_rows_at, median_sql, run_sql


class DayActivations(TypedDict):
    """A day's `active` monitor events of one monitor type."""

    day: date
    type: str
    count: int


class FlappingPair(TypedDict):
    """A (monitor, test) pair active more than once."""

    monitor_id: uuid.UUID
    test_case_id: uuid.UUID
    type: str
    activations: int


class NamedFlappingPair(FlappingPair):
    test_case__name: str


def monitor_summary(*, period: Period, repository: int | None = None) -> dict:
    """Activations per day by monitor type, active pairs now, median time to resolve per
    type (resolutions inside the period) and the pairs that flap most.

    A bounded period reads the events and intervals inside it (indexed on event time).
    Period `all` reads the rollups instead (events/rollups/), which count all history:
    that is the period only when no event is dated after `now` (an event time ahead of
    our clock), which one index probe checks; otherwise, the bounded queries."""
    whole_history = (
        period.start is None and not MonitorEvent.objects.filter(occurred_at__gt=period.now).exists()
    )
    if whole_history and not repository:
        activations = _activations_from_day_counts()
    else:
        activations = _activations_from_events(period, repository)
    pairs = _flapping_from_pairs(repository) if whole_history else _flapping_from_events(period, repository)
    names = dict(
        TestCase.objects.filter(pk__in={row["test_case_id"] for row in pairs}).values_list("pk", "name")
    )
    flapping = [NamedFlappingPair(**row, test_case__name=names.get(row["test_case_id"], "")) for row in pairs]
    flapping.sort(key=lambda row: (-row["activations"], row["test_case__name"]))
    if whole_history and not repository:
        medians = _all_resolve_medians()
    else:
        medians = _resolve_medians(period, repository)
    return {
        "activations": activations,
        "active_now": active_monitor_pairs(repository=repository),
        "median_time_to_resolve": {t: timedelta(seconds=float(s)) for t, s in medians.items()},
        "flapping": flapping,
    }


def _activations_from_events(period: Period, repository: int | None) -> list[DayActivations]:
    return list(
        MonitorEvent.objects.filter(
            period.filter("occurred_at"),
            in_repository("test_case__repository", repository),
            status=MonitorEvent.MonitorStatus.ACTIVE,
        )
        .annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .values("day", type=F("monitor__type"))
        .annotate(count=Count("id"))
        .order_by("day", "type")
    )


def _activations_from_day_counts() -> list[DayActivations]:
    """All history from MonitorDayCount (a day whose events were removed may be kept at 0)."""
    return list(
        MonitorDayCount.objects.filter(status=MonitorEvent.MonitorStatus.ACTIVE)
        .values("day", type=F("monitor__type"))
        .annotate(count=Sum("count"))
        .filter(count__gt=0)
        .order_by("day", "type")
    )


# Aggregate on ids first and name only the top 20 (grouping by the name text costs a
# join and a wide sort over every activation); the caller adds the names.
def _flapping_from_events(period: Period, repository: int | None) -> list[FlappingPair]:
    return list(
        MonitorEvent.objects.filter(
            period.filter("occurred_at"),
            in_repository("test_case__repository", repository),
            status=MonitorEvent.MonitorStatus.ACTIVE,
        )
        .values("monitor_id", "test_case_id", type=F("monitor__type"))
        .annotate(activations=Count("id"))
        .filter(activations__gt=1)
        .order_by("-activations", "test_case_id", "monitor_id")[:20]
    )


def _flapping_from_pairs(repository: int | None) -> list[FlappingPair]:
    """All history: each pair's `active` events are MonitorState.activations, whose index
    (-activations, test_case, monitor) gives the top 20 in order."""
    return list(
        MonitorState.objects.filter(in_repository("test_case__repository", repository), activations__gt=1)
        .values("monitor_id", "test_case_id", "activations", type=F("monitor__type"))
        .order_by("-activations", "test_case_id", "monitor_id")[:20]
    )


def _resolve_medians(period: Period, repository: int | None) -> dict[str, float]:
    """Median seconds to resolve per monitor type over the intervals (events/rollups/:
    from the first `active` after a `resolved` to the next `resolved` of the pair)
    resolved inside the period, through the (resolved_at, monitor_type) index."""
    in_repository = (
        "AND test_case_id IN (SELECT id FROM events_testcase WHERE repository_id = %s)" if repository else ""
    )
    inner = f"""
        SELECT monitor_type AS type, seconds FROM events_monitorinterval
         WHERE resolved_at <= %s AND (%s IS NULL OR resolved_at > %s) {in_repository}
    """
    params = [period.now, period.start, period.start, *([repository] if repository else [])]
    return dict(run_sql(median_sql(inner, "type", "seconds"), params))


def _all_resolve_medians() -> dict[str, float]:
    """Every resolved interval (the caller checked none is resolved after now): per type,
    the middle one or two resolutions (the mean of both for an even count, as
    _median_sql). The resolution buckets (events/rollups/) say which bucket holds each
    middle position and its offset there; it is read at that offset inside the bucket's
    range of the (monitor_type, seconds) index, instead of walking half of every
    resolution of the type. Two queries."""
    buckets: dict[str, list[tuple[int, int]]] = {}
    for kind, bucket, n in (
        ResolutionBucket.objects.filter(count__gt=0)
        .order_by("monitor_type", "bucket")
        .values_list("monitor_type", "bucket", "count")
    ):
        buckets.setdefault(kind, []).append((bucket, n))
    # Per type, each middle position as (bucket, offset inside it).
    positions: list[tuple[str, int, int]] = []
    for kind, rows in buckets.items():
        total = sum(n for _, n in rows)
        for position in sorted({(total - 1) // 2, total // 2}):
            for bucket, n in rows:
                if position < n:
                    positions.append((kind, bucket, position))
                    break
                position -= n
    reads = [
        (kind, *rollups.resolution_bucket_range(bucket), 1, offset) for kind, bucket, offset in positions
    ]
    return mean_of_rows_at("events_monitorinterval", "monitor_type", reads)


def active_monitor_pairs(*, repository: int | None = None) -> QuerySet[MonitorState]:
    """(monitor, test) pairs whose latest monitor event is `active`, newest first (by
    their latest event), each with its `active_since`.

    Active since is the first `active` event of the unbroken run of `active` events that
    ends with the latest: repeated `active` events do not move it. MonitorState.since is
    the latest event's time, so it is not that; the pair's open MonitorInterval
    (events/rollups/: from the first `active` after a `resolved` to the next
    `resolved`, resolved_at null while active) starts exactly there. Read as a
    correlated subquery on the (monitor, test_case, started_at) index: one query for
    any number of rows, computed for the page's rows only."""
    open_interval = MonitorInterval.objects.filter(
        monitor=OuterRef("monitor"), test_case=OuterRef("test_case"), resolved_at__isnull=True
    ).order_by("-started_at")
    return (
        MonitorState.objects.filter(status=MonitorEvent.MonitorStatus.ACTIVE)
        .filter(in_repository("test_case__repository", repository))
        .select_related("monitor", "test_case")
        # The interval is kept in the same transaction as the state; `since` is only a
        # fallback should a pair ever lack one.
        .annotate(active_since=Coalesce(Subquery(open_interval.values("started_at")[:1]), F("since")))
        .order_by("-since")
    )


def active_monitors_by_type(*, repository: int | None = None) -> dict[str, int]:
    """Active (monitor, test) pairs now, per monitor type (one query)."""
    return dict(
        MonitorState.objects.filter(status=MonitorEvent.MonitorStatus.ACTIVE)
        .filter(in_repository("test_case__repository", repository))
        .values_list("monitor__type")
        .annotate(n=Count("id"))
        .order_by()
    )


def monitor_list() -> QuerySet[Monitor]:
    """Monitors by type, each with its active tests now, its events and its latest event
    time (the API's monitor list). A fixed number of queries per page."""

    def per_monitor(queryset, aggregate):
        rows = queryset.filter(monitor=OuterRef("pk")).order_by().values("monitor")
        return Subquery(rows.annotate(value=aggregate).values("value"))

    # From the rollups, not the events (a monitor has up to hundreds of thousands):
    # its events from MonitorTotal; active pairs counted on the
    # (monitor, status, since) index alone (Count("monitor"), not the id: no heap);
    # the latest event time of its pairs (MonitorState.since) as the newest of two
    # probes at the end of that index, one per status, rather than a max over
    # every pair of the monitor (tens of thousands at L).
    active = MonitorState.objects.filter(status=MonitorEvent.MonitorStatus.ACTIVE)

    def latest(status: str) -> Subquery:
        pairs = MonitorState.objects.filter(monitor=OuterRef("pk"), status=status)
        return Subquery(pairs.order_by("-since").values("since")[:1])

    latest_active, latest_resolved = (latest(status) for status in MonitorEvent.MonitorStatus.values)
    return Monitor.objects.annotate(
        active_tests=Coalesce(per_monitor(active, Count("monitor")), Value(0), output_field=IntegerField()),
        event_count=Coalesce(F("total__events"), Value(0), output_field=IntegerField()),
        # Greatest is null on SQLite when either is: each falls back on the other.
        last_event_at=Greatest(
            Coalesce(latest_active, latest_resolved), Coalesce(latest_resolved, latest_active)
        ),
    ).order_by("type", "id")


def active_monitor_count(*, repository: int | None = None) -> int:
    """Active (monitor, test) pairs now (one count on the (status, since) index)."""
    return (
        MonitorState.objects.filter(status=MonitorEvent.MonitorStatus.ACTIVE)
        .filter(in_repository("test_case__repository", repository))
        .count()
    )
