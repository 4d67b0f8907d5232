"""Every Trunk event type flakyboard knows, declared once (as Zulip's webhook
integrations declare theirs): its parser, its projection and its history relation in
one entry, and the types known but deliberately ignored.

Adding a type: its parser in `events.trunk.parsing` (a typed event), its projection in
`events.projection.fold` (the history row and the state it decides), its history model
and a migration, and one `EventType` here. tests/events/test_registry.py proves that every
registered type has every part, and that a delivery of it lands in its history relation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.projection.fold import Fold, Projection

from . import parsing, reader


@dataclass(frozen=True)
class EventType:
    name: str  # the payload's `type` (v1 status changes may omit it: parsing.event_type_of)
    event: type[parsing.Event]
    parse: Callable[[reader.PayloadReader, str], parsing.Event]
    project: Projection
    history: str  # the Delivery relation that holds one row per event of this type


EVENT_TYPES: dict[str, EventType] = {
    t.name: t
    for t in (
        EventType(
            "test_case.monitor_status_changed",
            parsing.MonitorStatusChanged,
            parsing.monitor_status_changed,
            Fold.monitor_status_changed,
            "monitor_event",
        ),
        EventType(
            "v2.test_case.status_changed",
            parsing.StatusChanged,
            parsing.status_changed_v2,
            Fold.status_changed,
            "status_change",
        ),
        EventType(
            parsing.V1_STATUS_CHANGED,
            parsing.StatusChanged,
            parsing.status_changed_v1,
            Fold.status_changed,
            "status_change",
        ),
        EventType(
            "test_case.investigation_completed",
            parsing.InvestigationCompleted,
            parsing.investigation_completed,
            Fold.investigation_completed,
            "investigation",
        ),
        EventType(
            "test_case.quarantining_setting_changed",
            parsing.QuarantineSettingChanged,
            parsing.quarantining_setting_changed,
            Fold.quarantine_setting_changed,
            "quarantine_change",
        ),
    )
}

# Types known and deliberately not projected: stored `ignored` with no error. Trunk
# documents no Flaky Tests type that flakyboard chooses to skip today, so the list is
# empty; any other type is stored `ignored` as "unknown event type" (a future Trunk type
# is kept, and `reprocess_deliveries` projects it once it is registered here).
IGNORED_TYPES: frozenset[str] = frozenset()

# Every history relation, for the code that removes or counts what a delivery projected.
HISTORY_RELATIONS = tuple(dict.fromkeys(t.history for t in EVENT_TYPES.values()))


def parse_event(payload: Any, *, received_at: datetime) -> parsing.Event:
    """Turn a decoded JSON payload into a typed event.

    `received_at`: when the delivery was received (our clock), which bounds the plausible
    event times. Raises `PayloadError` (invalid: the message names the field) or
    `UnknownEventType` (valid JSON of a type not registered here: kept and ignored).
    """
    fields = reader.PayloadReader(payload, received_at=received_at)
    event_type = parsing.event_type_of(payload)
    if not event_type:
        if "type" in payload and not isinstance(payload["type"], str):
            raise reader.PayloadError("type", f"expected a string, got {reader.json_type(payload['type'])}")
        raise reader.PayloadError(
            "type", "required field is missing (and the shape is not a v1 status change)"
        )
    registered = EVENT_TYPES.get(event_type)
    if registered is None:
        raise parsing.UnknownEventType(event_type)
    return registered.parse(fields, event_type)


def fold_event(
    fold: Fold, event: parsing.Event, delivery_id: int, svix_id: str, repository_id: int | None
) -> None:
    """Fold one event: its test (every event carries one), then what its type decides."""
    key = (event.occurred_at, svix_id)
    fold.fold_test_case(event.test_case, key, repository_id)
    EVENT_TYPES[event.event_type].project(fold, event, delivery_id, key)
