"""Deferred projection: the receiver stores, the projector applies.

With FLAKYBOARD_DEFERRED_PROJECTION on, the receiver commits each verified delivery as
`pending` in one statement and answers: close to the floor cost of the stack (one
INSERT), so a backlog that Svix re-delivers all at once after an outage is acknowledged
at several times the rate at which it could be applied one request at a time (see
bench/README.md). `manage.py project_pending --follow` then applies the pending
deliveries here, oldest first, in batches: one transaction per batch, and each test's
and (monitor, test) pair's rollups recomputed once per batch rather than once per event.

Correctness does not depend on the batching. The projections are order-independent
(guarded by event time), so applying a batch in arrival order gives the state that
applying each delivery in its own request would have. A delivery stays `pending` until
the transaction that applied it commits, so a crash or a stopped projector loses
nothing: the next run takes it again. Several projectors may run (SKIP LOCKED gives
each its own deliveries); one keeps up with the receiver on 2 cores.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from events import rollups
from events.models import Delivery, ProjectorTotals
from events.trunk.classify import classify

from .apply import Pending, TestCreatedConcurrently, apply_events, error_text

logger = logging.getLogger(__name__)

PENDING = Delivery.Outcome.PENDING

# Deliveries per transaction. Larger batches fold more events of one test into one row
# write and one rollup refresh: 200 applied about 580 a second, 1,000 about 970
# (bench/projector.py, bench/README.md); a batch of 1,000 commits in about a second.
BATCH_SIZE = 1000


class _ApplyFailed(Exception):
    """A delivery of the batch failed to apply (its cause is chained): the batch rolled back."""


def project_pending(*, batch_size: int = BATCH_SIZE, attempts: int = 3) -> int:
    """Apply up to `batch_size` pending deliveries, oldest first. Returns how many were
    taken (0: none left, or all locked by another projector).

    A delivery that fails to apply is marked failed with its error (as the receiver does
    in inline mode), for `reprocess_deliveries --status failed`; the rest of its batch
    still lands, applied one at a time. Raises OperationalError when the database is
    unavailable or a deadlock aborted the batch: nothing is lost, the caller retries.
    Counted in ProjectorTotals (batches, deliveries, errors), which `/metrics` reads."""
    try:
        taken = _project_pending(batch_size, attempts)
    except Exception:
        # Unless the error closed the connection (the database down or cut off): opening
        # one only to count would add a connect timeout to each of the caller's retries.
        # An outage shows in the backlog's age (/metrics, /readyz) instead.
        if connection.connection is not None:
            count_work(errors=1)
        raise
    if taken:
        count_work(batches=1, deliveries=taken)
    return taken


def count_work(*, batches: int = 0, deliveries: int = 0, errors: int = 0) -> None:
    """Add to every projector's totals (ProjectorTotals: one row, one UPDATE in
    autocommit): at once, or once a caller's transaction commits, so that the row is
    never held with a batch's locks (the LOCK ORDER of events/projection/apply.py).
    Best effort: a database that fails loses the count, not the batch."""
    added = {
        "batches": F("batches") + batches,
        "deliveries": F("deliveries") + deliveries,
        "errors": F("errors") + errors,
    }
    totals = ProjectorTotals.objects.filter(pk=ProjectorTotals.SINGLETON)

    def add() -> None:
        try:
            # A savepoint if run inside a transaction after all (tests run callbacks in theirs).
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                if not totals.update(**added):  # the first batch ever
                    ProjectorTotals.objects.get_or_create(pk=ProjectorTotals.SINGLETON)
                    totals.update(**added)
        except (DatabaseError, InterfaceError):
            logger.warning("projector totals not counted: the database failed", exc_info=True)

    transaction.on_commit(add)


def _project_pending(batch_size: int, attempts: int) -> int:
    try:
        return _retried(batch_size, attempts)
    except _ApplyFailed:
        count_work(errors=1)
    taken = 0
    for _ in range(batch_size):
        try:
            applied = _retried(1, attempts)
        except _ApplyFailed as exc:
            applied = _mark_failed(exc.args[0], exc.__cause__)
        if not applied:
            break
        taken += applied
    return taken


def _retried(limit: int, attempts: int) -> int:
    """_apply_batch, again when another transaction changed what it loaded meanwhile
    (TestCreatedConcurrently: the batch rolled back; the next attempt finds the change)."""
    for attempt in range(1, attempts + 1):
        try:
            return _apply_batch(limit)
        except TestCreatedConcurrently:
            if attempt == attempts:
                raise
    return 0


def _apply_batch(limit: int) -> int:
    with transaction.atomic():
        batch = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(outcome=PENDING)
            .order_by("id")
            .only("id", "svix_id", "body", "raw_body", "received_at")[:limit]
        )
        pending = []
        for delivery in batch:
            _, _, event, outcome, error = classify(delivery.raw_bytes, received_at=delivery.received_at)
            if event is None:  # parsed at receipt; only a changed parser can get here
                Delivery.objects.filter(pk=delivery.pk).update(outcome=outcome, error=error)
                continue
            pending.append(Pending(event, delivery.pk, delivery.svix_id))
        # One fold for the batch (events.projection.apply), in the LOCK ORDER; then the rollups of
        # every test, pair and day it touched, once each.
        # Live: the episodes this starts are alerts (events/alerts.py), if still recent.
        stale = rollups.Stale(alerts_at=timezone.now())
        with _failure_of(batch[0] if len(batch) == 1 else None):
            apply_events(pending, stale)
            stale.refresh()
        Delivery.objects.filter(pk__in=[p.delivery_id for p in pending]).update(
            outcome=Delivery.Outcome.PROCESSED, processed_at=timezone.now()
        )
    return len(batch)


@contextmanager
def _failure_of(delivery: Delivery | None):
    """Turn a projection bug into _ApplyFailed(delivery); database outages pass through."""
    try:
        yield
    except (OperationalError, InterfaceError, TestCreatedConcurrently):
        raise
    except Exception as exc:
        raise _ApplyFailed(delivery) from exc


def _mark_failed(delivery: Delivery | None, failure: BaseException | None) -> int:
    if delivery is None:  # cannot happen: a batch of one names its delivery
        return 0
    logger.error("projection failed for delivery %s", delivery.svix_id, exc_info=failure)
    Delivery.objects.filter(pk=delivery.pk, outcome=PENDING).update(
        outcome=Delivery.Outcome.FAILED, error=error_text(failure) if failure else "", processed_at=None
    )
    return 1


def pending_count() -> int:
    return Delivery.objects.filter(outcome=PENDING).count()


# While a burst lasts, the projector works this share of the time.
BURST_DUTY_CYCLE = 0.25
# Deliveries a second arriving while a batch ran that make a burst. Trunk's own traffic
# is a few a minute; Svix re-delivering a backlog sends hundreds a second.
BURST_RATE = 50.0


def pause_after_batch(*, applied: int, arrived: int, batch_seconds: float) -> float:
    """Seconds the projector waits before its next batch.

    During a burst (Svix re-delivering a backlog after an outage) the projector yields
    most of the CPU to the receiver: it is the receiver's answers that Svix times (15 s,
    then retries, adding to the load), while applying can lag and catch up. So while
    deliveries arrive at a burst's rate, or faster than it applies them, it works a
    quarter of the time, which still applies a few hundred a second, and flat out again
    once they slow down. (When it applied 130 a second, "faster than it applies them"
    was the whole rule; at 1,000 a second it kept up with a burst and took the CPU from
    the receiver: bench/README.md.)"""
    burst = batch_seconds > 0 and arrived / batch_seconds >= BURST_RATE
    if not (burst or arrived > applied):
        return 0.0
    return batch_seconds * (1 - BURST_DUTY_CYCLE) / BURST_DUTY_CYCLE
