"""The projection rules, written once: fold events into the state they decide.

Every path that projects deliveries goes through `Fold`: the receiver (a batch of one
delivery), the projector (a batch of pending deliveries) and the rebuild (every delivery,
starting from nothing). The fold starts from the stored state of the tests, (monitor,
test) pairs and investigations a batch touches (`events.projection.apply` loads it; a rebuild loads
nothing), applies the batch's events in memory, and `events.projection.apply` then writes the
difference. No database access here: these are plain functions of the state and the
event, which is what makes them testable alone and fast.

Order independence. Deliveries arrive late, twice and out of order (Svix is
at-least-once with best-effort ordering). Every value of *current* state is guarded by
its (event time, svix id) key: Trunk's clock (`occurred_at`, never our `received_at`),
ties broken by the svix id, so a set of events gives one state whatever the order they
are folded in (tests/events/test_order_independence.py). An event folded again with its
own key (reprocessing a stored delivery) wins its guards again, so a fixed parser's
values replace the old ones.

What state each event decides (METRICS "Test state"):
- the test's attributes (a snapshot Trunk sends whole with every event) from the newest
  event; `quarantined` and `classname` each from the newest event that carries them
  (v1 payloads have no classname; `quarantined` is optional); first and last event time;
- the test's status from its newest status change;
- a (monitor, test) pair's status from its newest monitor event; a monitor's type from
  the first delivery that named it;
- an investigation from the delivery with the smallest svix id that carries it;
- each owner's spelling from the earliest event naming it (same time: the smaller
  spelling), so that "@Acme/Web" and "@acme/web" are one owner shown as first seen.
History rows (one per event) are collected in `history`, for the caller to write; each
keeps the event's quarantined flag (the quarantine ledger's "quarantined since" is read
from them: events/rollups/quarantine.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.trunk import parsing

# (event time, svix id): the order in which events win a guard.
Key = tuple[datetime, str]

# The guarded values of a test row: (time column, key column) per guard.
ATTRIBUTES = ("attributes_at", "attributes_event_key")
STATUS = ("status_since", "status_event_key")
SEPARATELY_GUARDED = {
    "quarantined": ("quarantined_at", "quarantined_event_key"),
    "classname": ("classname_at", "classname_event_key"),
}

# The TestCase columns the projection decides (attnames), in the order they are written.
TEST_COLUMNS = (
    "id",
    "repository_id",
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
)

# A test before its first event: what the model's defaults say.
NEW_TEST = {
    "classname": "",
    "classname_at": None,
    "classname_event_key": "",
    "quarantined": False,
    "quarantined_at": None,
    "quarantined_event_key": "",
    "status": "HEALTHY",  # Trunk starts every test HEALTHY (METRICS "Test state")
    "status_since": None,
    "status_event_key": "",
    "attributes_at": None,
    "attributes_event_key": "",
}


def wins(row: dict[str, Any], guard: tuple[str, str], key: Key) -> bool:
    """Whether the event `key` is at least as new as the value the guard protects (equal:
    the same event folded again)."""
    at, event_key = guard
    return row[at] is None or key >= (row[at], row[event_key])


def test_case_fields(ref: parsing.TestCaseRef) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attributes, separately guarded fields) of a test_case snapshot, as TestCase
    attnames. The attributes move together; the others only when the payload carries them."""
    attributes = {
        "name": ref.name,
        "parent": ref.parent,
        "file_path": ref.file_path,
        "html_url": ref.html_url,
        "variant": ref.variant,
        "codeowners": list(ref.codeowners),
        "failure_rate_last_7d": ref.failure_rate_last_7d,
        "pull_requests_impacted_last_7d": ref.pull_requests_impacted_last_7d,
    }
    separately_guarded = {
        name: value
        for name, value in (("quarantined", ref.quarantined), ("classname", ref.classname))
        if value is not None
    }
    return attributes, separately_guarded


@dataclass
class KeptInvestigation:
    """An investigation as the fold keeps it: the svix id of the delivery it came from
    (the smallest wins), its row and facts (None: loaded, unchanged by this fold)."""

    svix_id: str
    occurred_at: datetime
    row: dict[str, Any] | None = None
    facts: list[tuple] = field(default_factory=list)


@dataclass
class Fold:
    """The state a batch of events decides, folded from the stored state (`load_*`)."""

    tests: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)  # TEST_COLUMNS values
    owners: dict[str, tuple[datetime, str]] = field(default_factory=dict)  # key -> (first seen, spelling)
    monitor_types: dict[uuid.UUID, str] = field(default_factory=dict)
    monitor_states: dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]] = field(default_factory=dict)
    investigations: dict[uuid.UUID, KeptInvestigation] = field(default_factory=dict)
    # History rows by relation (the registry's `history` name), columns as HISTORY_COLUMNS.
    history: dict[str, list[tuple]] = field(default_factory=dict)

    # ------------------------------------------------------------ folding

    def fold_test_case(self, ref: parsing.TestCaseRef, key: Key, repository_id: int | None) -> None:
        """Every event carries its test: create it, take its snapshot when newest."""
        at = key[0]
        for name in ref.codeowners:
            owner_key = name.casefold()
            seen = self.owners.get(owner_key)
            if seen is None or (at, name) < seen:
                self.owners[owner_key] = (at, name)
        row = self.tests.get(ref.id)
        if row is None:
            row = self.tests[ref.id] = {"id": ref.id, **NEW_TEST, "first_event_at": at, "last_event_at": at}
        row["first_event_at"] = min(row["first_event_at"], at)
        row["last_event_at"] = max(row["last_event_at"], at)
        attributes, separately_guarded = test_case_fields(ref)
        if wins(row, ATTRIBUTES, key):
            row |= attributes
            row["repository_id"] = repository_id
            row["attributes_at"], row["attributes_event_key"] = key
        for name, value in separately_guarded.items():
            guard = SEPARATELY_GUARDED[name]
            if wins(row, guard, key):
                row[name] = value
                row[guard[0]], row[guard[1]] = key

    def add_history(self, relation: str, *values: Any) -> None:
        self.history.setdefault(relation, []).append(values)

    # ------------------------------------------------------------ per event type

    def status_changed(self, event: parsing.StatusChanged, delivery_id: int, key: Key) -> None:
        self.add_history(
            "status_change",
            delivery_id,
            event.test_case.id,
            event.occurred_at,
            event.previous_status,
            event.new_status,
            event.monitor_id,
            event.monitor_type,
            event.monitor_status,
            event.reason,
            event.test_case.quarantined,
        )
        row = self.tests[event.test_case.id]
        if wins(row, STATUS, key):
            row["status"] = event.new_status
            row["status_since"], row["status_event_key"] = key

    def monitor_status_changed(self, event: parsing.MonitorStatusChanged, delivery_id: int, key: Key) -> None:
        test_id = event.test_case.id
        self.monitor_types.setdefault(event.monitor_id, event.monitor_type)  # the first arrival names it
        self.add_history(
            "monitor_event",
            delivery_id,
            event.monitor_id,
            test_id,
            event.occurred_at,
            event.monitor_status,
            event.evidence,
            event.test_case.quarantined,
        )
        state = self.monitor_states.get((event.monitor_id, test_id))
        if state is None or key >= (state["since"], state["event_key"]):
            self.monitor_states[(event.monitor_id, test_id)] = {
                "status": event.monitor_status,
                "since": event.occurred_at,
                "event_key": key[1],
            }

    def investigation_completed(
        self, event: parsing.InvestigationCompleted, delivery_id: int, key: Key
    ) -> None:
        # Trunk's investigation id is unique; should two deliveries (two svix ids) carry
        # one investigation, the smaller svix id is kept, whatever the order.
        kept = self.investigations.get(event.investigation_id)
        if kept is not None and kept.svix_id < key[1]:
            return
        self.investigations[event.investigation_id] = KeptInvestigation(
            key[1],
            event.occurred_at,
            {
                "id": event.investigation_id,
                "delivery_id": delivery_id,
                "test_case_id": event.test_case.id,
                "occurred_at": event.occurred_at,
                "confidence": event.confidence,
                "markdown_summary": event.markdown_summary,
                "failure_message": event.failure_message,
                "quarantined": event.test_case.quarantined,
            },
            [
                (event.investigation_id, i, fact.fact_type, fact.content, fact.confidence)
                for i, fact in enumerate(event.facts)
            ],
        )

    def quarantine_setting_changed(
        self, event: parsing.QuarantineSettingChanged, delivery_id: int, key: Key
    ) -> None:
        self.add_history(
            "quarantine_change",
            delivery_id,
            event.test_case.id,
            event.occurred_at,
            event.actor_email,
            event.actor_name,
            event.previous_setting,
            event.updated_setting,
            event.reason,
            event.test_case.quarantined,
        )


# A handler of one event type: fold its event (history row and the state it decides).
Projection = Callable[[Fold, Any, int, Key], None]
