"""The automatic outcome of each investigation (Investigation.auto_outcome: whether the
episode open at its event time ended within 14 days, events.metrics.auto_outcome), and
its tally over all history per confidence band (OutcomeTally), so that the
investigations page counts outcomes from a few rows instead of every investigation.

An investigation's outcome depends on its own time and its test's episodes: it is
recomputed for a test's investigations whenever the test's episodes were rewritten or
one of its investigations was written (Stale.refresh, after the tests' rows: LOCK
ORDER 3), and for every investigation by the rebuild. Each change of a stored outcome
(or of the band of a replaced investigation, or a removal) is a difference for the
tally, collected in Stale.outcomes and added with the shared rows (LOCK ORDER 4)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime

from ..metrics import auto_outcome, band_of
from ..models import Episode, Investigation, OutcomeTally
from .shared import add_to_counts

CHUNK = 1000

# An investigation as the refresh reads it: id, event time, confidence, stored outcome.
Row = tuple[uuid.UUID, datetime, float, str]


def _outcomes_of(tests: Iterator[tuple], episodes: Iterator[tuple]) -> Iterator[tuple[Row, str]]:
    """(row, outcome) of the investigations whose stored outcome differs, from (test id,
    [Row]) and the episodes' (test id, started_at, ended_at), both ordered by test id (a
    merge join that skips the episodes of tests without investigations; UUIDs order
    alike in Python and in both databases)."""
    pending = next(episodes, None)
    for test_id, investigations in tests:
        while pending is not None and pending[0] < test_id:
            pending = next(episodes, None)
        spans = []
        while pending is not None and pending[0] == test_id:
            spans.append((pending[1], pending[2]))
            pending = next(episodes, None)
        for row in investigations:
            outcome = auto_outcome(row[1], spans)
            if outcome != row[3]:
                yield row, outcome


def _by_test(rows: Iterable[tuple]) -> Iterator[tuple]:
    """(test id, [Row]) per test, from (test id, *Row) rows ordered by test."""
    current: uuid.UUID | None = None
    batch: list[Row] = []
    for test_id, *row in rows:
        if test_id != current and batch:
            yield current, batch
            batch = []
        current = test_id
        batch.append(tuple(row))
    if batch:
        yield current, batch


def _write(changed: list[tuple[Row, str]], tally: Counter) -> None:
    """Store the new outcomes; what they change in the tally goes to `tally`."""
    for (_pk, _at, confidence, stored), outcome in changed:
        if stored:
            tally[(band_of(confidence), stored)] -= 1
        tally[(band_of(confidence), outcome)] += 1
    rows = [Investigation(pk=row[0], auto_outcome=outcome) for row, outcome in changed]
    Investigation.objects.bulk_update(rows, ["auto_outcome"], batch_size=CHUNK)


def counted(investigations: Iterable[tuple[float, str]]) -> Counter:
    """What investigations ((confidence, stored outcome)) count for in the tally."""
    return Counter((band_of(confidence), outcome) for confidence, outcome in investigations if outcome)


def refresh_auto_outcomes(test_ids: Iterable[uuid.UUID], tally: Counter) -> None:
    """Recompute the outcome of these tests' investigations from their episodes as
    stored now; write those that changed, their difference to `tally`. Two reads per
    thousand tests, one write per thousand changed investigations; nothing for no test."""
    ids = sorted(set(test_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        investigations = (
            Investigation.objects.filter(test_case_id__in=chunk)
            .order_by("test_case_id")
            .values_list("test_case_id", "pk", "occurred_at", "confidence", "auto_outcome")
        )
        episodes = (
            Episode.objects.filter(test_case_id__in=chunk)
            .order_by("test_case_id")
            .values_list("test_case_id", "started_at", "ended_at")
        )
        _write(list(_outcomes_of(_by_test(investigations.iterator()), episodes.iterator())), tally)


def add_outcome_tally(deltas: Counter) -> None:
    """Add (band, outcome) -> investigations to OutcomeTally, rows in key order."""
    add_to_counts(
        OutcomeTally._meta.db_table,
        ("band", "outcome"),
        ("investigations",),
        [(band, outcome, n) for (band, outcome), n in sorted(deltas.items()) if n],
    )


def rebuild_auto_outcomes() -> None:
    """Every investigation's outcome (a rebuild, after the episodes), then the tally
    from them (on an empty table): one pass over the investigations and the episodes,
    both in test order, and one over the outcomes."""
    investigations = (
        Investigation.objects.order_by("test_case_id")
        .values_list("test_case_id", "pk", "occurred_at", "confidence", "auto_outcome")
        .iterator(chunk_size=5000)
    )
    episodes = (
        Episode.objects.order_by("test_case_id")
        .values_list("test_case_id", "started_at", "ended_at")
        .iterator(chunk_size=5000)
    )
    ignored: Counter = Counter()
    changed: list[tuple[Row, str]] = []
    for row in _outcomes_of(_by_test(investigations), episodes):
        changed.append(row)
        if len(changed) >= CHUNK:
            _write(changed, ignored)
            changed = []
    _write(changed, ignored)
    tally = counted(Investigation.objects.values_list("confidence", "auto_outcome").iterator(chunk_size=5000))
    OutcomeTally.objects.bulk_create(
        [
            OutcomeTally(band=band, outcome=outcome, investigations=n)
            for (band, outcome), n in sorted(tally.items())
        ]
    )
