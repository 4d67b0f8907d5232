"""Rebuild and reprocess: replay stored deliveries into the projections.

The delivery log is the source of truth; every projected row can be rebuilt from it.
Triage data (state, assignee, note) is flakyboard's own and survives a rebuild.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from django.db import transaction
from django.db.models import QuerySet

from .ingest import reprocess_delivery
from .models import Delivery, Monitor, Owner, Repository, TestCase


def rebuild_projections(*, progress: Callable[[int], None] | None = None, batch_size: int = 2000) -> Counter:
    """Delete every projected row and replay all deliveries. Returns outcome counts."""
    with transaction.atomic():
        triage = {
            row["id"]: row
            for row in TestCase.objects.exclude(
                triage_state=TestCase.Triage.NEW, assignee__isnull=True, triage_note=""
            ).values("id", "triage_state", "assignee_id", "triage_note")
        }
        # Deleting these cascades to every history row and link.
        TestCase.objects.all().delete()
        Monitor.objects.all().delete()
        Owner.objects.all().delete()
        Repository.objects.all().delete()
        outcomes = replay(
            Delivery.objects.order_by("received_at", "id"),
            progress=progress,
            batch_size=batch_size,
            projections_empty=True,
        )
        replayed = set(TestCase.objects.filter(pk__in=triage).values_list("pk", flat=True))
        restored = [
            TestCase(
                id=pk,
                triage_state=row["triage_state"],
                assignee_id=row["assignee_id"],
                triage_note=row["triage_note"],
            )
            for pk, row in triage.items()
            if pk in replayed
        ]
        TestCase.objects.bulk_update(restored, ["triage_state", "assignee_id", "triage_note"])
    return outcomes


def replay(
    deliveries: QuerySet[Delivery],
    *,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 2000,
    projections_empty: bool = False,
) -> Counter:
    """Reprocess each delivery; the outcome of each is recomputed and stored."""
    outcomes: Counter = Counter()
    for i, delivery in enumerate(deliveries.iterator(chunk_size=batch_size), 1):
        outcomes[reprocess_delivery(delivery, projections_empty=projections_empty)] += 1
        if progress and i % batch_size == 0:
            progress(i)
    return outcomes
