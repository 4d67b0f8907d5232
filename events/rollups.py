"""Rollups: per-test figures derived from history, kept by the projections so that pages
read a few indexed rows instead of replaying all history on every request.

- StatusInterval: a test's status from one time to the next (METRICS "Status at time t").
- Episode: HEALTHY -> FLAKY/BROKEN ... -> HEALTHY (METRICS "Episodes").
- StatusDayDelta: per (day, status), tests entering minus tests leaving that status that
  day, so "tests by status at the end of day D" is a running sum over days (a few
  thousand rows for years of history, whatever the number of tests or events).
- MonitorInterval: a (monitor, test) pair active from the first `active` event after a
  `resolved` one to the next `resolved` (METRICS "Time to resolve"), with its duration.

A test's rollup rows are recomputed from its status changes whenever one of them is
applied (and when the test is first seen); a pair's intervals from the pair's monitor
events whenever one arrives. A test or pair has tens of events, so this is cheap, and it
is correct whatever the order the events arrived in (ties on event time go by svix id,
as everywhere). The rules live here once; the receiver (projections.py) calls them per
delivery and the rebuild (bulk.py) for everything at once.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import F

from .models import (
    Episode,
    MonitorEvent,
    MonitorInterval,
    Status,
    StatusChange,
    StatusDayDelta,
    StatusInterval,
    TestCase,
)

HEALTHY = Status.HEALTHY
RELAPSE_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Change:
    """A status change as the rollups need it, in (event time, svix id) order."""

    occurred_at: datetime
    previous_status: str
    new_status: str


@dataclass(frozen=True)
class Interval:
    status: str
    started_at: datetime
    ended_at: datetime | None  # None: still current


@dataclass(frozen=True)
class EpisodeSpan:
    started_at: datetime
    ended_at: datetime | None  # None: still open
    previous_end: datetime | None  # end of the test's previous episode (relapse check)


def intervals_of(first_event_at: datetime, changes: Sequence[Change]) -> list[Interval]:
    """From first seen: the status before the first change (that change's previous_status;
    HEALTHY for a test that never changed), then each change's new_status until the next."""
    intervals: list[Interval] = []
    if not changes or first_event_at < changes[0].occurred_at:
        first_status = changes[0].previous_status if changes else HEALTHY
        intervals.append(Interval(first_status, first_event_at, changes[0].occurred_at if changes else None))
    for i, change in enumerate(changes):
        end = changes[i + 1].occurred_at if i + 1 < len(changes) else None
        intervals.append(Interval(change.new_status, change.occurred_at, end))
    return intervals


def episodes_of(first_event_at: datetime, changes: Sequence[Change]) -> list[EpisodeSpan]:
    """An episode starts when the status goes from HEALTHY to FLAKY or BROKEN and ends at
    the next change to HEALTHY; FLAKY <-> BROKEN continues it. The status before a change
    is the previous change's new_status (the first change's own previous_status). A test
    already FLAKY or BROKEN when first seen was in an episode from its first event."""
    markers: list[tuple[datetime, bool]] = []  # (time, starts an episode)
    if changes and changes[0].previous_status != HEALTHY and first_event_at <= changes[0].occurred_at:
        markers.append((first_event_at, True))
    before = changes[0].previous_status if changes else HEALTHY
    for change in changes:
        if before == HEALTHY and change.new_status != HEALTHY:
            markers.append((change.occurred_at, True))
        elif before != HEALTHY and change.new_status == HEALTHY:
            markers.append((change.occurred_at, False))
        before = change.new_status
    return [
        EpisodeSpan(
            started_at=at,
            ended_at=markers[i + 1][0] if i + 1 < len(markers) else None,
            previous_end=markers[i - 1][0] if i > 0 else None,
        )
        for i, (at, starts) in enumerate(markers)
        if starts
    ]


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_deltas(intervals: Sequence[Interval], sign: int = 1) -> Counter:
    """(day, status) -> +1 where an interval starts, -1 where it ends (times `sign`)."""
    deltas: Counter = Counter()
    for interval in intervals:
        deltas[(day_of(interval.started_at), interval.status)] += sign
        if interval.ended_at is not None:
            deltas[(day_of(interval.ended_at), interval.status)] -= sign
    return deltas


# ---------------------------------------------------------------- kept by the receiver


def changes_of(test_case_id: uuid.UUID) -> list[Change]:
    return [
        Change(*row)
        for row in StatusChange.objects.filter(test_case_id=test_case_id)
        .order_by("occurred_at", "delivery__svix_id")
        .values_list("occurred_at", "previous_status", "new_status")
    ]


def refresh_test(test_case_id: uuid.UUID) -> None:
    """Recompute one test's rollup rows after a status change or a new first event time.

    Runs in the receiver's transaction, after the test row was written (which locks it,
    so two deliveries for one test refresh one after the other). Writes only what changed;
    day deltas are updated in (day, status) order, so concurrent refreshes of different
    tests cannot deadlock on them.
    """
    first_event_at = TestCase.objects.filter(pk=test_case_id).values_list("first_event_at", flat=True).get()
    changes = changes_of(test_case_id)
    intervals = intervals_of(first_event_at, changes)
    stored = [
        Interval(*row)
        for row in StatusInterval.objects.filter(test_case_id=test_case_id)
        .order_by("started_at", "id")
        .values_list("status", "started_at", "ended_at")
    ]
    if stored != intervals:
        deltas = day_deltas(intervals)
        deltas.subtract(day_deltas(stored))
        for (day, status), delta in sorted(deltas.items()):
            if delta:
                add_day_delta(day, status, delta)
        StatusInterval.objects.filter(test_case_id=test_case_id).delete()
        StatusInterval.objects.bulk_create(
            [StatusInterval(test_case_id=test_case_id, **vars(i)) for i in intervals]
        )
    # Compared on their own: the same intervals can hold other episodes (a first change
    # at the very time the test was first seen starts no interval but may start one).
    episodes = episodes_of(first_event_at, changes)
    stored_episodes = [
        EpisodeSpan(*row)
        for row in Episode.objects.filter(test_case_id=test_case_id)
        .order_by("started_at", "id")
        .values_list("started_at", "ended_at", "previous_end")
    ]
    if stored_episodes != episodes:
        Episode.objects.filter(test_case_id=test_case_id).delete()
        Episode.objects.bulk_create([Episode(test_case_id=test_case_id, **vars(e)) for e in episodes])


def add_day_delta(day: date, status: str, delta: int) -> None:
    if not StatusDayDelta.objects.filter(day=day, status=status).update(delta=F("delta") + delta):
        StatusDayDelta.objects.bulk_create(
            [StatusDayDelta(day=day, status=status, delta=0)], ignore_conflicts=True
        )
        StatusDayDelta.objects.filter(day=day, status=status).update(delta=F("delta") + delta)


# ---------------------------------------------------------------- monitor intervals


def _monitor_intervals_sql(pair_filter: str) -> str:
    """INSERT ... SELECT of the intervals of the pairs matching `pair_filter` (SQL on
    `me`, the monitor event). Each event is numbered by how many `resolved` events of its
    pair came before it; one number is one interval: from its first `active` event to its
    `resolved` event (none yet: still active). A group without `active` (resolved twice
    in a row) is no interval. Portable SQL (window functions: SQLite >= 3.25)."""
    if connection.vendor == "postgresql":
        seconds = "EXTRACT(EPOCH FROM (resolved_at - started_at))"
    else:
        seconds = "((julianday(resolved_at) - julianday(started_at)) * 86400.0)"
    return f"""
        INSERT INTO events_monitorinterval
               (monitor_id, test_case_id, monitor_type, started_at, resolved_at, seconds)
        SELECT i.monitor_id, i.test_case_id, m.type, started_at, resolved_at, {seconds}
          FROM (
            SELECT monitor_id, test_case_id,
                   MIN(CASE WHEN status = 'active' THEN occurred_at END) AS started_at,
                   MIN(CASE WHEN status = 'resolved' THEN occurred_at END) AS resolved_at
              FROM (
                SELECT me.monitor_id, me.test_case_id, me.status, me.occurred_at,
                       COALESCE(SUM(CASE WHEN me.status = 'resolved' THEN 1 ELSE 0 END) OVER (
                           PARTITION BY me.monitor_id, me.test_case_id
                           ORDER BY me.occurred_at, d.svix_id
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS grp
                  FROM events_monitorevent me
                  JOIN events_delivery d ON d.id = me.delivery_id
                 WHERE {pair_filter}
              ) AS numbered
             GROUP BY monitor_id, test_case_id, grp
          ) AS i
          JOIN events_monitor m ON m.id = i.monitor_id
         WHERE started_at IS NOT NULL
    """


def refresh_monitor_pair(monitor_id: uuid.UUID, test_case_id: uuid.UUID) -> None:
    """Recompute one (monitor, test) pair's intervals after one of its events was applied.

    Like `refresh_test`, this relies on the test row written earlier in the transaction
    (every event updates its test, which locks it): two deliveries for one test, hence
    for one pair, refresh one after the other, and the second sees the first's event.
    Two statements."""
    pair = {"monitor_id": monitor_id, "test_case_id": test_case_id}
    MonitorInterval.objects.filter(**pair).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            _monitor_intervals_sql("me.monitor_id = %s AND me.test_case_id = %s"),
            [
                MonitorInterval._meta.get_field(name).get_db_prep_value(value, connection)
                for name, value in pair.items()
            ],
        )


def fill_missing_rollups(**kwargs) -> None:
    """post_migrate: history without rollups (an upgraded database) gets them computed."""
    using = kwargs.get("using", "default")
    if using != "default":
        return
    has_history = StatusChange.objects.exists() or MonitorEvent.objects.exists() or TestCase.objects.exists()
    if has_history and not (StatusInterval.objects.exists() or MonitorInterval.objects.exists()):
        with transaction.atomic():
            rebuild_all()


def rebuild_all() -> None:
    """Compute every rollup from the history rows."""
    for model in (MonitorInterval, Episode, StatusInterval, StatusDayDelta):
        model.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(_monitor_intervals_sql("1 = 1"))
    from .bulk import Table  # bulk imports this module

    intervals = Table(StatusInterval, ["test_case", "status", "started_at", "ended_at"])
    episodes = Table(Episode, ["test_case", "started_at", "ended_at", "previous_end"])
    deltas: Counter = Counter()

    def flush_test(test_id, first_event_at, changes):
        test_intervals = intervals_of(first_event_at, changes)
        for i in test_intervals:
            intervals.add(test_id, i.status, i.started_at, i.ended_at)
        for e in episodes_of(first_event_at, changes):
            episodes.add(test_id, e.started_at, e.ended_at, e.previous_end)
        deltas.update(day_deltas(test_intervals))

    rows = TestCase.objects.order_by("id").values_list("id", "first_event_at").iterator(chunk_size=5000)
    changes = (
        StatusChange.objects.order_by("test_case_id", "occurred_at", "delivery__svix_id")
        .values_list("test_case_id", "occurred_at", "previous_status", "new_status")
        .iterator(chunk_size=5000)
    )
    pending = next(changes, None)
    for test_id, first_event_at in rows:
        test_changes = []
        while pending is not None and pending[0] == test_id:
            test_changes.append(Change(*pending[1:]))
            pending = next(changes, None)
        flush_test(test_id, first_event_at, test_changes)
    intervals.flush()
    episodes.flush()
    StatusDayDelta.objects.bulk_create(
        [StatusDayDelta(day=day, status=status, delta=d) for (day, status), d in sorted(deltas.items()) if d],
        batch_size=1000,
    )
