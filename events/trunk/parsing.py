"""The one place that reads Trunk payload keys: raw dict -> typed event, or a clear error.

Event shapes follow ../shared/trunk-webhooks.md. Rules that hold for every type:
- unknown extra fields are ignored, never an error;
- optional fields may be missing, null or empty and fall back to an empty value;
- a required field that is missing or of the wrong type raises `PayloadError` naming
  the field by its dotted path (`test_case.id`, `facts[2].confidence`);
- statuses are normalised to upper case (`flaky` and `FLAKY` are one status);
- `evidence` is free-form JSON, kept as sent except where the database could not hold
  it (see `free_json`);
- text is made storable: NUL and lone surrogates (legal in JSON, refused by PostgreSQL
  and UTF-8) become U+FFFD, and text longer than its column is cut with an ellipsis (the
  raw body keeps every byte);
- numbers must mean what their field means: finite, and inside the field's range;
- event times must be plausible (../shared/METRICS.md): not before 2000-01-01, not more
  than an hour after the delivery was received.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .reader import (
    ACTOR_MAX,
    FACT_TYPE_MAX,
    FACTS_MAX,
    MONITOR_STATUS_MAX,
    MONITOR_STATUSES,
    MONITOR_TYPE_MAX,
    NAME_MAX,
    REPOSITORY_URL_MAX,
    SETTING_MAX,
    VARIANT_MAX,
    PayloadError,
    PayloadReader,
    free_json,
    storable_text,
)


class UnknownEventType(Exception):
    """A well-formed delivery of a type flakyboard does not handle (yet): kept, ignored."""

    def __init__(self, event_type: str):
        self.event_type = event_type
        super().__init__(f"unknown event type {event_type!r}")


# ---------------------------------------------------------------- typed events


@dataclass(frozen=True)
class RepositoryRef:
    trunk_id: uuid.UUID | None
    html_url: str


@dataclass(frozen=True)
class TestCaseRef:
    """The test case as an event describes it. `None` means "not sent"."""

    __test__ = False

    id: uuid.UUID
    name: str
    classname: str | None = None  # None: not sent (v1 shapes have no classname)
    parent: str = ""
    file_path: str = ""
    html_url: str = ""
    codeowners: tuple[str, ...] = ()
    quarantined: bool | None = None
    variant: str = ""
    failure_rate_last_7d: float | None = None
    pull_requests_impacted_last_7d: int | None = None
    repository: RepositoryRef | None = None


@dataclass(frozen=True)
class Event:
    event_type: str
    occurred_at: datetime
    test_case: TestCaseRef


@dataclass(frozen=True)
class MonitorStatusChanged(Event):
    monitor_id: uuid.UUID
    monitor_type: str
    monitor_status: str  # active | resolved
    evidence: Any = None


@dataclass(frozen=True)
class StatusChanged(Event):
    """v2 `v2.test_case.status_changed` and legacy v1 `test_case.status_changed`."""

    previous_status: str
    new_status: str
    monitor_id: uuid.UUID | None = None
    monitor_type: str = ""
    monitor_status: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Fact:
    fact_type: str
    content: str
    confidence: float | None


@dataclass(frozen=True)
class InvestigationCompleted(Event):
    investigation_id: uuid.UUID
    confidence: float
    markdown_summary: str
    failure_message: str
    facts: tuple[Fact, ...] = field(default=())


@dataclass(frozen=True)
class QuarantineSettingChanged(Event):
    actor_email: str
    actor_name: str
    previous_setting: str
    updated_setting: str
    reason: str


# ---------------------------------------------------------------- shared objects


def _repository(r: PayloadReader | None) -> RepositoryRef | None:
    if r is None:
        return None
    trunk_id = r.uuid("id", required=False)
    html_url = r.str("html_url", limit=REPOSITORY_URL_MAX)
    if trunk_id is None and not html_url:
        return None
    return RepositoryRef(trunk_id=trunk_id, html_url=html_url)


def _test_case(t: PayloadReader, *, repository: RepositoryRef | None) -> TestCaseRef:
    # v1 says `quarantine` and `test_suite` where v2 says `quarantined` and `parent`.
    quarantined = t.bool("quarantined")
    if quarantined is None:
        quarantined = t.bool("quarantine")
    nested_repository = _repository(t.obj("repository", required=False))
    return TestCaseRef(
        id=t.uuid("id"),
        name=t.str("name", required=True, nonempty=True, limit=NAME_MAX),
        classname=t.str("classname", limit=NAME_MAX) if "classname" in t.data else None,
        parent=t.str("parent", limit=NAME_MAX) or t.str("test_suite", limit=NAME_MAX),
        file_path=t.str("file_path", limit=NAME_MAX),
        html_url=t.str("html_url", limit=NAME_MAX),
        codeowners=t.str_list("codeowners"),
        quarantined=quarantined,
        variant=t.str("variant", limit=VARIANT_MAX),
        # A share of runs: 0..1 (Trunk's 0.12 is 12%).
        failure_rate_last_7d=t.number("failure_rate_last_7d", lo=0, hi=1),
        pull_requests_impacted_last_7d=t.integer("pull_requests_impacted_last_7d"),
        repository=repository or nested_repository,
    )


def _common(p: PayloadReader) -> TestCaseRef:
    return _test_case(p.obj("test_case"), repository=_repository(p.obj("repository", required=False)))


# ---------------------------------------------------------------- one parser per type


def monitor_status_changed(p: PayloadReader, event_type: str) -> MonitorStatusChanged:
    monitor = p.obj("monitor")
    status = monitor.str("status", required=True, nonempty=True).strip().lower()
    if status not in MONITOR_STATUSES:
        raise PayloadError("monitor.status", f"expected active or resolved, got {status[:40]!r}")
    return MonitorStatusChanged(
        event_type=event_type,
        occurred_at=p.time("timestamp"),
        test_case=_common(p),
        monitor_id=monitor.uuid("id"),
        monitor_type=monitor.str("type", required=True, nonempty=True, limit=MONITOR_TYPE_MAX),
        monitor_status=status,
        evidence=free_json(p.data.get("evidence"), "evidence"),
    )


def status_changed_v2(p: PayloadReader, event_type: str) -> StatusChanged:
    trigger = p.obj("triggered_by", required=False)
    return StatusChanged(
        event_type=event_type,
        occurred_at=p.time("timestamp"),
        test_case=_common(p),
        previous_status=p.status("previous_status"),
        new_status=p.status("new_status"),
        monitor_id=trigger.uuid("monitor_id", required=False) if trigger else None,
        monitor_type=trigger.str("monitor_type", limit=MONITOR_TYPE_MAX) if trigger else "",
        monitor_status=trigger.str("monitor_status", limit=MONITOR_STATUS_MAX).lower() if trigger else "",
    )


def status_changed_v1(p: PayloadReader, event_type: str) -> StatusChanged:
    change = p.obj("status_change")
    current = change.obj("current_status")
    return StatusChanged(
        event_type=event_type,
        # v1 carries its event time inside the change, not at the top level.
        occurred_at=current.time("timestamp"),
        test_case=_common(p),
        previous_status=change.status("previous_status"),
        new_status=current.status("value"),
        reason=current.str("reason"),
    )


def investigation_completed(p: PayloadReader, event_type: str) -> InvestigationCompleted:
    facts = []
    for i, raw in enumerate(p.list("facts")[:FACTS_MAX]):
        f = p.child(raw, f"facts[{i}]")
        facts.append(
            Fact(
                fact_type=f.str("fact_type", required=True, nonempty=True, limit=FACT_TYPE_MAX),
                content=f.str("content"),
                confidence=f.number("confidence", lo=0, hi=1),
            )
        )
    return InvestigationCompleted(
        event_type=event_type,
        occurred_at=p.time("created_at"),
        test_case=_common(p),
        investigation_id=p.uuid("investigation_id"),
        confidence=p.number("confidence", required=True, lo=0, hi=1),
        markdown_summary=p.str("markdown_summary"),
        failure_message=p.str("failure_message"),
        facts=tuple(facts),
    )


def quarantining_setting_changed(p: PayloadReader, event_type: str) -> QuarantineSettingChanged:
    change = p.obj("quarantine_setting_changed")
    actor = change.obj("actor", required=False)
    # The event time sits inside the change; a top-level `timestamp` is the fallback.
    occurred_at = change.time("timestamp", required=False) or p.time("timestamp", required=False)
    if occurred_at is None:
        raise PayloadError("quarantine_setting_changed.timestamp", "required field is missing")
    return QuarantineSettingChanged(
        event_type=event_type,
        occurred_at=occurred_at,
        test_case=_common(p),
        actor_email=actor.str("email", limit=ACTOR_MAX) if actor else "",
        actor_name=actor.str("full_name", limit=ACTOR_MAX) if actor else "",
        previous_setting=change.str("previous_quarantining_setting", limit=SETTING_MAX),
        updated_setting=change.str("updated_quarantining_setting", limit=SETTING_MAX),
        reason=change.str("reason"),
    )


V1_STATUS_CHANGED = "test_case.status_changed"


def event_type_of(payload: Any) -> str:
    """The payload's type, or the legacy v1 type recognised by its shape, or ""."""
    if not isinstance(payload, dict):
        return ""
    declared = payload.get("type")
    if isinstance(declared, str) and declared:
        return storable_text(declared)[:255]
    # Some v1 senders omit `type`; a `status_change` object identifies that shape.
    if isinstance(payload.get("status_change"), dict) and "test_case" in payload:
        return V1_STATUS_CHANGED
    return ""


def event_time_of(payload: Any, *, received_at: datetime) -> datetime | None:
    """Best-effort event time for a payload that did not parse (for the delivery row):
    the places the known shapes keep it, first plausible one wins."""
    if not isinstance(payload, dict):
        return None
    for path in (
        ("timestamp",),
        ("created_at",),
        ("status_change", "current_status", "timestamp"),  # v1
        ("quarantine_setting_changed", "timestamp"),
    ):
        value: Any = payload
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            try:
                return PayloadReader({"t": value}, received_at=received_at).time("t")
            except PayloadError:
                continue
    return None
