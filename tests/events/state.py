"""A canonical snapshot of every projected row, for equality across orders and rebuilds.

Auto-increment ids depend on arrival order, so rows are identified by natural keys:
Trunk's ids, and the svix id of the delivery a history row came from.
"""

from events.delivery_log import delivery_changes_allowed
from events.models import (
    CalibrationBin,
    Delivery,
    Episode,
    FactDayCount,
    FixTally,
    Investigation,
    InvestigationDay,
    InvestigationFact,
    InvestigationVerdict,
    Monitor,
    MonitorDayCount,
    MonitorEvent,
    MonitorInterval,
    MonitorState,
    MonitorTotal,
    OutcomeTally,
    Owner,
    OwnerCount,
    OwnerDayDelta,
    OwnerEpisode,
    OwnerTarget,
    OwnerTest,
    QuarantineChange,
    Repository,
    ResolutionBucket,
    StatusChange,
    StatusDayDelta,
    StatusInterval,
    TargetTally,
    TestCase,
    TransitionDayCount,
    TriageEvent,
)
from events.rollups import BIN_FIELDS, event_days_counter


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
            "quarantined_since": t.quarantined_since,
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
                "quarantined",
            ),
            key=str,
        ),
        "monitor_events": sorted(
            MonitorEvent.objects.values_list(
                "delivery__svix_id",
                "monitor_id",
                "test_case_id",
                "occurred_at",
                "status",
                "evidence",
                "quarantined",
            ),
            key=str,
        ),
        "monitor_states": sorted(
            (m, t, status, since, activations, sorted(event_days_counter(days).items()))
            for m, t, status, since, activations, days in MonitorState.objects.values_list(
                "monitor_id", "test_case_id", "status", "since", "activations", "event_days"
            )
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
                "quarantined",
                "auto_outcome",
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
                "delivery__svix_id",
                "test_case_id",
                "occurred_at",
                "previous_setting",
                "updated_setting",
                "quarantined",
            ),
            key=str,
        ),
        # Rollups: exactly what recomputing them from the history gives.
        "status_intervals": sorted(
            StatusInterval.objects.values_list("test_case_id", "status", "started_at", "ended_at", "changed"),
            key=str,
        ),
        "episodes": sorted(
            (
                (t, s, e, p, round(sec, 3) if sec is not None else None, n)
                for t, s, e, p, sec, n in Episode.objects.values_list(
                    "test_case_id", "started_at", "ended_at", "previous_end", "seconds", "next_started_at"
                )
            ),
            key=str,
        ),
        # A (day, new_status) whose changes and fixes were all removed may be stored as 0.
        "transition_day_counts": sorted(
            TransitionDayCount.objects.exclude(count=0, fixes=0).values_list(
                "day", "new_status", "count", "fixes"
            )
        ),
        # A day whose entries and exits cancel out may be stored as 0 or not at all.
        "status_day_deltas": sorted(
            StatusDayDelta.objects.exclude(delta=0).values_list("day", "status", "delta")
        ),
        "monitor_intervals": sorted(
            (m, t, ty, s, r, round(sec, 3) if sec is not None else None)
            for m, t, ty, s, r, sec in MonitorInterval.objects.values_list(
                "monitor_id", "test_case_id", "monitor_type", "started_at", "resolved_at", "seconds"
            )
        ),
        # A (day, monitor, status) whose events were all removed may be stored as 0.
        "monitor_day_counts": sorted(
            MonitorDayCount.objects.exclude(count=0, resolutions=0).values_list(
                "day", "monitor_id", "status", "count", "resolutions"
            ),
            key=str,
        ),
        # A monitor whose events were all removed may be kept at 0.
        "monitor_totals": sorted(
            MonitorTotal.objects.exclude(events=0).values_list("monitor_id", "events"), key=str
        ),
        # A bucket whose resolutions were all removed may be kept at 0.
        "resolution_buckets": sorted(
            ResolutionBucket.objects.exclude(count=0).values_list("monitor_type", "bucket", "count")
        ),
        "owner_tests": sorted(
            OwnerTest.objects.values_list("test_case_id", "owner_key", "status", "quarantined"), key=str
        ),
        "owner_episodes": sorted(
            (
                (t, k, s, e, round(sec, 3) if sec is not None else None, r, n)
                for t, k, s, e, sec, r, n in OwnerEpisode.objects.values_list(
                    "test_case_id",
                    "owner_key",
                    "started_at",
                    "ended_at",
                    "seconds",
                    "relapse",
                    "next_started_at",
                )
            ),
            key=str,
        ),
        # An owner whose tests all moved away may be kept with zeros.
        "owner_counts": sorted(
            OwnerCount.objects.exclude(
                tests=0, flaky=0, broken=0, quarantined=0, fixes=0, relapses=0
            ).values_list("owner_key", "tests", "flaky", "broken", "quarantined", "fixes", "relapses")
        ),
        # A key whose fixes all moved to another may be kept at 0.
        "fix_tally": sorted(
            FixTally.objects.exclude(fixes=0).values_list(
                "everyone", "owner_key", "days_to_next", "relapsed", "fixes"
            )
        ),
        # A bin whose verdicts all went may be kept at zero (its float sums a hair off).
        "calibration_bins": sorted(
            (of_facts, fact_type, bin_, n, confirmed, round(total, 9), round(errors, 9))
            for of_facts, fact_type, bin_, n, confirmed, total, errors in CalibrationBin.objects.exclude(
                verdicts=0
            ).values_list(
                "of_facts", "fact_type", "bin", "verdicts", "confirmed", "confidence_sum", "squared_error_sum"
            )
        ),
        # A (band, outcome) whose investigations all moved may be kept at 0.
        "outcome_tally": sorted(
            OutcomeTally.objects.exclude(investigations=0).values_list("band", "outcome", "investigations")
        ),
        # A bucket whose episodes all moved may be kept at 0.
        "target_tally": sorted(
            TargetTally.objects.exclude(episodes=0).values_list("owner_key", "kind", "days", "episodes")
        ),
        "owner_day_deltas": sorted(
            OwnerDayDelta.objects.exclude(delta=0).values_list("owner_key", "day", "status", "delta")
        ),
        # A day whose investigations all moved to another day may be kept with zeros. Sums
        # of confidences are rounded: the same rows summed in another order may differ in
        # the last bits of a float.
        "investigation_days": sorted(
            (day, n, round(total, 9), *bins)
            for day, n, total, *bins in InvestigationDay.objects.exclude(count=0).values_list(
                "day", "count", "confidence_sum", *BIN_FIELDS
            )
        ),
        "fact_day_counts": sorted(
            (day, fact_type, n, rated, round(total, 9))
            for day, fact_type, n, rated, total in FactDayCount.objects.values_list(
                "day", "fact_type", "count", "confidence_count", "confidence_sum"
            )
        ),
        "deliveries": sorted(
            Delivery.objects.values_list("svix_id", "event_type", "outcome", "occurred_at", "body")
        ),
    }


def wipe() -> None:
    """Delete every row, deliveries included (a fresh database for the next example; the
    delivery log is append-only, so the deletes lift its guard)."""
    with delivery_changes_allowed():
        _delete_all()


def _delete_all() -> None:
    for model in (
        TriageEvent,  # flakyboard's own rows (no database constraint to the tests)
        InvestigationVerdict,
        OwnerTarget,
        TestCase,
        Monitor,
        Owner,
        Repository,
        Delivery,
        StatusDayDelta,
        OwnerCount,
        OwnerDayDelta,
        TransitionDayCount,
        ResolutionBucket,
        InvestigationDay,
        FactDayCount,
        FixTally,
        CalibrationBin,
        OutcomeTally,
        TargetTally,
    ):
        model.objects.all().delete()
