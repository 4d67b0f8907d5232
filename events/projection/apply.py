"""Apply events to the stored projections: load the state they touch, fold, write the
difference. One path for the receiver (a batch of one delivery), the projector (a batch
of pending deliveries) and reprocessing; the rebuild (events.replay) folds every
delivery from nothing through the same `Fold` and writes with the same functions.

A batch is a handful of statements whatever its size: about fifteen for its own rows
(lock and load its tests, pairs and investigations; entity rows; one write per table),
then its rollups (events.rollups). The LOCK ORDER (events/rollups/) is kept: monitors;
the batch's existing test rows, locked while they are loaded, in key order; the claims on
its new tests (claim_new_tests); repositories;
owners; then new test rows, inserted in key order; rows of those tests; shared rollups.
"""

from __future__ import annotations

import functools
import traceback
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import OperationalError, connection

from events import rollups, sql
from events.models import (
    Investigation,
    InvestigationFact,
    MonitorEvent,
    MonitorState,
    QuarantineChange,
    StatusChange,
    TestCase,
    TestCaseOwner,
)
from events.trunk import parsing, reader, registry

from . import entities
from .fold import TEST_COLUMNS, Fold, KeptInvestigation

# The columns of each history relation's rows, in the order the fold adds them.
HISTORY_COLUMNS: dict[str, tuple[type, tuple[str, ...]]] = {
    "status_change": (
        StatusChange,
        (
            "delivery",
            "test_case",
            "occurred_at",
            "previous_status",
            "new_status",
            "monitor_id",
            "monitor_type",
            "monitor_status",
            "reason",
            "quarantined",
        ),
    ),
    "monitor_event": (
        MonitorEvent,
        ("delivery", "monitor", "test_case", "occurred_at", "status", "evidence", "quarantined"),
    ),
    "quarantine_change": (
        QuarantineChange,
        (
            "delivery",
            "test_case",
            "occurred_at",
            "actor_email",
            "actor_name",
            "previous_setting",
            "updated_setting",
            "reason",
            "quarantined",
        ),
    ),
}
FACT_COLUMNS = ("investigation", "position", "fact_type", "content", "confidence")
INVESTIGATION_COLUMNS = (
    "id",
    "delivery",
    "test_case",
    "occurred_at",
    "confidence",
    "markdown_summary",
    "failure_message",
    "quarantined",
)


class TestCreatedConcurrently(Exception):
    """Another transaction created one of the batch's new tests after this one looked:
    its row could not be locked when the batch loaded it. Nothing of the batch is
    committed (the caller's transaction rolls back); applying it again finds the row.
    On PostgreSQL the claims (claim_new_tests) keep this from happening, but for a claimed
    test found created and locked by another transaction (rare: retried)."""

    __test__ = False


class InvestigationMovedConcurrently(TestCreatedConcurrently):
    """Another transaction moved one of the batch's stored investigations to another test
    (a replacement naming it) between the look at its test and the lock: retried too."""


@dataclass(frozen=True)
class Pending:
    """One event to apply, with its delivery's id and svix id."""

    event: parsing.Event
    delivery_id: int
    svix_id: str


def apply_events(batch: Sequence[Pending], stale: rollups.Stale) -> None:
    """Project the events of one transaction; collect in `stale` what their rollups need
    (the caller refreshes it last: LOCK ORDER). Raises TestCreatedConcurrently (retry)."""
    if not batch:
        return
    events = [p.event for p in batch]
    monitors: dict[uuid.UUID, str] = {}
    for event in events:
        if isinstance(event, parsing.MonitorStatusChanged):
            monitors.setdefault(event.monitor_id, event.monitor_type)
    entities.insert_monitors(list(monitors.items()))
    fold = Fold()
    event_tests = {e.test_case.id for e in events}
    # A replacement may name another test than the stored investigation's: that test's
    # lock guards the investigation's rows and verdict too (LOCK ORDER 3), so it is
    # locked with the batch's tests, in one key order.
    investigated = stored_investigation_tests(events)
    stored_tests = load_tests(fold, sorted(event_tests), also_lock=investigated - event_tests)
    resolve = entities.RepositoryResolver()
    # In arrival order: a renamed repository's URL follows the latest sender.
    repositories = {e.test_case.repository: resolve(e.test_case.repository) for e in events}
    stored_states = load_monitor_states(fold, events)
    stored_investigations = load_investigations(fold, events, locked=event_tests | investigated)
    for p in batch:
        repository_id = repositories[p.event.test_case.repository]
        registry.fold_event(fold, p.event, p.delivery_id, p.svix_id, repository_id)
    owner_ids = entities.upsert_owners(fold.owners, respell=stale.owner_names)
    write_tests(fold, stored_tests, owner_ids, stale)
    write_history(fold)
    write_monitor_states(fold, stored_states)
    write_investigations(fold, stored_investigations, stale)
    for event in events:
        if isinstance(event, parsing.MonitorStatusChanged):
            stale.pairs.add((event.monitor_id, event.test_case.id))
        if isinstance(event, parsing.StatusChanged):
            stale.tests.add(event.test_case.id)
        if event.test_case.quarantined is not None:
            stale.quarantine_sent.add(event.test_case.id)


# ---------------------------------------------------------------- loading


def load_tests(
    fold: Fold, test_ids: list[uuid.UUID], also_lock: Iterable[uuid.UUID] = ()
) -> dict[uuid.UUID, dict[str, Any]]:
    """Lock and load the rows of those of these tests that exist, in key order (FOR NO
    KEY UPDATE on PostgreSQL; SQLite has one writer at a time), locking `also_lock` with
    them in the same order; then claim the new ones (claim_new_tests). Returns them as
    stored."""
    also_lock = set(also_lock)
    if also_lock and connection.vendor == "postgresql":
        list(
            TestCase.objects.filter(pk__in=[*test_ids, *also_lock])
            .order_by("id")
            .select_for_update(no_key=True)
            .values_list("id", flat=True)
        )
    rows = TestCase.objects.filter(pk__in=test_ids).order_by("id").values_list(*TEST_COLUMNS)
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(no_key=True)
    stored = {row[0]: dict(zip(TEST_COLUMNS, row, strict=True)) for row in rows}
    stored |= claim_new_tests([pk for pk in test_ids if pk not in stored])
    fold.tests.update({pk: dict(row) for pk, row in stored.items()})
    return stored


def claim_new_tests(test_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Claim the tests this transaction is about to create: a transaction-level advisory
    lock on each, in key order (PostgreSQL; SQLite has one writer at a time). Every
    transaction that creates a test claims it first, so two that would create the same
    test wait for each other here and the second then finds the first's row, which it
    locks and returns. Without the claim both inserted it and the second rolled back to
    retry (TestCreatedConcurrently): two projectors on one backlog, whose batches
    straddle the same tests, could do so on every try.

    After a claim the transaction never waits for a test's row (a holder of that row may
    wait for this claim): a row found locked is TestCreatedConcurrently (retry). Only
    new tests are claimed: a batch of known tests takes no advisory lock, and the shared
    lock table (max_locks_per_transaction) holds one entry per new test of a batch."""
    if not test_ids or connection.vendor != "postgresql" or _CREATING_ALONE.get():
        return {}
    # unnest yields the sorted array in order: the locks are taken in key order.
    keys = sorted({_claim_key(pk) for pk in test_ids})
    sql.fetch_all("SELECT count(pg_advisory_xact_lock(key)) FROM unnest(%s::bigint[]) AS key", [keys])
    rows = (
        TestCase.objects.filter(pk__in=test_ids)
        .order_by("id")
        .select_for_update(no_key=True, nowait=True)
        .values_list(*TEST_COLUMNS)
    )
    try:
        return {row[0]: dict(zip(TEST_COLUMNS, row, strict=True)) for row in rows}
    except OperationalError as exc:
        if sql.lock_not_available(exc):
            raise TestCreatedConcurrently(test_ids) from exc
        raise


_CREATING_ALONE: ContextVar[bool] = ContextVar("creating_tests_alone", default=False)


@contextmanager
def creating_tests_alone() -> Iterator[None]:
    """No claims inside: the caller holds the tests' table exclusively (the rebuild's
    TRUNCATE), so no other transaction can create a test, and claiming every test of a
    whole history in one transaction would fill PostgreSQL's shared lock table (one
    entry per claim until the commit; "out of shared memory" for every session)."""
    token = _CREATING_ALONE.set(True)
    try:
        yield
    finally:
        _CREATING_ALONE.reset(token)


def _claim_key(test_id: uuid.UUID) -> int:
    """The test's advisory lock key: its id's two halves XORed, as a signed 64-bit integer.
    Two tests that share a key only wait for each other."""
    key = int.from_bytes(test_id.bytes[:8], "big") ^ int.from_bytes(test_id.bytes[8:], "big")
    return key - (1 << 64) if key >= 1 << 63 else key


def load_monitor_states(fold: Fold, events: Iterable[parsing.Event]) -> dict[tuple, dict[str, Any]]:
    pairs = {(e.monitor_id, e.test_case.id) for e in events if isinstance(e, parsing.MonitorStatusChanged)}
    if not pairs:
        return {}
    rows = MonitorState.objects.filter(
        monitor_id__in={m for m, _ in pairs}, test_case_id__in={t for _, t in pairs}
    ).values_list("monitor_id", "test_case_id", "status", "since", "event_key")
    stored = {
        (m, t): {"status": status, "since": since, "event_key": key}
        for m, t, status, since, key in rows
        if (m, t) in pairs
    }
    fold.monitor_states.update({pair: dict(state) for pair, state in stored.items()})
    return stored


def stored_investigation_tests(events: Iterable[parsing.Event]) -> set[uuid.UUID]:
    """The tests the events' investigations are stored under now (none for new ones)."""
    ids = {e.investigation_id for e in events if isinstance(e, parsing.InvestigationCompleted)}
    if not ids:
        return set()
    return set(Investigation.objects.filter(pk__in=ids).values_list("test_case_id", flat=True))


def load_investigations(
    fold: Fold, events: Iterable[parsing.Event], *, locked: set[uuid.UUID]
) -> dict[uuid.UUID, KeptInvestigation]:
    """The events' stored investigations, whose tests must be among the `locked` ones
    (else another transaction moved one meanwhile: InvestigationMovedConcurrently)."""
    ids = {e.investigation_id for e in events if isinstance(e, parsing.InvestigationCompleted)}
    if not ids:
        return {}
    stored = {}
    for pk, svix_id, occurred_at, test_id in Investigation.objects.filter(pk__in=ids).values_list(
        "id", "delivery__svix_id", "occurred_at", "test_case_id"
    ):
        if test_id not in locked:
            raise InvestigationMovedConcurrently([pk])
        stored[pk] = KeptInvestigation(svix_id, occurred_at)
    fold.investigations.update(stored)
    return stored


# ---------------------------------------------------------------- writing the difference


def write_tests(
    fold: Fold, stored: dict[uuid.UUID, dict[str, Any]], owner_ids: dict[str, int], stale: rollups.Stale
) -> None:
    """Insert the new tests (key order, one statement), update the changed ones, and
    rewrite the owner links of those whose owners changed. A test whose first event time
    moved, or whose owners changed, has stale rollups (its first status interval starts
    at its first event; its owner rollups follow its links)."""
    new = sorted(pk for pk in fold.tests if pk not in stored)
    if new:
        inserted = sql.fetch_all(
            sql.insert_sql(
                TestCase, (*TEST_NAMES, *UNTRIAGED), rows=len(new), skip_existing=True, returning="id"
            ),
            [v for pk in new for v in sql.adapt(TestCase, _named(fold.tests[pk]) | UNTRIAGED)],
        )
        if len(inserted) != len(new):
            raise TestCreatedConcurrently(sorted(set(new) - {uuid.UUID(str(row[0])) for row in inserted}))
    changed = [pk for pk, row in stored.items() if fold.tests[pk] != row]
    sql.update_many(TestCase, TEST_NAMES[1:], [tuple(_named(fold.tests[pk]).values()) for pk in changed])
    relinked = [pk for pk in changed if fold.tests[pk]["codeowners"] != stored[pk]["codeowners"]]
    if relinked:
        TestCaseOwner.objects.filter(test_case_id__in=relinked).delete()
    links = [
        (pk, owner_ids[key])
        for pk in [*new, *relinked]
        for key in dict.fromkeys(name.casefold() for name in fold.tests[pk]["codeowners"])
    ]
    sql.insert_many(TestCaseOwner, ("test_case", "owner"), links, skip_existing=True)
    stale.tests.update(new, relinked)
    stale.tests.update(
        pk for pk in changed if fold.tests[pk]["first_event_at"] != stored[pk]["first_event_at"]
    )


# TestCase field names of TEST_COLUMNS (attnames), for the sql helpers.
TEST_NAMES = tuple(name.removesuffix("_id") if name == "repository_id" else name for name in TEST_COLUMNS)


# A new test's triage (flakyboard's own data: never written by the projection after).
UNTRIAGED = {"triage_state": TestCase.Triage.NEW, "assignee": None, "triage_note": ""}


def _named(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[column] for name, column in zip(TEST_NAMES, TEST_COLUMNS, strict=True)}


# Rows per multi-row upsert: parameters stay well under SQLite's 32,766.
UPSERT_ROWS = 500


def write_history(fold: Fold) -> None:
    """Insert the batch's history rows, one statement per relation."""
    for relation, rows in fold.history.items():
        model, columns = HISTORY_COLUMNS[relation]
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            sql.insert_many(model, columns, rows[start : start + ROWS_PER_STATEMENT])
        rows.clear()


# Bound parameters per statement stay well under the databases' limits (SQLite 32,766).
ROWS_PER_STATEMENT = 1000


def write_monitor_states(fold: Fold, stored: dict[tuple, dict[str, Any]]) -> None:
    """Upsert the pairs whose state changed."""
    changed = sorted(pair for pair, state in fold.monitor_states.items() if stored.get(pair) != state)
    for start in range(0, len(changed), UPSERT_ROWS):
        chunk = changed[start : start + UPSERT_ROWS]
        sql.execute(
            _upsert_monitor_states_sql(len(chunk)),
            [
                v
                for m, t in chunk
                for v in sql.adapt(
                    MonitorState, {"monitor": m, "test_case": t, **fold.monitor_states[(m, t)]}
                )
            ],
        )


@functools.cache
def _upsert_monitor_states_sql(rows: int) -> str:
    """INSERT the (monitor, test) state, or take it over (the fold decided: the pair's
    test row is locked, so nobody else changed it meanwhile)."""
    col = sql.column
    taken = ", ".join(
        f"{col(MonitorState, n)} = excluded.{col(MonitorState, n)}" for n in ("status", "since", "event_key")
    )
    return (
        sql.insert_sql(MonitorState, ("monitor", "test_case", "status", "since", "event_key"), rows=rows)
        + f" ON CONFLICT ({col(MonitorState, 'monitor')}, {col(MonitorState, 'test_case')})"
        + f" DO UPDATE SET {taken}"
    )


def write_investigations(
    fold: Fold, stored: dict[uuid.UUID, KeptInvestigation], stale: rollups.Stale
) -> None:
    """Insert the new investigations, replace those a smaller svix id took over (facts
    included). Their UTC days, and a replaced copy's old day, have stale rollups."""
    written = {pk: kept for pk, kept in fold.investigations.items() if kept.row is not None}
    replaced = sorted(pk for pk in written if pk in stored)
    if replaced:
        # Their verdicts counted their old confidences (the calibration tally), and their
        # outcomes their old bands (recomputed, with their new rows, by the refresh).
        rollups.merge_calibration(stale.calibration, rollups.verdict_tally(replaced), -1)
        stale.outcomes.subtract(
            rollups.counted_outcomes(
                Investigation.objects.filter(pk__in=replaced).values_list("confidence", "auto_outcome")
            )
        )
        # Updated in place, not deleted: rows of flakyboard's own may point at it.
        InvestigationFact.objects.filter(investigation_id__in=replaced).delete()
        for pk in replaced:
            row = written[pk].row or {}
            Investigation.objects.filter(pk=pk).update(
                **{k: v for k, v in row.items() if k != "id"}, auto_outcome=""
            )
        stale.days.update(rollups.day_of(stored[pk].occurred_at) for pk in replaced)
    sql.insert_many(
        Investigation,
        INVESTIGATION_COLUMNS,
        [tuple(kept.row.values()) for pk, kept in written.items() if pk not in stored and kept.row],
    )
    facts = [fact for kept in written.values() for fact in kept.facts]
    for start in range(0, len(facts), ROWS_PER_STATEMENT):
        sql.insert_many(InvestigationFact, FACT_COLUMNS, facts[start : start + ROWS_PER_STATEMENT])
    stale.days.update(rollups.day_of(kept.occurred_at) for kept in written.values())
    stale.investigated.update(kept.row["test_case_id"] for kept in written.values() if kept.row)
    if written:
        rollups.merge_calibration(stale.calibration, rollups.verdict_tally(written))


def apply_now(batch: list[Pending], stale: rollups.Stale | None = None) -> None:
    """Apply events and refresh their rollups (after `stale`'s own, if given) in the
    caller's transaction."""
    stale = stale if stale is not None else rollups.Stale()
    apply_events(batch, stale)
    stale.refresh()


def error_text(exc: BaseException) -> str:
    """The exception as stored: storable (it may quote a payload's text), at most 10,000 characters."""
    return reader.storable_text("".join(traceback.format_exception_only(exc)).strip()[:10_000])
