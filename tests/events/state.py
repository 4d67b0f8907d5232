"""A canonical snapshot of every projected row, for equality across orders and rebuilds.

Auto-increment ids depend on arrival order, so rows are identified by natural keys:
Trunk's ids, and the svix id of the delivery a history row came from.
"""

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
)


def projected_state() -> dict:
    tests = {}
    for t in TestCase.objects.select_related("repository").prefetch_related("owners").order_by("id"):
        tests[str(t.id)] = {
            "name": t.name,
            "classname": t.classname,
            "parent": t.parent,
            "file_path": t.file_path,
            "html_url": t.html_url,
            "variant": t.variant,
            "codeowners": t.codeowners,
            "owners": sorted(o.name for o in t.owners.all()),
            "quarantined": t.quarantined,
            "failure_rate_last_7d": t.failure_rate_last_7d,
            "pull_requests_impacted_last_7d": t.pull_requests_impacted_last_7d,
            "repository": t.repository
            and (str(t.repository.trunk_id), t.repository.html_url, t.repository.name),
            "status": t.status,
            "status_since": t.status_since,
            "first_event_at": t.first_event_at,
            "last_event_at": t.last_event_at,
            "triage": (t.triage_state, t.assignee_id, t.triage_note),
        }
    return {
        "tests": tests,
        "repositories": sorted(Repository.objects.values_list("trunk_id", "html_url", "name"), key=str),
        "owners": sorted(Owner.objects.values_list("key", "name", "first_seen_at")),
        "monitors": sorted(Monitor.objects.values_list("id", "type"), key=str),
        "status_changes": sorted(
            StatusChange.objects.values_list(
                "delivery__svix_id",
                "test_case_id",
                "occurred_at",
                "previous_status",
                "new_status",
                "monitor_id",
                "monitor_type",
                "monitor_status",
                "reason",
            ),
            key=str,
        ),
        "monitor_events": sorted(
            MonitorEvent.objects.values_list(
                "delivery__svix_id", "monitor_id", "test_case_id", "occurred_at", "status", "evidence"
            ),
            key=str,
        ),
        "monitor_states": sorted(
            MonitorState.objects.values_list("monitor_id", "test_case_id", "status", "since"), key=str
        ),
        "investigations": sorted(
            Investigation.objects.values_list(
                "id",
                "delivery__svix_id",
                "test_case_id",
                "occurred_at",
                "confidence",
                "markdown_summary",
                "failure_message",
            ),
            key=str,
        ),
        "facts": sorted(
            InvestigationFact.objects.values_list(
                "investigation_id", "position", "fact_type", "content", "confidence"
            ),
            key=str,
        ),
        "quarantine_changes": sorted(
            QuarantineChange.objects.values_list(
                "delivery__svix_id", "test_case_id", "occurred_at", "previous_setting", "updated_setting"
            ),
            key=str,
        ),
        "deliveries": sorted(
            Delivery.objects.values_list("svix_id", "event_type", "outcome", "occurred_at", "body")
        ),
    }


def wipe() -> None:
    """Delete every row, deliveries included (a fresh database for the next example)."""
    for model in (TestCase, Monitor, Owner, Repository, Delivery):
        model.objects.all().delete()
