"""Project every stored delivery at once: the fast path of `rebuild_projections`.

The receiver projects one delivery at a time and lets the database decide each guard
(projections.py), about ten statements a delivery: right for a live stream, far too slow
to replay a million deliveries (about 2 hours at 130/s). A rebuild starts from empty
projections and sees every delivery, so it can decide the same guards in memory, in the
same order (as received), and write each table in bulk: COPY on PostgreSQL,
`bulk_create` elsewhere. History rows stream out in batches; only current state (one
entry per test, owner, repository, monitor and (monitor, test) pair) is held in memory.

The rules are those of projections.py, applied to dictionaries instead of rows; the two
paths are proven equal on generated event sequences and on the demo history
(tests/events/test_order_independence.py, tests/events/test_bulk.py). Change a rule in
both places.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, models
from django.utils import timezone

from . import parsing, rollups
from .ingest import classify
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
from .projections import _repository_name, test_case_fields

# Rows buffered per table before they are written. Bounds memory on a large rebuild.
BATCH_ROWS = 5000

# The delivery fields that parsing decides (as in ingest.reprocess_delivery).
PARSED_FIELDS = ("event_type", "outcome", "error", "occurred_at")

# (event time, svix id): the order in which events win a guard (see projections._newer).
Key = tuple[datetime, str]


class Table:
    """Rows for one model as tuples of column values, written in batches."""

    def __init__(self, model: type[models.Model], attnames: Sequence[str]):
        self.model = model
        self.fields = [model._meta.get_field(name) for name in attnames]
        self.attnames = [f.attname for f in self.fields]
        self.rows: list[tuple] = []
        self.written = 0

    def add(self, *values: Any) -> None:
        self.rows.append(values)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            insert_rows(self.model, self.fields, self.rows)
            self.written += len(self.rows)
            self.rows = []


def insert_rows(model: type[models.Model], fields: Sequence[models.Field], rows: Sequence[tuple]) -> None:
    """Insert plain tuples (one value per field). PostgreSQL: COPY, about 10x faster than
    INSERT for large batches; other databases: `bulk_create` (portable value adaptation)."""
    if connection.vendor != "postgresql":
        attnames = [f.attname for f in fields]
        model.objects.bulk_create(
            [model(**dict(zip(attnames, row, strict=True))) for row in rows], batch_size=500
        )
        return
    json_positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            if json_positions:
                row = list(row)
                for i in json_positions:
                    row[i] = fields[i].get_db_prep_save(row[i], connection)
            copy.write_row(row)


# ---------------------------------------------------------------- in-memory state


@dataclass
class _Repository:
    trunk_id: uuid.UUID | None
    html_url: str
    name: str
    pk: int | None = None


@dataclass
class _Test:
    row: dict[str, Any]  # TestCase field values (attnames)
    attributes: Key
    status: Key | None = None
    guards: dict[str, Key] = field(default_factory=dict)  # "quarantined", "classname"
    repository: _Repository | None = None


@dataclass
class _Investigation:
    svix_id: str
    row: dict[str, Any]
    facts: list[tuple]


class BulkProjection:
    """Fold events, in the order they were received, into projected state."""

    def __init__(self) -> None:
        self.repositories: list[_Repository] = []
        self.repository_by_trunk_id: dict[uuid.UUID, _Repository] = {}
        self.owners: dict[str, tuple[datetime, str]] = {}  # key -> (first seen, spelling)
        self.tests: dict[uuid.UUID, _Test] = {}
        self.monitor_types: dict[uuid.UUID, str] = {}
        self.monitor_states: dict[tuple[uuid.UUID, uuid.UUID], tuple[Key, str]] = {}
        self.investigations: dict[uuid.UUID, _Investigation] = {}
        self.status_changes = Table(
            StatusChange,
            [
                "delivery",
                "test_case",
                "occurred_at",
                "previous_status",
                "new_status",
                "monitor_id",
                "monitor_type",
                "monitor_status",
                "reason",
            ],
        )
        self.monitor_events = Table(
            MonitorEvent, ["delivery", "monitor", "test_case", "occurred_at", "status", "evidence"]
        )
        self.quarantine_changes = Table(
            QuarantineChange,
            [
                "delivery",
                "test_case",
                "occurred_at",
                "actor_email",
                "actor_name",
                "previous_setting",
                "updated_setting",
                "reason",
            ],
        )

    # ------------------------------------------------------------ per event

    def apply(self, event: parsing.Event, delivery_id: int, svix_id: str) -> None:
        key: Key = (event.occurred_at, svix_id)
        self._test_case(event.test_case, key)
        test_id = event.test_case.id
        at = event.occurred_at
        if isinstance(event, parsing.StatusChanged):
            self.status_changes.add(
                delivery_id,
                test_id,
                at,
                event.previous_status,
                event.new_status,
                event.monitor_id,
                event.monitor_type,
                event.monitor_status,
                event.reason,
            )
            test = self.tests[test_id]
            if test.status is None or key > test.status:
                test.status = key
                test.row |= {"status": event.new_status, "status_since": at, "status_event_key": svix_id}
        elif isinstance(event, parsing.MonitorStatusChanged):
            self.monitor_types.setdefault(event.monitor_id, event.monitor_type)  # first arrival names it
            self.monitor_events.add(
                delivery_id, event.monitor_id, test_id, at, event.monitor_status, event.evidence
            )
            pair = (event.monitor_id, test_id)
            current = self.monitor_states.get(pair)
            if current is None or key > current[0]:
                self.monitor_states[pair] = (key, event.monitor_status)
        elif isinstance(event, parsing.InvestigationCompleted):
            kept = self.investigations.get(event.investigation_id)
            # Two deliveries of one investigation: the smaller svix id is kept.
            if kept is None or svix_id < kept.svix_id:
                self.investigations[event.investigation_id] = _Investigation(
                    svix_id,
                    {
                        "id": event.investigation_id,
                        "delivery_id": delivery_id,
                        "test_case_id": test_id,
                        "occurred_at": at,
                        "confidence": event.confidence,
                        "markdown_summary": event.markdown_summary,
                        "failure_message": event.failure_message,
                    },
                    [
                        (event.investigation_id, i, fact.fact_type, fact.content, fact.confidence)
                        for i, fact in enumerate(event.facts)
                    ],
                )
        elif isinstance(event, parsing.QuarantineSettingChanged):
            self.quarantine_changes.add(
                delivery_id,
                test_id,
                at,
                event.actor_email,
                event.actor_name,
                event.previous_setting,
                event.updated_setting,
                event.reason,
            )
        else:  # pragma: no cover - parse_event returns only the types above
            raise TypeError(f"no bulk projection for {type(event).__name__}")

    def _repository(self, ref: parsing.RepositoryRef | None) -> _Repository | None:
        """projections.upsert_repository, in memory: by Trunk id, else by URL."""
        if ref is None:
            return None
        if ref.trunk_id is not None:
            repo = self.repository_by_trunk_id.get(ref.trunk_id)
            if repo is None and ref.html_url:
                repo = next(
                    (r for r in self.repositories if r.html_url == ref.html_url and r.trunk_id is None), None
                )
                if repo is not None:
                    repo.trunk_id = ref.trunk_id
                    self.repository_by_trunk_id[ref.trunk_id] = repo
            if repo is None:
                repo = self._new_repository(ref.trunk_id, ref.html_url)
            elif ref.html_url and repo.html_url != ref.html_url:
                repo.html_url, repo.name = ref.html_url, _repository_name(ref.html_url)
            return repo
        repo = next((r for r in self.repositories if r.html_url == ref.html_url), None)
        return repo or self._new_repository(None, ref.html_url)

    def _new_repository(self, trunk_id: uuid.UUID | None, html_url: str) -> _Repository:
        repo = _Repository(trunk_id, html_url, _repository_name(html_url))
        self.repositories.append(repo)
        if trunk_id is not None:
            self.repository_by_trunk_id[trunk_id] = repo
        return repo

    def _owners(self, codeowners: tuple[str, ...], at: datetime) -> None:
        """Owners are shown as first seen: the earliest (event time, spelling) wins."""
        for name in codeowners:
            key = name.casefold()
            seen = self.owners.get(key)
            if seen is None or (at, name) < seen:
                self.owners[key] = (at, name)

    def _test_case(self, ref: parsing.TestCaseRef, key: Key) -> None:
        """projections.upsert_test_case, in memory."""
        at = key[0]
        repository = self._repository(ref.repository)
        self._owners(ref.codeowners, at)
        attributes, separately_guarded = test_case_fields(ref)
        test = self.tests.get(ref.id)
        if test is None:
            test = self.tests[ref.id] = _Test(
                row={"id": ref.id, "first_event_at": at, "last_event_at": at}, attributes=key
            )
        elif key > test.attributes:
            test.attributes = key
            test.row["first_event_at"] = min(test.row["first_event_at"], at)
            test.row["last_event_at"] = at
        else:
            # A late, older event: history only, plus what older events may still decide.
            test.row["first_event_at"] = min(test.row["first_event_at"], at)
            test.row["last_event_at"] = max(test.row["last_event_at"], at)
            for name, value in separately_guarded.items():
                if name not in test.guards or key > test.guards[name]:
                    test.guards[name] = key
                    test.row[name] = value
            return
        # The newest event so far: its snapshot wins, separately guarded fields included.
        test.row |= attributes
        test.repository = repository
        for name, value in separately_guarded.items():
            test.guards[name] = key
            test.row[name] = value

    # ------------------------------------------------------------ writing

    def write(self) -> None:
        """Write current state (history rows have been streaming out meanwhile)."""
        for table in (self.status_changes, self.monitor_events, self.quarantine_changes):
            table.flush()
        repositories = Repository.objects.bulk_create(
            [Repository(trunk_id=r.trunk_id, html_url=r.html_url, name=r.name) for r in self.repositories]
        )
        for repo, created in zip(self.repositories, repositories, strict=True):
            repo.pk = created.pk
        owners = Owner.objects.bulk_create(
            [Owner(key=key, name=name, first_seen_at=at) for key, (at, name) in self.owners.items()],
            batch_size=1000,
        )
        owner_pk = {owner.key: owner.pk for owner in owners}
        Monitor.objects.bulk_create(
            [Monitor(id=pk, type=monitor_type) for pk, monitor_type in self.monitor_types.items()],
            batch_size=1000,
        )

        test_columns = [
            "id",
            "repository",
            "name",
            "classname",
            "classname_at",
            "classname_event_key",
            "parent",
            "file_path",
            "html_url",
            "variant",
            "codeowners",
            "quarantined",
            "quarantined_at",
            "quarantined_event_key",
            "failure_rate_last_7d",
            "pull_requests_impacted_last_7d",
            "status",
            "status_since",
            "status_event_key",
            "attributes_at",
            "attributes_event_key",
            "first_event_at",
            "last_event_at",
            "triage_state",
            "assignee",
            "triage_note",
        ]
        tests = Table(TestCase, test_columns)
        links = Table(TestCaseOwner, ["test_case", "owner"])
        for test_id, test in self.tests.items():
            row = test.row
            guard = {name: test.guards.get(name, (None, "")) for name in ("classname", "quarantined")}
            tests.add(
                test_id,
                test.repository.pk if test.repository else None,
                row["name"],
                row.get("classname", ""),
                guard["classname"][0],
                guard["classname"][1],
                row["parent"],
                row["file_path"],
                row["html_url"],
                row["variant"],
                row["codeowners"],
                row.get("quarantined", False),
                guard["quarantined"][0],
                guard["quarantined"][1],
                row["failure_rate_last_7d"],
                row["pull_requests_impacted_last_7d"],
                row.get("status", TestCase._meta.get_field("status").default),
                row.get("status_since"),
                row.get("status_event_key", ""),
                test.attributes[0],
                test.attributes[1],
                row["first_event_at"],
                row["last_event_at"],
                TestCase.Triage.NEW,
                None,
                "",
            )
            for key in dict.fromkeys(name.casefold() for name in row["codeowners"]):
                links.add(test_id, owner_pk[key])
        tests.flush()
        links.flush()

        states = Table(MonitorState, ["monitor", "test_case", "status", "since", "event_key"])
        for (monitor_id, test_id), ((since, event_key), status) in self.monitor_states.items():
            states.add(monitor_id, test_id, status, since, event_key)
        states.flush()

        investigations = Table(
            Investigation,
            [
                "id",
                "delivery",
                "test_case",
                "occurred_at",
                "confidence",
                "markdown_summary",
                "failure_message",
            ],
        )
        facts = Table(InvestigationFact, ["investigation", "position", "fact_type", "content", "confidence"])
        for kept in self.investigations.values():
            investigations.add(*kept.row.values())
            for fact in kept.facts:
                facts.add(*fact)
        investigations.flush()
        facts.flush()


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
    deliveries: Iterable[tuple[int, str, str, str, str, str, datetime | None]],
    *,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 2000,
) -> Counter:
    """Project DELIVERY_COLUMNS rows, in the order given, into empty projections. Like `ingest.reprocess_delivery`, each delivery's
    outcome and parsed fields are recomputed, and written back only where they changed."""
    projection = BulkProjection()
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
            projection.apply(event, pk, svix_id)
        outcomes[outcome] += 1
        if progress and n % progress_every == 0:
            progress(n)
    projection.write()
    rollups.rebuild_all()
    Delivery.objects.bulk_update(changed, [*PARSED_FIELDS, "processed_at"], batch_size=1000)
    return outcomes
