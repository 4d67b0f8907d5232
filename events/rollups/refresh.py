"""A transaction's refresh: the tests, pairs and days whose rollups its events made stale
(Stale), each recomputed once, in the LOCK ORDER (shared.py); and the refresh of tests
(their status rows and owner rows, from one read of each table for all of them)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ..alerts import NewAlert, episode_started, record_alerts
from ..models import Episode, OwnerEpisode, OwnerTest, StatusChange, StatusInterval, TestCase, TestCaseOwner
from ..sql import code_point_ordered
from .calibration import Tally, add_calibration, new_tally
from .fixes import everyone_tally
from .investigations import refresh_investigation_days
from .monitors import refresh_monitor_pairs
from .outcomes import add_outcome_tally, refresh_auto_outcomes
from .owners import OwnerSpan, _refresh_owner_rows, quarantine_changed, respell_owners
from .quarantine import refresh_quarantined_since
from .shared import SharedCounts, TestRollupRows
from .status import Change, EpisodeSpan, Interval, day_deltas, episodes_of, intervals_of, transition_counts
from .targets import change_of


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
    investigated: set = field(default_factory=set)  # tests of investigations written
    outcomes: Counter = field(default_factory=Counter)  # (band, outcome) -> investigations
    # What judged investigations written or removed change in CalibrationBin.
    calibration: Tally = field(default_factory=new_tally)
    # Live projection (the receiver, the projector) sets its time here: the episodes it
    # starts are recorded as alerts (events/alerts.py). A rebuild or a reprocess leaves it
    # None: they tell no one.
    alerts_at: datetime | None = None

    def copy(self) -> Stale:
        return Stale(
            set(self.tests),
            set(self.pairs),
            set(self.days),
            set(self.quarantine_sent),
            dict(self.owner_names),
            set(self.investigated),
            Counter(self.outcomes),
            dict(self.calibration),
            self.alerts_at,
        )

    def refresh(self) -> None:
        """Recompute every stale rollup, following the LOCK ORDER: first each test's and
        pair's own rows (tests, then pairs, each sorted; their test rows are locked
        already), collecting what they add to shared rows; then the shared rows, table by
        table in one statement each, rows in key order; investigation days last."""
        respell_owners(self.owner_names)
        # The tests' own rows first (LOCK ORDER: their rows are locked by the batch).
        refresh_quarantined_since(self.quarantine_sent)
        shared = SharedCounts()
        started: list[NewAlert] | None = [] if self.alerts_at else None
        # A test whose quarantined flag changed: its owner rows (recomputed whole, like
        # any stale test's: writes only what changed).
        rewritten = refresh_tests(
            self.tests | quarantine_changed(self.quarantine_sent - self.tests), shared, started=started
        )
        # Their investigations' outcomes, from the episodes as they now are.
        refresh_auto_outcomes(rewritten | self.investigated, self.outcomes)
        self.investigated.clear()
        refresh_monitor_pairs(self.pairs, shared)
        shared.write()
        add_calibration(self.calibration)
        self.calibration.clear()
        add_outcome_tally(self.outcomes)
        self.outcomes.clear()
        refresh_investigation_days(self.days)
        if started and self.alerts_at:
            record_alerts(started, now=self.alerts_at)
        self.pairs.clear()
        self.tests.clear()
        self.days.clear()
        self.quarantine_sent.clear()
        self.owner_names.clear()


def refresh_tests(
    test_ids: Iterable[uuid.UUID], shared: SharedCounts, *, started: list[NewAlert] | None = None
) -> set[uuid.UUID]:
    """Recompute the rollup rows of these tests (status intervals, episodes, owner rows)
    from their first event time, status changes, status, quarantined flag and owner
    links, after a status change, a new first event time, new owner links or a changed
    quarantined flag. Runs in the projecting transaction, after their test rows were
    written (locked: deliveries about one test refresh one after the other).

    Writes only what changed: their own rows here, each table in one statement for all
    of them; what they add to the rows shared with other tests (owner counts and day
    deltas, status day deltas, transition day counts) goes to `shared`, which the caller
    writes once, in the lock order (see LOCK ORDER, shared.py). Seven reads whatever the
    number of tests, and at most two statements per table written. Returns the tests
    whose episodes were rewritten; adds to `started`, if given, an alert for each test
    now in an episode that was not counted before (it started one)."""
    ids = sorted(set(test_ids))
    if not ids:
        return set()
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
        .order_by("test_case_id", "occurred_at", code_point_ordered("delivery__svix_id"))
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
        .values_list(
            "test_case_id", "started_at", "ended_at", "previous_end", "start_known", "next_started_at"
        ),
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
            "test_case_id", "owner_key", "started_at", "ended_at", "relapse", "start_known", "next_started_at"
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
        latest = episodes[-1] if episodes else None
        if started is not None and latest and _started_now(latest, counted_episodes):
            started.append(episode_started(pk, latest, status=status))
        if counted_episodes != episodes:
            shared.fix_tally.update(everyone_tally(episodes))
            shared.fix_tally.subtract(everyone_tally(counted_episodes))
            rewritten.episodes[pk] = [
                (pk, e.started_at, e.ended_at, e.previous_end, e.seconds, e.start_known, e.next_started_at)
                for e in episodes
            ]
        if counted != intervals or counted_episodes != episodes:
            shared.transitions.update(transition_counts(intervals, episodes))
            shared.transitions.subtract(transition_counts(counted, counted_episodes))
    # Rewritten owner episodes (and their first triage) change the target tally.
    shared.targets.update(change_of(rewritten.owner_spans, rewritten.write))
    return set(rewritten.episodes)


def _started_now(latest: EpisodeSpan, counted: list[EpisodeSpan]) -> bool:
    """The test is in an episode now that it was not in before: an alert. Not when the
    episode was open already and an older event only moved its start earlier (deliveries
    out of order: FLAKY -> BROKEN first, then the HEALTHY -> FLAKY that began it)."""
    if latest.ended_at is not None:
        return False
    if counted and counted[-1].ended_at is None and counted[-1].started_at >= latest.started_at:
        return False
    return latest.started_at not in {e.started_at for e in counted}


def _by_test(rows: Iterable[tuple], make: Callable) -> dict[uuid.UUID, list]:
    """Rows whose first value is a test id, grouped by test: make(*rest) of each."""
    grouped: dict[uuid.UUID, list] = {}
    for pk, *rest in rows:
        grouped.setdefault(pk, []).append(make(*rest))
    return grouped
