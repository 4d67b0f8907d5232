"""Rollups: per-test figures derived from history, kept by the projections so that pages
read a few indexed rows instead of replaying all history on every request.

- StatusInterval: a test's status from one time to the next (METRICS "Status at time t").
- Episode: HEALTHY -> FLAKY/BROKEN ... -> HEALTHY (METRICS "Episodes").
- StatusDayDelta: per (day, status), tests entering minus tests leaving that status that
  day, so "tests by status at the end of day D" is a running sum over days (a few
  thousand rows for years of history, whatever the number of tests or events).
- MonitorInterval: a (monitor, test) pair active from the first `active` event after a
  `resolved` one to the next `resolved` (METRICS "Time to resolve"), with its duration.
- MonitorState.activations: the pair's `active` events (METRICS "Flapping" over all
  history), and MonitorState.event_days, the (day, status) of each of the pair's events:
  what the pair contributed to MonitorDayCount, kept so that a refresh adds exactly the
  difference (a reprocessed delivery removes and re-adds its event).
- MonitorDayCount: events per (day, monitor, status) (METRICS "Activations" by day and
  the event count of each monitor).
- MonitorTotal: each monitor's events (the sum of its MonitorDayCount rows).
- ResolutionBucket: resolved intervals per (monitor type, duration bucket), the index to
  the median time to resolve over all history.
- OwnerTest, OwnerEpisode: a test's owner links ("" for none) with its status and
  quarantined flag, and its episodes once per owner with their time to fix and relapse
  flag; OwnerCount: their sums per owner (tests, FLAKY, BROKEN, quarantined, fixes,
  relapses), kept by adding the difference of what the test contributes, so that the
  codeowners pages read a row per owner (METRICS "Owners": a test with several owners
  counts once for each).
- InvestigationDay, FactDayCount: per UTC day of event time, the investigations' count,
  confidence sum and histogram bins, and per fact type the facts' count and confidence
  sum (METRICS "Investigations" over all history: a row per day, not every investigation).
  A day's rows are recomputed from the day's investigations whenever one of them is
  written or removed, under a lock on the day's row (refresh_investigation_days).

A test's rollup rows are recomputed from its status changes whenever one of them is
applied (and when the test is first seen), its owner rollups also when its owner links
or its quarantined flag change; a pair's intervals from the pair's monitor events
whenever one arrives. A test or pair has tens of events, so this is cheap, and it
is correct whatever the order the events arrived in (ties on event time go by svix id,
as everywhere). The rules live here once; the receiver (projections.py) calls them per
delivery and the rebuild (bulk.py) for everything at once.

LOCK ORDER. Every transaction that writes projections (the inline receiver, one delivery
per transaction; the projector, a batch; reprocessing, one delivery) takes its row locks
in this one order, so that two of them wait for each other instead of deadlocking:

1. Delivery rows (the receiver's INSERT; the projector's batch, FOR UPDATE SKIP LOCKED).
2. Entity rows, in this order: the Monitor row (created); the TestCase row if it
   exists (updated, or locked first when more than one UPDATE is needed: deliveries
   about one test wait for each other there); the Repository row (created through its
   URL's slot, given its Trunk id or renamed: projections.upsert_repository); the Owner
   rows (created or re-spelled, in key order); then the TestCase row of a new test
   (inserted; owners are only inserted here, re-spelled in 4). A projector batch takes each of these at once, before applying its
   events (projections.create_entities): monitors and owners in key order, existing
   test rows in key order, repositories in arrival order (only a batch takes more than
   one); then it applies its events sorted by test, so its new tests are inserted in
   key order. An entity row is never given a new key while others may reference it
   (Repository.trunk_id is unique through a partial index): the foreign key checks
   deferred to COMMIT take key-share locks on referenced rows, which wait for nobody.
3. Rows of one test or one (monitor, test) pair only: history rows, TestCaseOwner,
   MonitorState, Investigation and facts, StatusInterval, Episode, OwnerTest,
   OwnerEpisode, MonitorInterval. Taken only under their test's row lock (2), so they
   cannot close a cycle.
4. Rows shared between tests, pairs or monitors, written only by Stale.refresh after
   every row of 2 and 3: Owner spellings (respell_owners: an event earlier than an
   owner's first seen, collected in Stale.owner_names), then SharedCounts.write (plus
   refresh_investigation_days): OwnerCount, OwnerDayDelta, StatusDayDelta, TransitionDayCount, MonitorDayCount,
   MonitorTotal, ResolutionBucket, then InvestigationDay and the FactDayCount rows of the
   days locked. Each table in one statement, its rows in key order: the refreshes of a
   transaction (Stale.refresh: every test, then every pair) only compute what they add
   to those rows, collected in one SharedCounts.

No code outside this module writes a table of 4, and nothing writes a row of 2 after a
row of 4 (apply_event and reprocessing collect into a Stale, refreshed last).
tests/events/test_lock_order.py races deliveries of tests sharing owners, days and
monitors through the receiver, with the projector beside it, and fails on a deadlock.
"""

from __future__ import annotations

import bisect
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import F, Q

from . import sql
from .models import (
    Episode,
    FactDayCount,
    Investigation,
    InvestigationDay,
    MonitorDayCount,
    MonitorInterval,
    MonitorState,
    MonitorTotal,
    Owner,
    OwnerCount,
    OwnerDayDelta,
    OwnerEpisode,
    OwnerTest,
    ResolutionBucket,
    Status,
    StatusChange,
    StatusDayDelta,
    StatusInterval,
    TestCase,
    TestCaseOwner,
    TransitionDayCount,
)
from .sql import Table

HEALTHY = Status.HEALTHY
# METRICS "Episodes": a relapse starts within 30 days after the end of the previous one.
from .metrics import RELAPSE_WINDOW  # noqa: E402


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
    return [
        EpisodeSpan(
            started_at=at,
            ended_at=markers[i + 1][0] if i + 1 < len(markers) else None,
            previous_end=markers[i - 1][0] if i > 0 else None,
            start_known=not (start_unknown and i == 0),
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


# ---------------------------------------------------------------- kept by the receiver


def refresh_tests(test_ids: Iterable[uuid.UUID], shared: SharedCounts) -> None:
    """Recompute the rollup rows of these tests (status intervals, episodes, owner rows)
    from their first event time, status changes, status, quarantined flag and owner
    links, after a status change, a new first event time, new owner links or a changed
    quarantined flag. Runs in the projecting transaction, after their test rows were
    written (locked: deliveries about one test refresh one after the other).

    Writes only what changed: their own rows here, each table in one statement for all
    of them; what they add to the rows shared with other tests (owner counts and day
    deltas, status day deltas, transition day counts) goes to `shared`, which the caller
    writes once, in the lock order (see LOCK ORDER). Seven reads whatever the number of
    tests, and at most two statements per table written."""
    ids = sorted(set(test_ids))
    if not ids:
        return
    tests = {
        pk: (first, status, quarantined)
        for pk, first, status, quarantined in TestCase.objects.filter(pk__in=ids).values_list(
            "id", "first_event_at", "status", "quarantined"
        )
    }
    owner_keys: dict[uuid.UUID, list[str]] = {}
    for pk, key in TestCaseOwner.objects.filter(test_case_id__in=ids).values_list(
        "test_case_id", "owner__key"
    ):
        owner_keys.setdefault(pk, []).append(key)
    changes = _by_test(
        StatusChange.objects.filter(test_case_id__in=ids)
        .order_by("test_case_id", "occurred_at", "delivery__svix_id")
        .values_list("test_case_id", "occurred_at", "previous_status", "new_status"),
        Change,
    )
    stored_intervals = _by_test(
        StatusInterval.objects.filter(test_case_id__in=ids)
        .order_by("test_case_id", "started_at", "id")
        .values_list("test_case_id", "status", "started_at", "ended_at", "changed"),
        Interval,
    )
    stored_episodes = _by_test(
        Episode.objects.filter(test_case_id__in=ids)
        .order_by("test_case_id", "started_at", "id")
        .values_list("test_case_id", "started_at", "ended_at", "previous_end", "start_known"),
        EpisodeSpan,
    )
    stored_owner_tests = _by_test(
        OwnerTest.objects.filter(test_case_id__in=ids).values_list(
            "test_case_id", "owner_key", "status", "quarantined"
        ),
        lambda *row: row,
    )
    stored_spans = _by_test(
        OwnerEpisode.objects.filter(test_case_id__in=ids).values_list(
            "test_case_id", "owner_key", "started_at", "ended_at", "relapse", "start_known"
        ),
        OwnerSpan,
    )
    rewritten = TestRollupRows()
    for pk in ids:
        if pk not in tests:  # pragma: no cover - refreshed in the transaction that wrote it
            continue
        first_event_at, status, quarantined = tests[pk]
        intervals = intervals_of(first_event_at, changes.get(pk, []))
        episodes = episodes_of(first_event_at, changes.get(pk, []))
        counted = stored_intervals.get(pk, [])
        counted_episodes = stored_episodes.get(pk, [])
        _refresh_owner_rows(
            pk,
            rewritten,
            shared,
            keys=sorted(owner_keys.get(pk, [])) or [""],
            status=status,
            quarantined=quarantined,
            episodes=episodes,
            intervals=intervals,
            counted_intervals=counted,
            stored_tests=sorted(stored_owner_tests.get(pk, [])),
            stored_spans=sorted(stored_spans.get(pk, []), key=OwnerSpan.sort_key),
        )
        if counted != intervals:
            shared.status_days.update(day_deltas(intervals))
            shared.status_days.subtract(day_deltas(counted))
            rewritten.intervals[pk] = [(pk, i.status, i.started_at, i.ended_at, i.changed) for i in intervals]
        # Compared on their own: the same intervals can hold other episodes (a first change
        # at the very time the test was first seen starts no interval but may start one).
        if counted_episodes != episodes:
            rewritten.episodes[pk] = [
                (pk, e.started_at, e.ended_at, e.previous_end, e.seconds, e.start_known) for e in episodes
            ]
        if counted != intervals or counted_episodes != episodes:
            shared.transitions.update(transition_counts(intervals, episodes))
            shared.transitions.subtract(transition_counts(counted, counted_episodes))
    rewritten.write()


def _by_test(rows: Iterable[tuple], make: Callable) -> dict[uuid.UUID, list]:
    """Rows whose first value is a test id, grouped by test: make(*rest) of each."""
    grouped: dict[uuid.UUID, list] = {}
    for pk, *rest in rows:
        grouped.setdefault(pk, []).append(make(*rest))
    return grouped


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
            ("test_case", "started_at", "ended_at", "previous_end", "seconds", "start_known"),
        ),
        ("owner_tests", OwnerTest, ("test_case", "owner_key", "status", "quarantined")),
        (
            "owner_spans",
            OwnerEpisode,
            ("test_case", "owner_key", "started_at", "ended_at", "seconds", "relapse", "start_known"),
        ),
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


def _refresh_owner_rows(
    test_case_id: uuid.UUID,
    rewritten: TestRollupRows,
    shared: SharedCounts,
    *,
    keys: list[str],
    status: str,
    quarantined: bool,
    episodes: Sequence[EpisodeSpan],
    intervals: Sequence[Interval],
    counted_intervals: Sequence[Interval],
    stored_tests: list[tuple],
    stored_spans: list[OwnerSpan],
) -> None:
    """Bring one test's owner rollups in line with its owner `keys` ("" for none),
    status, episodes and status intervals. `counted_intervals`: the StatusInterval rows
    that `intervals` replace (what OwnerDayDelta counted). OwnerTest and OwnerEpisode hold
    what the test was counted as; the counts get the difference. Lock order, the same in
    every transaction (LOCK ORDER): the OwnerCount rows of every owner concerned (even
    with nothing to add to them), then the OwnerDayDelta rows, written from `shared`."""
    owner_tests = [(key, status, quarantined) for key in keys]
    spans = owner_spans(keys, episodes)
    stored_keys = sorted({key for key, *_ in stored_tests})
    if (stored_tests, stored_spans, stored_keys, counted_intervals) == (owner_tests, spans, keys, intervals):
        return
    counts = owner_counts(owner_tests, spans)
    counts.subtract(owner_counts(stored_tests, stored_spans))
    days = owner_day_deltas(keys, intervals)
    days.subtract(owner_day_deltas(stored_keys, counted_intervals))
    touched = {key for (key, _), n in counts.items() if n} | {key for (key, *_), n in days.items() if n}
    if stored_keys != keys:
        touched |= set(stored_keys) | set(keys)
    shared.add_owner_counts({key: [counts[(key, f)] for f in COUNT_FIELDS] for key in touched})
    shared.owner_days.update(days)
    if stored_tests != owner_tests:
        rewritten.owner_tests[test_case_id] = [(test_case_id, *row) for row in owner_tests]
    if stored_spans != spans:
        rewritten.owner_spans[test_case_id] = [
            (test_case_id, s.owner_key, s.started_at, s.ended_at, s.seconds, s.relapse, s.start_known)
            for s in spans
        ]


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
        for collected in vars(self).values():
            collected.clear()


@dataclass
class Stale:
    """The tests, (monitor id, test id) pairs and investigation days whose rollups events
    changed, to be recomputed once each, however many of their events were applied; and
    the tests whose events carried a quarantined flag, whose owner rollups are recomputed
    if the flag now differs from what they counted (one query for all of them)."""

    tests: set = field(default_factory=set)
    pairs: set = field(default_factory=set)
    days: set = field(default_factory=set)  # UTC days of investigations written or removed
    quarantine_sent: set = field(default_factory=set)
    owner_names: dict = field(default_factory=dict)  # owner key -> earlier (time, spelling)

    def copy(self) -> Stale:
        return Stale(
            set(self.tests),
            set(self.pairs),
            set(self.days),
            set(self.quarantine_sent),
            dict(self.owner_names),
        )

    def refresh(self) -> None:
        """Recompute every stale rollup, following the LOCK ORDER: first each test's and
        pair's own rows (tests, then pairs, each sorted; their test rows are locked
        already), collecting what they add to shared rows; then the shared rows, table by
        table in one statement each, rows in key order; investigation days last."""
        respell_owners(self.owner_names)
        shared = SharedCounts()
        # A test whose quarantined flag changed: its owner rows (recomputed whole, like
        # any stale test's: writes only what changed).
        refresh_tests(self.tests | quarantine_changed(self.quarantine_sent - self.tests), shared)
        refresh_monitor_pairs(self.pairs, shared)
        shared.write()
        refresh_investigation_days(self.days)
        self.pairs.clear()
        self.tests.clear()
        self.days.clear()
        self.quarantine_sent.clear()
        self.owner_names.clear()


def respell_owners(first_seen: dict) -> None:
    """Owner key -> (event time, spelling) of an event earlier than the owner's first
    seen: take it, one guarded UPDATE per owner in key order (LOCK ORDER: with the shared
    rows, before OwnerCount), guarded again in SQL, as a concurrent delivery may have
    moved it meanwhile."""
    for key, (at, name) in sorted(first_seen.items()):
        Owner.objects.filter(key=key).filter(
            Q(first_seen_at__gt=at) | Q(first_seen_at=at, name__gt=name)
        ).update(name=name, first_seen_at=at)


def quarantine_changed(test_case_ids: set) -> set:
    """Those of these tests whose quarantined flag is not the one their owner rollups
    counted (OwnerTest.quarantined). One query; none for no tests."""
    if not test_case_ids:
        return set()
    return set(
        OwnerTest.objects.filter(test_case_id__in=test_case_ids)
        .exclude(quarantined=F("test_case__quarantined"))
        .values_list("test_case_id", flat=True)
    )


# ---------------------------------------------------------------- owners


@dataclass(frozen=True)
class OwnerSpan:
    """An episode as OwnerEpisode holds it, for one owner ("" for none)."""

    owner_key: str
    started_at: datetime
    ended_at: datetime | None
    relapse: bool
    start_known: bool = True

    @property
    def seconds(self) -> float | None:
        """As EpisodeSpan.seconds: none while open or when the start is unknown."""
        if self.ended_at is None or not self.start_known:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def sort_key(self) -> tuple:
        # Two episodes of a test may start at one time (ties): open ones after closed ones.
        return (self.owner_key, self.started_at, self.ended_at is None, self.ended_at or self.started_at)


COUNT_FIELDS = ("tests", "flaky", "broken", "quarantined", "fixes", "relapses", "timed_fixes")


def owner_spans(owner_keys: Sequence[str], episodes: Sequence[EpisodeSpan]) -> list[OwnerSpan]:
    """Each episode once per owner key (METRICS: a relapse starts within 30 days after the
    end of the test's previous episode)."""
    return sorted(
        (
            OwnerSpan(
                key,
                e.started_at,
                e.ended_at,
                e.previous_end is not None and e.started_at - e.previous_end <= RELAPSE_WINDOW,
                e.start_known,
            )
            for key in owner_keys
            for e in episodes
        ),
        key=OwnerSpan.sort_key,
    )


def owner_counts(owner_tests: Sequence[tuple[str, str, bool]], spans: Sequence[OwnerSpan]) -> Counter:
    """(owner key, count field) -> what one test adds to OwnerCount: its (owner key,
    status, quarantined) rows and its episodes per owner."""
    counts: Counter = Counter()
    for key, status, quarantined in owner_tests:
        counts[(key, "tests")] += 1
        counts[(key, "flaky")] += status == Status.FLAKY
        counts[(key, "broken")] += status == Status.BROKEN
        counts[(key, "quarantined")] += bool(quarantined)
    for span in spans:
        counts[(key := span.owner_key, "fixes")] += span.ended_at is not None
        counts[(key, "relapses")] += span.relapse
        counts[(key, "timed_fixes")] += span.seconds is not None
    return counts


def owner_day_deltas(owner_keys: Sequence[str], intervals: Sequence[Interval]) -> Counter:
    """(owner key, day, status) -> the test's day deltas, once for each of its owners."""
    deltas = day_deltas(intervals)
    return Counter({(key, day, status): n for key in owner_keys for (day, status), n in deltas.items() if n})


def add_owner_day_deltas(deltas: Counter) -> None:
    """Add to OwnerDayDelta, rows in (owner key, day, status) order (the caller holds the
    owners' OwnerCount rows, which already serialises them)."""
    add_to_counts(
        "events_ownerdaydelta",
        ("owner_key", "day", "status"),
        ("delta",),
        [(key, day, status, n) for (key, day, status), n in sorted(deltas.items()) if n],
    )


def add_owner_counts(deltas: dict[str, list[int]]) -> None:
    """Add to the OwnerCount rows of these owner keys (COUNT_FIELDS order), rows in key
    order. A row whose delta is all zeros is only locked."""
    add_to_counts(
        "events_ownercount",
        ("owner_key",),
        COUNT_FIELDS,
        [(key, *counts) for key, counts in sorted(deltas.items())],
    )


def rebuild_transition_counts() -> None:
    """TransitionDayCount from the StatusInterval rows started by a change and the closed
    Episode rows (as transition_counts counts them), on an empty table (a rebuild)."""
    cast = "CAST(day AS date)" if connection.vendor == "postgresql" else "day"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO events_transitiondaycount (day, new_status, count, fixes)
            SELECT {cast}, status, SUM(n), SUM(f) FROM (
                SELECT {_day_sql("started_at")} AS day, status, 1 AS n, 0 AS f
                  FROM events_statusinterval WHERE changed
                 UNION ALL
                SELECT {_day_sql("ended_at")}, %s, 0, 1
                  FROM events_episode WHERE ended_at IS NOT NULL
            ) AS t
            GROUP BY day, status
            """,
            [HEALTHY],
        )


def rebuild_owner_rollups() -> None:
    """Every test's owner rollups from its status, owner links, Episode and StatusInterval
    rows (a rebuild), on empty owner tables."""

    owners: dict[uuid.UUID, list[str]] = {}
    for test_id, key in (
        TestCase.objects.filter(owner_links__isnull=False)
        .values_list("id", "owner_links__owner__key")
        .iterator(chunk_size=5000)
    ):
        owners.setdefault(test_id, []).append(key)
    tests = Table(OwnerTest, ["test_case", "owner_key", "status", "quarantined"])
    spans = Table(
        OwnerEpisode,
        ["test_case", "owner_key", "started_at", "ended_at", "seconds", "relapse", "start_known"],
    )
    counts: Counter = Counter()
    rows = (
        TestCase.objects.order_by("id").values_list("id", "status", "quarantined").iterator(chunk_size=5000)
    )
    episodes = (
        Episode.objects.order_by("test_case_id", "started_at", "id")
        .values_list("test_case_id", "started_at", "ended_at", "previous_end", "start_known")
        .iterator(chunk_size=5000)
    )
    for (test_id, status, quarantined), test_episodes in with_rows_of_each_test(rows, episodes, EpisodeSpan):
        keys = sorted(owners.get(test_id, [])) or [""]
        owner_tests = [(key, status, quarantined) for key in keys]
        test_spans = owner_spans(keys, test_episodes)
        for key, test_status, test_quarantined in owner_tests:
            tests.add(test_id, key, test_status, test_quarantined)
        for s in test_spans:
            spans.add(test_id, s.owner_key, s.started_at, s.ended_at, s.seconds, s.relapse, s.start_known)
        counts.update(owner_counts(owner_tests, test_spans))
    tests.flush()
    spans.flush()
    # The day deltas of each test's intervals, once per owner it is counted under.
    cast = "CAST(day AS date)" if connection.vendor == "postgresql" else "day"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO events_ownerdaydelta (owner_key, day, status, delta)
            SELECT owner_key, {cast}, status, SUM(delta) FROM (
                SELECT ot.owner_key, {_day_sql("si.started_at")} AS day, si.status, 1 AS delta
                  FROM events_statusinterval si JOIN events_ownertest ot ON ot.test_case_id = si.test_case_id
                 UNION ALL
                SELECT ot.owner_key, {_day_sql("si.ended_at")}, si.status, -1
                  FROM events_statusinterval si JOIN events_ownertest ot ON ot.test_case_id = si.test_case_id
                 WHERE si.ended_at IS NOT NULL
            ) AS d
            GROUP BY owner_key, day, status
            HAVING SUM(delta) <> 0
            """
        )
    OwnerCount.objects.bulk_create(
        [
            OwnerCount(owner_key=key, **{f: counts[(key, f)] for f in COUNT_FIELDS})
            for key in sorted({key for key, _ in counts})
        ],
        batch_size=1000,
    )


# ---------------------------------------------------------------- monitor intervals


def _monitor_intervals_sql(pair_filter: str) -> str:
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


def _day_sql(column: str) -> str:
    """SQL for the UTC day of a timestamp column as 'YYYY-MM-DD' text (as TruncDate in UTC)."""
    if connection.vendor == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return f"date({column})"  # SQLite: Django stores aware datetimes as UTC text


def _pair_counts_sql(pair_filter: str) -> str:
    """UPDATE of MonitorState.activations and .event_days from the monitor events of the
    pairs matching `pair_filter` (SQL on `events_monitorstate`). event_days is one
    'YYYY-MM-DD' + status initial per event, in no particular order (read as a multiset)."""
    concat = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    return f"""
        UPDATE events_monitorstate SET (activations, event_days) = (
            SELECT COALESCE(SUM(CASE WHEN me.status = 'active' THEN 1 ELSE 0 END), 0),
                   COALESCE({concat}({_day_sql("me.occurred_at")} || SUBSTR(me.status, 1, 1), ','), '')
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


def _resolution_buckets(rows: Sequence[tuple]) -> Counter:
    """(monitor type, bucket) -> resolutions, from (resolved day, monitor type, seconds) rows."""
    return Counter((kind, resolution_bucket(seconds)) for _, kind, seconds in rows if seconds is not None)


def add_resolution_buckets(deltas: Counter) -> None:
    """Add (monitor type, bucket) -> n to ResolutionBucket, rows in key order."""
    add_to_counts(
        "events_resolutionbucket",
        ("monitor_type", "bucket"),
        ("count",),
        [(kind, bucket, n) for (kind, bucket), n in sorted(deltas.items()) if n],
    )


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


# ---------------------------------------------------------------- monitor pairs


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
    returned = f"monitor_id, {_day_sql('resolved_at')}, monitor_type, seconds"
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
        cursor.execute(_monitor_intervals_sql(event_filter) + f" RETURNING {returned}", params)
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


def add_monitor_totals(deltas: Counter) -> None:
    """Add monitor id -> events to MonitorTotal, rows in monitor order."""
    monitor = MonitorTotal._meta.get_field("monitor")
    add_to_counts(
        "events_monitortotal",
        ("monitor_id",),
        ("events",),
        [(monitor.get_db_prep_value(m, connection), n) for m, n in sorted(deltas.items()) if n],
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
                SELECT {_day_sql("occurred_at")} AS day, monitor_id, status, 1 AS n, 0 AS r
                  FROM events_monitorevent
                 UNION ALL
                SELECT {_day_sql("resolved_at")}, monitor_id, 'resolved', 0, 1
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


# Every rollup table, children first.
ROLLUP_MODELS = (
    InvestigationDay,
    FactDayCount,
    OwnerCount,
    OwnerDayDelta,
    OwnerEpisode,
    OwnerTest,
    MonitorDayCount,
    MonitorTotal,
    ResolutionBucket,
    MonitorInterval,
    Episode,
    StatusInterval,
    StatusDayDelta,
    TransitionDayCount,
)


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


def rebuild_all() -> None:
    """Compute every rollup from the history rows."""
    for model in ROLLUP_MODELS:
        model.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(_monitor_intervals_sql("1 = 1"))
    rebuild_monitor_rollups()
    rebuild_monitor_totals()
    rebuild_resolution_buckets()

    intervals = Table(StatusInterval, ["test_case", "status", "started_at", "ended_at", "changed"])
    episodes = Table(
        Episode, ["test_case", "started_at", "ended_at", "previous_end", "seconds", "start_known"]
    )
    deltas: Counter = Counter()

    def flush_test(test_id, first_event_at, changes):
        test_intervals = intervals_of(first_event_at, changes)
        for i in test_intervals:
            intervals.add(test_id, i.status, i.started_at, i.ended_at, i.changed)
        test_episodes = episodes_of(first_event_at, changes)
        for e in test_episodes:
            episodes.add(test_id, e.started_at, e.ended_at, e.previous_end, e.seconds, e.start_known)
        deltas.update(day_deltas(test_intervals))

    rows = TestCase.objects.order_by("id").values_list("id", "first_event_at").iterator(chunk_size=5000)
    changes = (
        StatusChange.objects.order_by("test_case_id", "occurred_at", "delivery__svix_id")
        .values_list("test_case_id", "occurred_at", "previous_status", "new_status")
        .iterator(chunk_size=5000)
    )
    for (test_id, first_event_at), test_changes in with_rows_of_each_test(rows, changes, Change):
        flush_test(test_id, first_event_at, test_changes)
    intervals.flush()
    episodes.flush()
    StatusDayDelta.objects.bulk_create(
        [StatusDayDelta(day=day, status=status, delta=d) for (day, status), d in sorted(deltas.items()) if d],
        batch_size=1000,
    )
    rebuild_transition_counts()
    rebuild_owner_rollups()
    rebuild_investigation_rollups()


# ---------------------------------------------------------------- investigations


def confidence_bins() -> list[tuple[float, float | None]]:
    """The confidence histogram's bins (METRICS "Investigations"): tenths [i/10, (i+1)/10),
    the last one [0.9, ...] so that 1.0 falls in it. The one definition of the bounds, for
    the rollups and for dashboard.queries (the same float bounds on both paths)."""
    return [(i / 10, (i + 1) / 10 if i < 9 else None) for i in range(10)]


BIN_FIELDS = tuple(f"bin{i}" for i in range(10))


def _bins_sql(column: str) -> tuple[str, list[float]]:
    """The ten bin counts of `column` as SQL aggregates, with their parameters."""
    parts, params = [], []
    for lo, hi in confidence_bins():
        if hi is None:
            parts.append(f"COALESCE(SUM(CASE WHEN {column} >= %s THEN 1 ELSE 0 END), 0)")
            params.append(lo)
        else:
            parts.append(f"COALESCE(SUM(CASE WHEN {column} >= %s AND {column} < %s THEN 1 ELSE 0 END), 0)")
            params += [lo, hi]
    return ", ".join(parts), params


def _day_bounds(day: date) -> list:
    """[start, end) of a UTC day, as occurred_at parameters (an index range)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    occurred_at = Investigation._meta.get_field("occurred_at")
    return [occurred_at.get_db_prep_value(t, connection) for t in (start, start + timedelta(days=1))]


def refresh_investigation_days(days: Iterable[date]) -> None:
    """Recompute the investigation rollups of each day from that day's investigations and
    their facts, after an investigation of the day was written or removed (a day holds
    tens of investigations: cheap, and exact whatever the order things happened in).

    Each day's InvestigationDay row is locked first, every day in one upsert in day order
    (no deadlock), and only then are the day's rows aggregated, in separate statements:
    on PostgreSQL (READ COMMITTED) their snapshots are taken after the lock was granted,
    so they see the investigations of every transaction that held it before (as
    refresh_monitor_pair). The day's FactDayCount rows are written under the same lock.

    Per day: the update of its row, then delete and insert of its fact counts; plus the
    one locking upsert (none when there is no day)."""
    days = sorted(set(days))
    if not days:
        return
    day_field = InvestigationDay._meta.get_field("day")
    zeros = ", ".join(["0"] * (2 + len(BIN_FIELDS)))
    bins, bin_params = _bins_sql("confidence")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO events_investigationday (day, count, confidence_sum, {", ".join(BIN_FIELDS)})
            VALUES {", ".join([f"(%s, {zeros})"] * len(days))}
            ON CONFLICT (day) DO UPDATE SET count = events_investigationday.count
            """,
            [day_field.get_db_prep_value(day, connection) for day in days],
        )
        for day in days:
            bounds = _day_bounds(day)
            prepared_day = day_field.get_db_prep_value(day, connection)
            cursor.execute(
                f"""
                UPDATE events_investigationday
                   SET (count, confidence_sum, {", ".join(BIN_FIELDS)}) = (
                       SELECT COUNT(*), COALESCE(SUM(confidence), 0), {bins}
                         FROM events_investigation
                        WHERE occurred_at >= %s AND occurred_at < %s)
                 WHERE day = %s
                """,
                [*bin_params, *bounds, prepared_day],
            )
            cursor.execute("DELETE FROM events_factdaycount WHERE day = %s", [prepared_day])
            cursor.execute(
                """
                INSERT INTO events_factdaycount (day, fact_type, count, confidence_count, confidence_sum)
                SELECT %s, f.fact_type, COUNT(*), COUNT(f.confidence), COALESCE(SUM(f.confidence), 0)
                  FROM events_investigationfact f
                  JOIN events_investigation i ON i.id = f.investigation_id
                 WHERE i.occurred_at >= %s AND i.occurred_at < %s
                 GROUP BY f.fact_type
                """,
                [prepared_day, *bounds],
            )


def rebuild_investigation_rollups() -> None:
    """Every day's investigation rollups from all investigations and facts, grouped in SQL
    (a rebuild, on empty InvestigationDay and FactDayCount). The same
    UTC day as the receiver's day bounds (_day_sql)."""
    cast = "CAST(day AS date)" if connection.vendor == "postgresql" else "day"
    bins, bin_params = _bins_sql("confidence")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO events_investigationday (day, count, confidence_sum, {", ".join(BIN_FIELDS)})
            SELECT {cast}, COUNT(*), COALESCE(SUM(confidence), 0), {bins} FROM (
                SELECT {_day_sql("occurred_at")} AS day, confidence FROM events_investigation
            ) AS i
            GROUP BY day
            """,
            bin_params,
        )
        cursor.execute(
            f"""
            INSERT INTO events_factdaycount (day, fact_type, count, confidence_count, confidence_sum)
            SELECT {cast}, fact_type, COUNT(*), COUNT(confidence), COALESCE(SUM(confidence), 0) FROM (
                SELECT {_day_sql("i.occurred_at")} AS day, f.fact_type, f.confidence
                  FROM events_investigationfact f
                  JOIN events_investigation i ON i.id = f.investigation_id
            ) AS f
            GROUP BY day, fact_type
            """
        )
