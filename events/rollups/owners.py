"""Owner rollups: a test's owner links ("" for none) with its status and quarantined flag
(OwnerTest), its episodes once per owner (OwnerEpisode), and what it adds to its owners'
counts (OwnerCount) and day deltas (OwnerDayDelta) (METRICS "Owners": a test with several
owners counts once for each), collected in a SharedCounts and written by it (shared.py);
the owners' spellings (respell_owners)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import F, Q
from django.db.models.lookups import GreaterThan

from ..metrics import RELAPSE_WINDOW
from ..models import Episode, Owner, OwnerCount, OwnerEpisode, OwnerTest, Status, TestCase
from ..sql import Table, code_point_ordered
from .fixes import owner_tally
from .shared import (
    COUNT_FIELDS,
    OWNER_SPAN_COLUMNS,
    SharedCounts,
    TestRollupRows,
    day_sql,
    with_rows_of_each_test,
)
from .status import EpisodeSpan, Interval, day_deltas
from .triaged import refresh_first_triage


@dataclass(frozen=True)
class OwnerSpan:
    """An episode as OwnerEpisode holds it, for one owner ("" for none)."""

    owner_key: str
    started_at: datetime
    ended_at: datetime | None
    relapse: bool
    start_known: bool = True
    next_started_at: datetime | None = None  # as EpisodeSpan's (the fix tally)

    @property
    def seconds(self) -> float | None:
        """As EpisodeSpan.seconds: none while open or when the start is unknown."""
        if self.ended_at is None or not self.start_known:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def row(self, test_case_id: uuid.UUID) -> tuple:
        """Its OwnerEpisode row, in OWNER_SPAN_COLUMNS order."""
        return (
            test_case_id,
            self.owner_key,
            self.started_at,
            self.ended_at,
            self.seconds,
            self.relapse,
            self.start_known,
            self.next_started_at,
        )

    def sort_key(self) -> tuple:
        # Two episodes of a test may start at one time (ties): open ones after closed ones.
        return (self.owner_key, self.started_at, self.ended_at is None, self.ended_at or self.started_at)


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
                e.next_started_at,
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
    if stored_spans != spans:
        shared.fix_tally.update(owner_tally(spans))
        shared.fix_tally.subtract(owner_tally(stored_spans))
    if stored_tests != owner_tests:
        rewritten.owner_tests[test_case_id] = [(test_case_id, *row) for row in owner_tests]
    if stored_spans != spans:
        rewritten.owner_spans[test_case_id] = [s.row(test_case_id) for s in spans]


def respell_owners(first_seen: dict) -> None:
    """Owner key -> (event time, spelling) of an event earlier than the owner's first
    seen: take it, one guarded UPDATE per owner in key order (LOCK ORDER: with the shared
    rows, before OwnerCount), guarded again in SQL, as a concurrent delivery may have
    moved it meanwhile. Spellings compare in code point order, as in the fold."""
    for key, (at, name) in sorted(first_seen.items()):
        Owner.objects.filter(key=key).filter(
            Q(first_seen_at__gt=at) | (Q(first_seen_at=at) & Q(GreaterThan(code_point_ordered("name"), name)))
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
    spans = Table(OwnerEpisode, list(OWNER_SPAN_COLUMNS))
    counts: Counter = Counter()
    rows = (
        TestCase.objects.order_by("id").values_list("id", "status", "quarantined").iterator(chunk_size=5000)
    )
    episodes = (
        Episode.objects.order_by("test_case_id", "started_at", "id")
        .values_list(
            "test_case_id", "started_at", "ended_at", "previous_end", "start_known", "next_started_at"
        )
        .iterator(chunk_size=5000)
    )
    for (test_id, status, quarantined), test_episodes in with_rows_of_each_test(rows, episodes, EpisodeSpan):
        keys = sorted(owners.get(test_id, [])) or [""]
        owner_tests = [(key, status, quarantined) for key in keys]
        test_spans = owner_spans(keys, test_episodes)
        for key, test_status, test_quarantined in owner_tests:
            tests.add(test_id, key, test_status, test_quarantined)
        for s in test_spans:
            spans.add(*s.row(test_id))
        counts.update(owner_counts(owner_tests, test_spans))
    tests.flush()
    spans.flush()
    refresh_first_triage()  # the triage history survives a rebuild; the episodes are new
    # The day deltas of each test's intervals, once per owner it is counted under.
    cast = "CAST(day AS date)" if connection.vendor == "postgresql" else "day"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO events_ownerdaydelta (owner_key, day, status, delta)
            SELECT owner_key, {cast}, status, SUM(delta) FROM (
                SELECT ot.owner_key, {day_sql("si.started_at")} AS day, si.status, 1 AS delta
                  FROM events_statusinterval si JOIN events_ownertest ot ON ot.test_case_id = si.test_case_id
                 UNION ALL
                SELECT ot.owner_key, {day_sql("si.ended_at")}, si.status, -1
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
