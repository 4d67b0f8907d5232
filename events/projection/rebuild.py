"""Rebuild every projection from the delivery log: `rebuild_projections` empties the
projected tables (triage, flakyboard's own data, survives) and projects every stored
delivery at once.

A rebuild starts from empty projections and sees every delivery, so nothing needs to be
loaded or locked: every event goes through the one fold (events.projection.fold) from
nothing, in the order received, and each table is written in bulk: COPY on PostgreSQL,
`bulk_create` elsewhere. History rows stream out in batches; only current state (one
entry per test, owner, monitor, (monitor, test) pair and investigation) is held in
memory. Repositories and owners are found or created through the same functions as
everywhere (events.projection.entities). Should the database refuse a batch, the rebuild
replays one delivery at a time (events.projection.replay). tests/events/test_bulk.py
proves a rebuild gives the rows that delivering each through the receiver gives.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from events import retention, rollups
from events.models import (
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
from events.sql import Table
from events.trunk import parsing, registry
from events.trunk.classify import classify

from . import apply, entities
from .fold import TEST_COLUMNS, Fold
from .replay import replay

logger = logging.getLogger(__name__)

# The delivery fields that parsing decides (as in replay.reprocess_delivery).
PARSED_FIELDS = ("event_type", "outcome", "error", "occurred_at")


# The columns `project_deliveries` reads, in its order.
DELIVERY_COLUMNS = (
    "id",
    "svix_id",
    "body",
    "raw_body",
    "received_at",
    "event_type",
    "outcome",
    "error",
    "occurred_at",
)


def project_deliveries(
    deliveries: Iterable[tuple],
    *,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 2000,
) -> Counter:
    """Project DELIVERY_COLUMNS rows, in the order given, into empty projections: every
    event through the one `Fold` (events.projection.fold), from nothing. Like
    `reprocess_delivery`, each delivery's outcome and parsed fields are recomputed, and
    written back only where they changed."""
    fold = Fold()
    resolve = entities.RepositoryResolver()
    history = {
        relation: Table(model, columns) for relation, (model, columns) in apply.HISTORY_COLUMNS.items()
    }
    outcomes: Counter = Counter()
    changed: list[Delivery] = []
    now = timezone.now()
    n = 0
    for n, (
        pk,
        svix_id,
        body,
        raw_body,
        received_at,
        stored_type,
        stored_outcome,
        stored_error,
        stored_at,
    ) in enumerate(deliveries, 1):
        exact = bytes(raw_body) if raw_body is not None else body  # as Delivery.raw_bytes
        event_type, payload, event, outcome, error = classify(exact, received_at=received_at)
        parsed = (
            event_type or stored_type,
            outcome,
            error,
            event.occurred_at if event else parsing.event_time_of(payload, received_at=received_at),
        )
        if parsed != (stored_type, stored_outcome, stored_error, stored_at):
            changed.append(
                Delivery(
                    pk=pk,
                    processed_at=now if event else None,
                    **dict(zip(PARSED_FIELDS, parsed, strict=True)),
                )
            )
        if event is not None:
            registry.fold_event(fold, event, pk, svix_id, resolve(event.test_case.repository))
            for relation, rows in fold.history.items():  # history streams out; state stays
                for row in rows:
                    history[relation].add(*row)
                rows.clear()
        outcomes[outcome] += 1
        if progress and n % progress_every == 0:
            progress(n)
    for table in history.values():
        table.flush()
    write_state(fold)
    rollups.rebuild_all()
    Delivery.objects.bulk_update(changed, [*PARSED_FIELDS, "processed_at"], batch_size=1000)
    return outcomes


def write_state(fold: Fold) -> None:
    """Write the folded state into empty tables (COPY on PostgreSQL)."""
    Monitor.objects.bulk_create(
        [Monitor(id=pk, type=monitor_type) for pk, monitor_type in fold.monitor_types.items()],
        batch_size=1000,
    )
    owner_ids = entities.upsert_owners(fold.owners, respell={})  # empty table: nothing to re-spell
    tests = Table(TestCase, [*apply.TEST_NAMES, *apply.UNTRIAGED])
    links = Table(TestCaseOwner, ["test_case", "owner"])
    for test_id, row in fold.tests.items():
        tests.add(*(row[column] for column in TEST_COLUMNS), *apply.UNTRIAGED.values())
        for key in dict.fromkeys(name.casefold() for name in row["codeowners"]):
            links.add(test_id, owner_ids[key])
    tests.flush()
    links.flush()
    states = Table(MonitorState, ["monitor", "test_case", "status", "since", "event_key"])
    for (monitor_id, test_id), state in fold.monitor_states.items():
        states.add(monitor_id, test_id, state["status"], state["since"], state["event_key"])
    states.flush()
    investigations = Table(Investigation, apply.INVESTIGATION_COLUMNS)
    facts = Table(InvestigationFact, apply.FACT_COLUMNS)
    for kept in fold.investigations.values():
        investigations.add(*(kept.row or {}).values())
        for fact in kept.facts:
            facts.add(*fact)
    investigations.flush()
    facts.flush()


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


def rebuild_projections(
    *, progress: Callable[[int], None] | None = None, batch_size: int = 2000, replayable_only: bool = False
) -> Counter:
    """Delete every projected row and replay all deliveries. Returns outcome counts.

    Raises retention.NotReplayable while some deliveries were pruned, unless
    `replayable_only`: then only the others are replayed (what the pruned ones projected
    is gone)."""
    retention.check_replayable(replayable_only=replayable_only)
    with transaction.atomic():
        triage = {
            row["id"]: row
            for row in TestCase.objects.exclude(
                triage_state=TestCase.Triage.NEW, assignee__isnull=True, triage_note=""
            ).values("id", "triage_state", "assignee_id", "triage_note")
        }
        _delete_projections()
        deliveries = Delivery.objects.filter(pruned_at__isnull=True).order_by("received_at", "id")
        try:
            # The bulk path decides every guard in memory and writes each table once.
            with transaction.atomic():
                outcomes = project_deliveries(
                    deliveries.values_list(*DELIVERY_COLUMNS).iterator(chunk_size=batch_size),
                    progress=progress,
                    progress_every=batch_size,
                )
        except DatabaseError:
            # A row the database refuses (say, a value longer than its column): replay one
            # delivery at a time, which marks just that delivery failed, like the receiver.
            logger.exception("bulk rebuild failed; replaying one delivery at a time")
            with apply.creating_tests_alone():  # the TRUNCATE's lock: nobody else creates tests
                outcomes = replay(
                    deliveries, progress=progress, batch_size=batch_size, projections_empty=True
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
