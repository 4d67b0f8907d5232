"""Replay stored deliveries one at a time: reprocess a delivery after an upgrade or a
fix (removing what it projected before, so it is idempotent), and `replay` a queryset of
them (the `reprocess_deliveries` command, the admin's reprocess action, and the
rebuild's fallback when the database refuses a bulk batch).

The delivery log is the source of truth; every projected row can be rebuilt from it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from events import rollups
from events.models import Delivery, Investigation, MonitorEvent, StatusChange, TestCase
from events.orm import related_model
from events.trunk import parsing, registry
from events.trunk.classify import classify

from ..retention import NotReplayable
from .apply import Pending, TestCreatedConcurrently, apply_now, error_text, stored_investigation_tests

# What replay() reports for the pruned deliveries it was given.
PRUNED = "pruned (not replayable)"

logger = logging.getLogger(__name__)


def replay(
    deliveries: QuerySet[Delivery],
    *,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 2000,
    projections_empty: bool = False,
) -> Counter:
    """Reprocess each delivery; the outcome of each is recomputed and stored. Pruned
    deliveries (events/retention.py) cannot be: counted apart, left as they are."""
    outcomes: Counter = Counter()
    if pruned := deliveries.filter(pruned_at__isnull=False).count():
        outcomes[PRUNED] = pruned
    replayable = deliveries.filter(pruned_at__isnull=True)
    for i, delivery in enumerate(replayable.iterator(chunk_size=batch_size), 1):
        outcomes[reprocess_delivery(delivery, projections_empty=projections_empty)] += 1
        if progress and i % batch_size == 0:
            progress(i)
    return outcomes


ATTEMPTS = 3


def _apply_or_record_failure(event: parsing.Event, delivery: Delivery, *, removed: rollups.Stale) -> None:
    """For reprocessing a stored delivery: apply inside a savepoint, so a failing
    projection rolls back alone and the delivery is marked failed with the error.

    `removed`: the rollups that removing what this delivery projected before made stale,
    refreshed with those the new projection changes, in one pass; alone when the
    projection fails.

    A concurrent change under the projection (TestCreatedConcurrently: a claimed test
    found locked, an investigation moved) is no failure of the delivery: the savepoint
    rolls back and it is applied again, up to ATTEMPTS times, as the receiver and the
    projector do."""
    try:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with transaction.atomic():
                    apply_now([Pending(event, delivery.pk, delivery.svix_id)], removed.copy())
                return
            except TestCreatedConcurrently:
                if attempt == ATTEMPTS:
                    raise
    except Exception as exc:  # noqa: BLE001 - any projection bug must not lose the delivery
        logger.exception("projection failed for delivery %s", delivery.svix_id)
        delivery.outcome = Delivery.Outcome.FAILED
        delivery.error = error_text(exc)
        delivery.processed_at = None
        Delivery.objects.filter(pk=delivery.pk).update(
            outcome=delivery.outcome, error=delivery.error, processed_at=None
        )
        removed.refresh()


def reprocess_delivery(delivery: Delivery, *, projections_empty: bool = False) -> str:
    """Parse and project a stored delivery again (after an upgrade or a fix).

    Removes what this delivery projected before, so reprocessing is idempotent; a
    rebuild, which starts from empty projections, skips that (`projections_empty`).
    The delivery row is written only when its outcome or parsed fields change, so
    `processed_at` stays the time it was first applied. Returns the new outcome.
    A pruned delivery has no body left to parse: NotReplayable.
    """
    if delivery.pruned_at is not None:
        raise NotReplayable(f"delivery {delivery.svix_id} was pruned: its body is gone")
    received_at = delivery.received_at
    event_type, payload, event, outcome, error = classify(delivery.raw_bytes, received_at=received_at)
    parsed = {
        "event_type": event_type or delivery.event_type,
        "outcome": outcome,
        "error": error,
        "occurred_at": event.occurred_at
        if event
        else parsing.event_time_of(payload, received_at=received_at),
    }
    with transaction.atomic():
        # The delivery row first (LOCK ORDER, events/rollups/shared.py): another
        # reprocessing of it (the admin's action beside the command) or the projector
        # applying it commits first, and what that projected is removed here; read its
        # outcome again after the wait.
        delivery.refresh_from_db(
            from_queryset=Delivery.objects.select_for_update(), fields=[*parsed, "processed_at"]
        )
        if not projections_empty:
            # Then the test rows it concerns, before any row of theirs is read or deleted
            # (LOCK ORDER 2 before 3): the triage service and the projection of the same
            # tests lock them first too, so neither deadlocks with this nor changes what
            # removing this delivery's projection reads (its verdicts, its outcomes).
            _lock_tests_of(delivery, event)
        removed = rollups.Stale() if projections_empty else remove_projection_of(delivery)
        changed = [name for name, value in parsed.items() if getattr(delivery, name) != value]
        if changed:
            for name, value in parsed.items():
                setattr(delivery, name, value)
            delivery.processed_at = timezone.now() if event else None
            delivery.save(update_fields=[*changed, "processed_at"])
        if event is not None:
            _apply_or_record_failure(event, delivery, removed=removed)
        else:
            removed.refresh()
    return delivery.outcome


def _lock_tests_of(delivery: Delivery, event: parsing.Event | None) -> None:
    """Lock (FOR NO KEY UPDATE, in key order) the stored tests this delivery projected
    rows of, the test its event names now and the test its investigation is stored under
    (the projection locks them again: the same locks, already held)."""
    test_ids = {event.test_case.id} if event is not None else set()
    for relation in registry.HISTORY_RELATIONS:
        model = related_model(Delivery, relation)
        test_ids.update(
            model._default_manager.filter(delivery=delivery).values_list("test_case_id", flat=True)
        )
    if event is not None:
        # The projection locks it too (also_lock): locked here, in one key order with
        # the others, rather than after them.
        test_ids.update(stored_investigation_tests([event]))
    if test_ids and connection.vendor == "postgresql":
        list(
            TestCase.objects.filter(pk__in=test_ids)
            .order_by("pk")
            .select_for_update(no_key=True)
            .values_list("pk", flat=True)
        )


def remove_projection_of(delivery: Delivery) -> rollups.Stale:
    """Delete the history rows this delivery projected. Returns the rollups that made
    stale (its status change's test, its monitor event's pair, its investigation's day),
    for the caller to refresh."""
    # History rows point at their delivery; deleting them lets it be applied again.
    # (Current state is guarded by event time, so re-applying is harmless.)
    stale = rollups.Stale(
        tests=set(StatusChange.objects.filter(delivery=delivery).values_list("test_case_id", flat=True)),
        pairs=set(MonitorEvent.objects.filter(delivery=delivery).values_list("monitor_id", "test_case_id")),
        days={
            rollups.day_of(at)
            for at in Investigation.objects.filter(delivery=delivery).values_list("occurred_at", flat=True)
        },
    )
    # A verdict on its investigation stops counting (until it is written again).
    judged = Investigation.objects.filter(delivery=delivery).values_list("pk", flat=True)
    rollups.merge_calibration(stale.calibration, rollups.verdict_tally(judged), -1)
    # And its outcome (OutcomeTally).
    stale.outcomes.subtract(
        rollups.counted_outcomes(
            Investigation.objects.filter(delivery=delivery).values_list("confidence", "auto_outcome")
        )
    )
    for relation in registry.HISTORY_RELATIONS:
        related_model(Delivery, relation)._default_manager.filter(delivery=delivery).delete()
    return stale
