"""Status rollups of a test: its status intervals (StatusInterval, METRICS "Status at
time t"), its episodes (Episode, METRICS "Episodes"), what it adds to the day deltas
(StatusDayDelta) and to the transitions per day (TransitionDayCount), computed from its
first event time and its status changes. refresh.refresh_tests keeps them per test; what
a test adds to the day rows is collected in a SharedCounts and written by it (shared.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from ..models import Status
from .shared import day_of, day_sql

HEALTHY = Status.HEALTHY


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
    changed: bool = False  # started by a status change (counted in TransitionDayCount)


@dataclass(frozen=True)
class EpisodeSpan:
    started_at: datetime
    ended_at: datetime | None  # None: still open
    previous_end: datetime | None  # end of the test's previous episode (relapse check)
    # False: the test was first seen already FLAKY or BROKEN, so the episode began before
    # `started_at` (its first event time): shown "since at least", left out of medians.
    start_known: bool = True
    # Start of the test's next episode (None: none yet): whether the fix held (METRICS
    # "Verified fix", "Relapse curve").
    next_started_at: datetime | None = None

    @property
    def seconds(self) -> float | None:
        """Time to fix, as the medians take it: closed episodes whose start is known (for
        the others it would be a lower bound: METRICS "Episodes")."""
        if self.ended_at is None or not self.start_known:
            return None
        return (self.ended_at - self.started_at).total_seconds()


def intervals_of(first_event_at: datetime, changes: Sequence[Change]) -> list[Interval]:
    """From first seen: the status before the first change (that change's previous_status;
    HEALTHY for a test that never changed), then each change's new_status until the next."""
    intervals: list[Interval] = []
    if not changes or first_event_at < changes[0].occurred_at:
        first_status = changes[0].previous_status if changes else HEALTHY
        intervals.append(Interval(first_status, first_event_at, changes[0].occurred_at if changes else None))
    for i, change in enumerate(changes):
        end = changes[i + 1].occurred_at if i + 1 < len(changes) else None
        intervals.append(Interval(change.new_status, change.occurred_at, end, changed=True))
    return intervals


def episodes_of(first_event_at: datetime, changes: Sequence[Change]) -> list[EpisodeSpan]:
    """An episode starts when the status goes from HEALTHY to FLAKY or BROKEN and ends at
    the next change to HEALTHY; FLAKY <-> BROKEN continues it. The status before a change
    is the previous change's new_status (the first change's own previous_status). A test
    already FLAKY or BROKEN when first seen was in an episode from its first event."""
    markers: list[tuple[datetime, bool]] = []  # (time, starts an episode)
    start_unknown = (
        changes and changes[0].previous_status != HEALTHY and first_event_at <= changes[0].occurred_at
    )
    if start_unknown:
        markers.append((first_event_at, True))
    before = changes[0].previous_status if changes else HEALTHY
    for change in changes:
        if before == HEALTHY and change.new_status != HEALTHY:
            markers.append((change.occurred_at, True))
        elif before != HEALTHY and change.new_status == HEALTHY:
            markers.append((change.occurred_at, False))
        before = change.new_status
    # Markers alternate start, end, start...: the next episode starts two markers on.
    return [
        EpisodeSpan(
            started_at=at,
            ended_at=markers[i + 1][0] if i + 1 < len(markers) else None,
            previous_end=markers[i - 1][0] if i > 0 else None,
            start_known=not (start_unknown and i == 0),
            next_started_at=markers[i + 2][0] if i + 2 < len(markers) else None,
        )
        for i, (at, starts) in enumerate(markers)
        if starts
    ]


def day_deltas(intervals: Sequence[Interval], sign: int = 1) -> Counter:
    """(day, status) -> +1 where an interval starts, -1 where it ends (times `sign`)."""
    deltas: Counter = Counter()
    for interval in intervals:
        deltas[(day_of(interval.started_at), interval.status)] += sign
        if interval.ended_at is not None:
            deltas[(day_of(interval.ended_at), interval.status)] -= sign
    return deltas


def transition_counts(intervals: Sequence[Interval], episodes: Sequence[EpisodeSpan]) -> Counter:
    """(day, new_status, "count" or "fixes") -> what one test adds to TransitionDayCount:
    each status change (the interval it started) on its day and new status, and each
    closed episode on its end day's HEALTHY row."""
    counts: Counter = Counter()
    for interval in intervals:
        if interval.changed:
            counts[(day_of(interval.started_at), interval.status, "count")] += 1
    for episode in episodes:
        if episode.ended_at is not None:
            counts[(day_of(episode.ended_at), HEALTHY, "fixes")] += 1
    return counts


def rebuild_transition_counts() -> None:
    """TransitionDayCount from the StatusInterval rows started by a change and the closed
    Episode rows (as transition_counts counts them), on an empty table (a rebuild)."""
    cast = "CAST(day AS date)" if connection.vendor == "postgresql" else "day"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO events_transitiondaycount (day, new_status, count, fixes)
            SELECT {cast}, status, SUM(n), SUM(f) FROM (
                SELECT {day_sql("started_at")} AS day, status, 1 AS n, 0 AS f
                  FROM events_statusinterval WHERE changed
                 UNION ALL
                SELECT {day_sql("ended_at")}, %s, 0, 1
                  FROM events_episode WHERE ended_at IS NOT NULL
            ) AS t
            GROUP BY day, status
            """,
            [HEALTHY],
        )
