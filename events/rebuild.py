"""Rebuild and reprocess: replay stored deliveries into the projections.

The delivery log is the source of truth; every projected row can be rebuilt from it.
Triage data (state, assignee, note) is flakyboard's own and survives a rebuild.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet

from . import bulk, rollups
from .ingest import reprocess_delivery
from .models import (
    Delivery,
    Investigation,
    InvestigationFact,
    Monitor,
    MonitorEvent,
    MonitorState,
    Owner,
    QuarantineChange,
    Repository,
    StatusChange,
    TestCase,
    TestCaseOwner,
)

logger = logging.getLogger(__name__)

# Every projected table, children first.
PROJECTED_MODELS = (
    *rollups.ROLLUP_MODELS,
    InvestigationFact,
    Investigation,
    QuarantineChange,
    MonitorState,
    MonitorEvent,
    StatusChange,
    TestCaseOwner,
    TestCase,
    Monitor,
    Owner,
    Repository,
)


def rebuild_projections(*, progress: Callable[[int], None] | None = None, batch_size: int = 2000) -> Counter:
    """Delete every projected row and replay all deliveries. Returns outcome counts."""
    with transaction.atomic():
        triage = {
            row["id"]: row
            for row in TestCase.objects.exclude(
                triage_state=TestCase.Triage.NEW, assignee__isnull=True, triage_note=""
            ).values("id", "triage_state", "assignee_id", "triage_note")
        }
        _delete_projections()
        deliveries = Delivery.objects.order_by("received_at", "id")
        try:
            # The bulk path decides every guard in memory and writes each table once.
            with transaction.atomic():
                outcomes = bulk.project_deliveries(
                    deliveries.values_list(*bulk.DELIVERY_COLUMNS).iterator(chunk_size=batch_size),
                    progress=progress,
                    progress_every=batch_size,
                )
        except DatabaseError:
            # A row the database refuses (say, a value longer than its column): replay one
            # delivery at a time, which marks just that delivery failed, like the receiver.
            logger.exception("bulk rebuild failed; replaying one delivery at a time")
            outcomes = replay(deliveries, progress=progress, batch_size=batch_size, projections_empty=True)
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
        if connection.vendor == "postgresql":
            # Every projected table was just refilled: fresh planner statistics now, rather
            # than whenever autovacuum gets to them.
            with connection.cursor() as cursor:
                for model in PROJECTED_MODELS:
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return outcomes


def _delete_projections() -> None:
    if connection.vendor == "postgresql":
        # TRUNCATE skips the row-by-row cascade of DELETE (minutes on a large database). No
        # CASCADE: should another table ever point at these, this fails instead of emptying it.
        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in PROJECTED_MODELS)
        with connection.cursor() as cursor:
            # TRUNCATE refuses tables with pending deferred foreign-key checks (rows written
            # earlier in this transaction): run those checks now, then defer again (Django's
            # default, which the bulk writes rely on to write children before parents).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {tables}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        return
    for model in PROJECTED_MODELS:
        model.objects.all().delete()


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
