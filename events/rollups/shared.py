"""What the rollup families share, and the LOCK ORDER that every one of them follows.

Here: the rows shared between tests, pairs or monitors (4 below) and how a transaction
writes them (SharedCounts: collected by the families' refreshes, written at the end, each
table in one statement, rows in key order), the rewrite of a test's own rows
(TestRollupRows: its status and owner rows), and the helpers every family uses (day_of,
day_sql, add_to_counts, with_rows_of_each_test).

LOCK ORDER. Every transaction that writes projections (the inline receiver, one delivery
per transaction; the projector, a batch; reprocessing, one delivery) takes its row locks
in this one order, so that two of them wait for each other instead of deadlocking:

1. Delivery rows (the receiver's INSERT; the projector's batch, FOR UPDATE SKIP LOCKED).
2. Entity rows, in this order: the Monitor row (created); the TestCase row if it
   exists (updated, or locked first when more than one UPDATE is needed: deliveries
   about one test wait for each other there); the claim on each new test (PostgreSQL: a
   transaction-level advisory lock, in key order: claim_new_tests in
   events/projection/apply.py), so two transactions creating the same test wait here
   instead of both inserting it, and after which no test row is waited for (NOWAIT);
   the Repository row (created through its
   URL's slot, given its Trunk id or renamed: upsert_repository, among the projection's
   entity rows); the Owner rows (created or re-spelled, in key order); then the TestCase
   row of a new test (inserted; owners are only inserted here, re-spelled in 4). A
   projector batch takes each of these at once, before applying its events (the
   projection's apply_events, events/projection/): monitors and owners in key order,
   existing test rows in key order (with them, the tests its stored investigations
   are under, when a replacement names another test; reprocessing locks the tests of
   what its delivery projected before removing it; the triage service locks the tests
   it writes for, in key order, before their investigations), repositories in arrival
   order (only a batch takes more than one); then it applies its events sorted by
   test, so its new tests are inserted in key order. An entity row is never given a new key while others may
   reference it (Repository.trunk_id is unique through a partial index): the foreign key
   checks deferred to COMMIT take key-share locks on referenced rows, which wait for
   nobody.
3. Rows of one test or one (monitor, test) pair only: history rows, TestCaseOwner,
   MonitorState, Investigation and facts, StatusInterval, Episode, OwnerTest,
   OwnerEpisode, MonitorInterval. Taken only under their test's row lock (2), so they
   cannot close a cycle.
4. Rows shared between tests, pairs or monitors, written only by Stale.refresh
   (refresh.py) after every row of 2 and 3: Owner spellings (owners.respell_owners: an
   event earlier than an owner's first seen, collected in Stale.owner_names), then
   SharedCounts.write (plus investigations.refresh_investigation_days): OwnerCount,
   OwnerDayDelta, StatusDayDelta, TransitionDayCount, MonitorDayCount, MonitorTotal,
   ResolutionBucket, FixTally, TargetTally, CalibrationBin (the projection's, from its Stale;
   the triage service writes it too, after its test and investigation rows),
   OutcomeTally, then InvestigationDay and the FactDayCount rows of the days locked.
   Each table in one statement, its rows in key order: the refreshes of a transaction
   (Stale.refresh: every test, then every pair) only compute what they add to those
   rows, collected in one SharedCounts.

No code outside the rollups (events/rollups/) writes a table of 4, and nothing writes a
row of 2 after a row of 4 (the projection's apply_events and reprocessing collect into a
Stale, refreshed last). tests/events/test_lock_order.py races deliveries of tests
sharing owners, days and monitors through the receiver, with the projector beside it,
and fails on a deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.db import connection

from .. import sql
from ..models import (
    Episode,
    FixTally,
    MonitorDayCount,
    MonitorTotal,
    OwnerEpisode,
    OwnerTest,
    StatusDayDelta,
    StatusInterval,
    TargetTally,
    TransitionDayCount,
)
from .triaged import refresh_first_triage

# An OwnerEpisode row as the rollups write it (owners.OwnerSpan.row).
OWNER_SPAN_COLUMNS = (
    "test_case",
    "owner_key",
    "started_at",
    "ended_at",
    "seconds",
    "relapse",
    "start_known",
    "next_started_at",
)
COUNT_FIELDS = ("tests", "flaky", "broken", "quarantined", "fixes", "relapses", "timed_fixes")


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_sql(column: str) -> str:
    """SQL for the UTC day of a timestamp column as 'YYYY-MM-DD' text (as TruncDate in UTC)."""
    if connection.vendor == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return f"date({column})"  # SQLite: Django stores aware datetimes as UTC text


def with_rows_of_each_test(tests: Iterator[tuple], rows: Iterator[tuple], make: Callable) -> Iterator:
    """(test row, [make(*rest) of each of its rows]) for each test, in one pass over two
    iterators both ordered by test id (the test id first in every tuple): a merge join,
    so that a rebuild holds one test's rows at a time."""
    pending = next(rows, None)
    for test in tests:
        own = []
        while pending is not None and pending[0] == test[0]:
            own.append(make(*pending[1:]))
            pending = next(rows, None)
        yield test, own


def add_to_counts(table: str, keys: Sequence[str], counts: Sequence[str], rows: Sequence[tuple]) -> None:
    """Add to a rollup table's counts in one statement: each row (its key columns, then
    its count columns, values ready for the database) is inserted, or on a conflict on
    its key added to the stored counts, so that concurrent refreshes add up instead of
    overwriting each other (each waits for the row lock, then adds to the committed
    value). The rows are locked in the order given: callers sort them, one lock order
    everywhere, no deadlock. No rows: no statement."""
    if not rows:
        return
    columns = [*keys, *counts]
    row = f"({', '.join(['%s'] * len(columns))})"
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counts)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * len(rows))}"
            f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}",
            [value for values in rows for value in values],
        )


@dataclass
class TestRollupRows:
    """The rollup rows of tests whose rows changed, by test: each table's rows of those
    tests are deleted and inserted again, one statement each."""

    __test__ = False

    intervals: dict = field(default_factory=dict)
    episodes: dict = field(default_factory=dict)
    owner_tests: dict = field(default_factory=dict)
    owner_spans: dict = field(default_factory=dict)

    TABLES = (
        ("intervals", StatusInterval, ("test_case", "status", "started_at", "ended_at", "changed")),
        (
            "episodes",
            Episode,
            (
                "test_case",
                "started_at",
                "ended_at",
                "previous_end",
                "seconds",
                "start_known",
                "next_started_at",
            ),
        ),
        ("owner_tests", OwnerTest, ("test_case", "owner_key", "status", "quarantined")),
        ("owner_spans", OwnerEpisode, OWNER_SPAN_COLUMNS),
    )

    def write(self) -> None:
        for name, model, columns in self.TABLES:
            by_test = getattr(self, name)
            if not by_test:
                continue
            model.objects.filter(test_case_id__in=list(by_test)).delete()
            rows = [row for rows in by_test.values() for row in rows]
            for start in range(0, len(rows), 1000):
                sql.insert_many(model, columns, rows[start : start + 1000])
            if model is OwnerEpisode:
                # New rows: their first triage action, from the test's triage history.
                refresh_first_triage(by_test)


@dataclass
class SharedCounts:
    """What a transaction's refreshes add to the rollup rows that several tests, pairs or
    monitors share, collected so that they are written at the end, each table in one
    statement with its rows in key order, the tables in the LOCK ORDER (write)."""

    owner_counts: dict = field(default_factory=dict)  # owner key -> COUNT_FIELDS deltas (zeros: lock only)
    owner_days: Counter = field(default_factory=Counter)  # (owner key, day, status) -> delta
    status_days: Counter = field(default_factory=Counter)  # (day, status) -> delta
    transitions: Counter = field(default_factory=Counter)  # (day, new status, "count"/"fixes") -> n
    monitor_days: Counter = field(default_factory=Counter)  # (monitor id, day, status) -> events
    monitor_resolutions: Counter = field(default_factory=Counter)  # (monitor id, day) -> resolutions
    monitor_totals: Counter = field(default_factory=Counter)  # monitor id -> events
    buckets: Counter = field(default_factory=Counter)  # (monitor type, bucket) -> resolutions
    fix_tally: Counter = field(default_factory=Counter)  # fixes.TallyKey -> fixes
    targets: Counter = field(default_factory=Counter)  # (owner key, kind, days) -> episodes

    def add_owner_counts(self, deltas: dict[str, list[int]]) -> None:
        for key, counts in deltas.items():
            total = self.owner_counts.setdefault(key, [0] * len(COUNT_FIELDS))
            for i, n in enumerate(counts):
                total[i] += n

    def write(self) -> None:
        """Add everything collected, in the LOCK ORDER; each table's rows in key order."""
        add_owner_counts(self.owner_counts)
        add_owner_day_deltas(self.owner_days)
        add_status_day_deltas(self.status_days)
        add_transition_counts(self.transitions)
        add_monitor_day_counts(self.monitor_days, self.monitor_resolutions)
        add_monitor_totals(self.monitor_totals)
        add_resolution_buckets(self.buckets)
        add_fix_tally(self.fix_tally)
        add_target_tally(self.targets)
        for collected in vars(self).values():
            collected.clear()


# ------------------------------------------- the shared rows (4), in SharedCounts.write's order


def add_owner_counts(deltas: dict[str, list[int]]) -> None:
    """Add to the OwnerCount rows of these owner keys (COUNT_FIELDS order), rows in key
    order. A row whose delta is all zeros is only locked."""
    add_to_counts(
        "events_ownercount",
        ("owner_key",),
        COUNT_FIELDS,
        [(key, *counts) for key, counts in sorted(deltas.items())],
    )


def add_owner_day_deltas(deltas: Counter) -> None:
    """Add to OwnerDayDelta, rows in (owner key, day, status) order (the caller holds the
    owners' OwnerCount rows, which already serialises them)."""
    add_to_counts(
        "events_ownerdaydelta",
        ("owner_key", "day", "status"),
        ("delta",),
        [(key, day, status, n) for (key, day, status), n in sorted(deltas.items()) if n],
    )


def add_status_day_deltas(deltas: Counter) -> None:
    """Add (day, status) -> delta to StatusDayDelta in one statement, rows in key order."""
    day_field = StatusDayDelta._meta.get_field("day")
    add_to_counts(
        "events_statusdaydelta",
        ("day", "status"),
        ("delta",),
        [
            (day_field.get_db_prep_value(day, connection), status, n)
            for (day, status), n in sorted(deltas.items())
            if n
        ],
    )


def add_transition_counts(counts: Counter) -> None:
    """Add (day, new_status, "count"/"fixes") -> n to TransitionDayCount, rows in (day,
    status) order. Nothing to add: no statement."""
    keys = sorted({(day, status) for (day, status, _), n in counts.items() if n})
    day_field = TransitionDayCount._meta.get_field("day")
    add_to_counts(
        "events_transitiondaycount",
        ("day", "new_status"),
        ("count", "fixes"),
        [
            (
                day_field.get_db_prep_value(day, connection),
                status,
                counts[(day, status, "count")],
                counts[(day, status, "fixes")],
            )
            for day, status in keys
        ],
    )


def add_monitor_day_counts(events: Counter, resolutions: Counter) -> None:
    """Add to the monitors' day counts in one statement: `events` is (monitor id, day,
    status) -> events, `resolutions` is (monitor id, day) -> intervals resolved (on the
    day's `resolved` row). Concurrent refreshes of other pairs of the same monitor and day
    add up instead of overwriting each other (add_to_counts). Rows in (monitor, day,
    status) order."""
    keys = {key for key, n in events.items() if n} | {
        (monitor_id, day, "resolved") for (monitor_id, day), n in resolutions.items() if n
    }
    monitor = MonitorDayCount._meta.get_field("monitor")
    add_to_counts(
        "events_monitordaycount",
        ("monitor_id", "status", "day"),
        ("count", "resolutions"),
        [
            (
                monitor.get_db_prep_value(monitor_id, connection),
                status,
                day,
                events[(monitor_id, day, status)],
                resolutions[(monitor_id, day)] if status == "resolved" else 0,
            )
            for monitor_id, day, status in sorted(keys)
        ],
    )


def add_monitor_totals(deltas: Counter) -> None:
    """Add monitor id -> events to MonitorTotal, rows in monitor order."""
    monitor = MonitorTotal._meta.get_field("monitor")
    add_to_counts(
        "events_monitortotal",
        ("monitor_id",),
        ("events",),
        [(monitor.get_db_prep_value(m, connection), n) for m, n in sorted(deltas.items()) if n],
    )


def add_resolution_buckets(deltas: Counter) -> None:
    """Add (monitor type, bucket) -> n to ResolutionBucket, rows in key order."""
    add_to_counts(
        "events_resolutionbucket",
        ("monitor_type", "bucket"),
        ("count",),
        [(kind, bucket, n) for (kind, bucket), n in sorted(deltas.items()) if n],
    )


def add_fix_tally(deltas: Counter) -> None:
    """Add (everyone, owner key, days to next, relapsed) -> fixes to FixTally, rows in key
    order."""
    add_to_counts(
        FixTally._meta.db_table,
        ("everyone", "owner_key", "days_to_next", "relapsed"),
        ("fixes",),
        [(*key, n) for key, n in sorted(deltas.items()) if n],
    )


def add_target_tally(deltas: Counter) -> None:
    """Add (owner key, kind, days) -> episodes to TargetTally (targets.py), rows in key
    order. The triage service adds its own differences with it too."""
    add_to_counts(
        TargetTally._meta.db_table,
        ("owner_key", "kind", "days"),
        ("episodes",),
        [(*key, n) for key, n in sorted(deltas.items()) if n],
    )
