"""The automatic outcome of each investigation (Investigation.auto_outcome: whether the
episode open at its event time ended within 14 days, events.metrics.auto_outcome),
kept as a column so that the investigations page counts outcomes per band from an index
instead of looking up each investigation's episode.

An investigation's outcome depends on its own time and its test's episodes: it is
recomputed for a test's investigations whenever the test's episodes were rewritten or
one of its investigations was written (Stale.refresh, after the tests' rows), and for
every investigation by the rebuild. Rows of one test only (LOCK ORDER 3)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime

from ..metrics import auto_outcome
from ..models import Episode, Investigation

CHUNK = 1000


def _outcomes_of(tests: Iterator[tuple], episodes: Iterator[tuple]) -> Iterator[tuple[uuid.UUID, str]]:
    """(investigation id, outcome) of the investigations whose stored outcome differs,
    from (test id, [(investigation id, occurred_at, stored outcome)]) and the episodes'
    (test id, started_at, ended_at), both ordered by test id (a merge join that skips
    the episodes of tests without investigations; UUIDs order alike in Python and in
    both databases)."""
    pending = next(episodes, None)
    for test_id, investigations in tests:
        while pending is not None and pending[0] < test_id:
            pending = next(episodes, None)
        spans = []
        while pending is not None and pending[0] == test_id:
            spans.append((pending[1], pending[2]))
            pending = next(episodes, None)
        for pk, occurred_at, stored in investigations:
            outcome = auto_outcome(occurred_at, spans)
            if outcome != stored:
                yield pk, outcome


def _by_test(rows: Iterable[tuple]) -> Iterator[tuple]:
    """(test id, [(investigation id, occurred_at, outcome)]) per test, from rows ordered
    by test."""
    current: uuid.UUID | None = None
    batch: list[tuple[uuid.UUID, datetime, str | None]] = []
    for test_id, pk, occurred_at, stored in rows:
        if test_id != current and batch:
            yield current, batch
            batch = []
        current = test_id
        batch.append((pk, occurred_at, stored))
    if batch:
        yield current, batch


def _write(changed: Iterable[tuple[uuid.UUID, str]]) -> None:
    rows = [Investigation(pk=pk, auto_outcome=outcome) for pk, outcome in changed]
    Investigation.objects.bulk_update(rows, ["auto_outcome"], batch_size=CHUNK)


def refresh_auto_outcomes(test_ids: Iterable[uuid.UUID]) -> None:
    """Recompute the outcome of these tests' investigations from their episodes as
    stored now; write those that changed. Two reads per thousand tests, one write per
    thousand changed investigations; nothing for no test."""
    ids = sorted(set(test_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        investigations = (
            Investigation.objects.filter(test_case_id__in=chunk)
            .order_by("test_case_id")
            .values_list("test_case_id", "pk", "occurred_at", "auto_outcome")
        )
        episodes = (
            Episode.objects.filter(test_case_id__in=chunk)
            .order_by("test_case_id")
            .values_list("test_case_id", "started_at", "ended_at")
        )
        _write(list(_outcomes_of(_by_test(investigations.iterator()), episodes.iterator())))


def rebuild_auto_outcomes() -> None:
    """Every investigation's outcome (a rebuild, after the episodes): one pass over the
    investigations and the episodes, both in test order."""
    investigations = (
        Investigation.objects.order_by("test_case_id")
        .values_list("test_case_id", "pk", "occurred_at", "auto_outcome")
        .iterator(chunk_size=5000)
    )
    episodes = (
        Episode.objects.order_by("test_case_id")
        .values_list("test_case_id", "started_at", "ended_at")
        .iterator(chunk_size=5000)
    )
    changed: list[tuple[uuid.UUID, str]] = []
    for row in _outcomes_of(_by_test(investigations), episodes):
        changed.append(row)
        if len(changed) >= CHUNK:
            _write(changed)
            changed = []
    _write(changed)
