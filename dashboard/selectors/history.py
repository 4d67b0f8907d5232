"""The API's history lists: status changes, monitor events and quarantine changes, each
with what a row shows, filtered, ordered and paginated by the caller (investigations:
selectors.investigations.investigation_history)."""

from __future__ import annotations

from django.db.models import QuerySet

from events.models import MonitorEvent, QuarantineChange, StatusChange


def status_changes() -> QuerySet[StatusChange]:
    return StatusChange.objects.select_related("test_case")


def monitor_events() -> QuerySet[MonitorEvent]:
    return MonitorEvent.objects.select_related("test_case", "monitor")


def quarantine_changes() -> QuerySet[QuarantineChange]:
    return QuarantineChange.objects.select_related("test_case")
