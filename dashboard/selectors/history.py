"""The API's history lists: status changes, monitor events and quarantine changes, each
with what a row shows, filtered, ordered and paginated by the caller (investigations:
selectors.investigations.investigation_history)."""

from __future__ import annotations

from django.db.models import QuerySet

from events.models import MonitorEvent, QuarantineChange, StatusChange


def status_changes(*, test_case_id=None) -> QuerySet[StatusChange]:
    return _of_test(StatusChange.objects.select_related("test_case"), test_case_id)


def monitor_events(*, test_case_id=None) -> QuerySet[MonitorEvent]:
    return _of_test(MonitorEvent.objects.select_related("test_case", "monitor"), test_case_id)


def quarantine_changes(*, test_case_id=None) -> QuerySet[QuarantineChange]:
    return _of_test(QuarantineChange.objects.select_related("test_case"), test_case_id)


def _of_test(rows: QuerySet, test_case_id) -> QuerySet:
    """All rows, or one test's (`test_case_id`: Trunk's test case id)."""
    return rows if test_case_id is None else rows.filter(test_case_id=test_case_id)
