"""Monitor rollups of a (monitor, test) pair, computed in SQL from the pair's monitor
events: its intervals (MonitorInterval: active from the first `active` event after a
`resolved` one to the next `resolved`, METRICS "Time to resolve"), its counts
(MonitorState.activations and event_days), and what it adds to the events per (day,
monitor, status) (MonitorDayCount), per monitor (MonitorTotal) and to the resolutions per
(monitor type, duration bucket) (ResolutionBucket), collected in a SharedCounts and
written by it (shared.py)."""

from __future__ import annotations

import bisect
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from django.db import connection

from .. import sql
from ..models import MonitorInterval, MonitorState, ResolutionBucket
from .shared import SharedCounts, day_sql


def refresh_monitor_pairs(pairs: Iterable[tuple[uuid.UUID, uuid.UUID]], shared: SharedCounts) -> None:
    """Recompute the rollups of these (monitor, test) pairs after events of theirs were
    applied: their intervals (MonitorInterval) and counts (MonitorState.activations and
    event_days), and what they add to the shared day counts, monitor totals and
    resolution buckets (collected in `shared`, written once in the LOCK ORDER).

    The pairs' MonitorState rows are locked first, in key order: two transactions with
    events of one pair then refresh one after the other, and the second sees the first's
    event (without the lock, both could compute from a snapshot missing the other's). The
    lock also reads what each pair last added to MonitorDayCount (event_days); deleting
    and inserting the intervals return their resolution days and durations: the shared
    rows get the difference between before and after. Four statements for all the pairs."""
    pairs = sorted(set(pairs))
    if not pairs:
        return
    state_filter, params = _pairs_filter(pairs, "monitor_id", "test_case_id")
    event_filter, _ = _pairs_filter(pairs, "me.monitor_id", "me.test_case_id")
    monitor_field = MonitorState._meta.get_field("monitor")
    test_field = MonitorState._meta.get_field("test_case")
    lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""  # SQLite: one writer at a time
    returned = f"monitor_id, {day_sql('resolved_at')}, monitor_type, seconds"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT monitor_id, test_case_id, event_days FROM events_monitorstate WHERE {state_filter}"
            f" ORDER BY monitor_id, test_case_id{lock}",
            params,
        )
        before = {
            (monitor_field.to_python(m), test_field.to_python(t)): days for m, t, days in cursor.fetchall()
        }
        cursor.execute(
            f"DELETE FROM events_monitorinterval WHERE {state_filter} RETURNING {returned}", params
        )
        deleted = cursor.fetchall()
        cursor.execute(monitor_intervals_sql(event_filter) + f" RETURNING {returned}", params)
        inserted = cursor.fetchall()
        # A separate statement after the lock: its snapshot sees every committed event.
        cursor.execute(
            _pair_counts_sql(state_filter) + " RETURNING monitor_id, test_case_id, event_days", params
        )
        after = cursor.fetchall()
    for monitor_value, test_value, event_days in after:
        monitor_id = monitor_field.to_python(monitor_value)
        events = event_days_counter(event_days)
        events.subtract(event_days_counter(before.get((monitor_id, test_field.to_python(test_value)), "")))
        shared.monitor_days.update({(monitor_id, day, status): n for (day, status), n in events.items()})
        shared.monitor_totals[monitor_id] += sum(events.values())
    for rows, sign in ((inserted, 1), (deleted, -1)):
        for monitor_value, day, kind, seconds in rows:
            if day:
                shared.monitor_resolutions[
                    (monitor_field.to_python(monitor_value), date.fromisoformat(day))
                ] += sign
            if seconds is not None:
                shared.buckets[(kind, resolution_bucket(seconds))] += sign


def _pairs_filter(pairs: Sequence[tuple], monitor: str, test: str) -> tuple[str, list]:
    """SQL matching these (monitor id, test id) pairs on two columns, with its parameters:
    an OR of equalities, which both databases answer from the (monitor, test) indexes."""
    monitor_field = MonitorState._meta.get_field("monitor")
    test_field = MonitorState._meta.get_field("test_case")
    params = []
    for monitor_id, test_id in pairs:
        params += [
            monitor_field.get_db_prep_value(monitor_id, connection),
            test_field.get_db_prep_value(test_id, connection),
        ]
    return "(" + " OR ".join([f"({monitor} = %s AND {test} = %s)"] * len(pairs)) + ")", params


def monitor_intervals_sql(pair_filter: str) -> str:
    """INSERT ... SELECT of the intervals of the pairs matching `pair_filter` (SQL on
    `me`, the monitor event). Each event is numbered by how many `resolved` events of its
    pair came before it; one number is one interval: from its first `active` event to its
    `resolved` event (none yet: still active). A group without `active` (resolved twice
    in a row) is no interval. Portable SQL (window functions: SQLite >= 3.25)."""
    seconds = sql.seconds_between("started_at", "resolved_at")
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
                           ORDER BY me.occurred_at, {sql.in_code_point_order("d.svix_id")}
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


def _pair_counts_sql(pair_filter: str) -> str:
    """UPDATE of MonitorState.activations and .event_days from the monitor events of the
    pairs matching `pair_filter` (SQL on `events_monitorstate`). event_days is one
    'YYYY-MM-DD' + status initial per event, in no particular order (read as a multiset)."""
    concat = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    return f"""
        UPDATE events_monitorstate SET (activations, event_days) = (
            SELECT COALESCE(SUM(CASE WHEN me.status = 'active' THEN 1 ELSE 0 END), 0),
                   COALESCE({concat}({day_sql("me.occurred_at")} || SUBSTR(me.status, 1, 1), ','), '')
              FROM events_monitorevent me
             WHERE me.monitor_id = events_monitorstate.monitor_id
               AND me.test_case_id = events_monitorstate.test_case_id)
         WHERE {pair_filter}
    """


STATUS_OF_INITIAL = {"a": "active", "r": "resolved"}


def event_days_counter(event_days: str) -> Counter:
    """(day, status) -> events, from MonitorState.event_days."""
    return Counter(
        (date.fromisoformat(item[:10]), STATUS_OF_INITIAL[item[10:]])
        for item in event_days.split(",")
        if item
    )


# ---------------------------------------------------------------- resolution buckets

# Eight buckets per doubling of the time to resolve, from 1 s to 2**27 s (over 4 years):
# bucket 0 holds resolutions under a second, bucket k those in [EDGES[k-1], EDGES[k]),
# the last everything from 2**27 s. A bucket spans 9% of its durations, so the one that
# holds the median holds a small share of the resolutions however long the history.
RESOLUTION_BUCKET_EDGES = tuple(2 ** (i / 8) for i in range(27 * 8 + 1))


def resolution_bucket(seconds: float) -> int:
    return bisect.bisect_right(RESOLUTION_BUCKET_EDGES, seconds)


def resolution_bucket_range(bucket: int) -> tuple[float | None, float | None]:
    """[low, high) seconds of a bucket (None: unbounded)."""
    low = RESOLUTION_BUCKET_EDGES[bucket - 1] if bucket > 0 else None
    high = RESOLUTION_BUCKET_EDGES[bucket] if bucket < len(RESOLUTION_BUCKET_EDGES) else None
    return low, high


def _resolution_buckets(rows: Iterable[tuple[Any, ...]]) -> Counter:
    """(monitor type, bucket) -> resolutions, from (resolved day, monitor type, seconds) rows."""
    return Counter((kind, resolution_bucket(seconds)) for _, kind, seconds in rows if seconds is not None)


def rebuild_resolution_buckets() -> None:
    """ResolutionBucket from every resolved MonitorInterval, on an empty table (a rebuild)."""
    counts = _resolution_buckets(
        (None, kind, seconds)
        for kind, seconds in MonitorInterval.objects.filter(seconds__isnull=False)
        .values_list("monitor_type", "seconds")
        .iterator(chunk_size=10000)
    )
    ResolutionBucket.objects.bulk_create(
        [
            ResolutionBucket(monitor_type=kind, bucket=bucket, count=n)
            for (kind, bucket), n in sorted(counts.items())
        ],
        batch_size=1000,
    )


def rebuild_monitor_rollups() -> None:
    """Every pair's counts and every day count, from all monitor events and intervals (a
    rebuild, after the intervals, on an empty MonitorDayCount)."""
    # The same day text as the receiver's, as a date column wants it.
    cast = "CAST(day AS date)" if connection.vendor == "postgresql" else "day"
    with connection.cursor() as cursor:
        cursor.execute(_pair_counts_sql("1 = 1"))
        cursor.execute(
            f"""
            INSERT INTO events_monitordaycount (day, monitor_id, status, count, resolutions)
            SELECT {cast}, monitor_id, status, SUM(n), SUM(r) FROM (
                SELECT {day_sql("occurred_at")} AS day, monitor_id, status, 1 AS n, 0 AS r
                  FROM events_monitorevent
                 UNION ALL
                SELECT {day_sql("resolved_at")}, monitor_id, 'resolved', 0, 1
                  FROM events_monitorinterval WHERE resolved_at IS NOT NULL
            ) AS e
            GROUP BY day, monitor_id, status
            """
        )


def rebuild_monitor_totals() -> None:
    """MonitorTotal from MonitorDayCount, on an empty table (a rebuild)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO events_monitortotal (monitor_id, events)
            SELECT monitor_id, SUM(count) FROM events_monitordaycount GROUP BY monitor_id
            """
        )
