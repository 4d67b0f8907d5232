"""Project every stored delivery at once: the fast path of `rebuild_projections`.

A rebuild starts from empty projections and sees every delivery, so nothing needs to be
loaded or locked: every event goes through the one fold (events.fold) from nothing, in
the order received, and each table is written in bulk: COPY on PostgreSQL, `bulk_create`
elsewhere. History rows stream out in batches; only current state (one entry per test,
owner, monitor, (monitor, test) pair and investigation) is held in memory. Repositories
and owners are found or created through the same functions as everywhere
(events.entities). tests/events/test_bulk.py proves a rebuild gives the rows that
delivering each through the receiver gives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from django.utils import timezone

from . import apply, entities, parsing, registry, rollups
from .fold import TEST_COLUMNS, Fold
from .ingest import classify
from .models import (
    Delivery,
    Investigation,
    InvestigationFact,
    Monitor,
    MonitorState,
    TestCase,
    TestCaseOwner,
)
from .sql import Table

# The delivery fields that parsing decides (as in ingest.reprocess_delivery).
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
    event through the one `Fold` (events.fold), from nothing. Like
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
