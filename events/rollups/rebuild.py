"""Every rollup from the history rows, on emptied rollup tables: the rebuild of the
projections (`rebuild_projections`) calls rebuild_all after projecting every delivery."""

from __future__ import annotations

from collections import Counter

from django.db import connection

from ..models import (
    CalibrationBin,
    Episode,
    FactDayCount,
    FixTally,
    InvestigationDay,
    MonitorDayCount,
    MonitorInterval,
    MonitorTotal,
    OutcomeTally,
    OwnerCount,
    OwnerDayDelta,
    OwnerEpisode,
    OwnerTest,
    ResolutionBucket,
    StatusChange,
    StatusDayDelta,
    StatusInterval,
    TargetTally,
    TestCase,
    TransitionDayCount,
)
from ..sql import Table, code_point_ordered
from .calibration import rebuild_calibration
from .fixes import rebuild_fix_tally
from .investigations import rebuild_investigation_rollups
from .monitors import (
    monitor_intervals_sql,
    rebuild_monitor_rollups,
    rebuild_monitor_totals,
    rebuild_resolution_buckets,
)
from .outcomes import rebuild_auto_outcomes
from .owners import rebuild_owner_rollups
from .quarantine import rebuild_quarantined_since
from .shared import with_rows_of_each_test
from .status import Change, day_deltas, episodes_of, intervals_of, rebuild_transition_counts
from .targets import rebuild_target_tally

# Every rollup table, children first.
ROLLUP_MODELS = (
    TargetTally,
    OutcomeTally,
    CalibrationBin,
    FixTally,
    InvestigationDay,
    FactDayCount,
    OwnerCount,
    OwnerDayDelta,
    OwnerEpisode,
    OwnerTest,
    MonitorDayCount,
    MonitorTotal,
    ResolutionBucket,
    MonitorInterval,
    Episode,
    StatusInterval,
    StatusDayDelta,
    TransitionDayCount,
)


def rebuild_all() -> None:
    """Compute every rollup from the history rows."""
    for model in ROLLUP_MODELS:
        model.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(monitor_intervals_sql("1 = 1"))
    rebuild_monitor_rollups()
    rebuild_monitor_totals()
    rebuild_resolution_buckets()

    intervals = Table(StatusInterval, ["test_case", "status", "started_at", "ended_at", "changed"])
    episodes = Table(
        Episode,
        ["test_case", "started_at", "ended_at", "previous_end", "seconds", "start_known", "next_started_at"],
    )
    deltas: Counter = Counter()

    def flush_test(test_id, first_event_at, changes):
        test_intervals = intervals_of(first_event_at, changes)
        for i in test_intervals:
            intervals.add(test_id, i.status, i.started_at, i.ended_at, i.changed)
        test_episodes = episodes_of(first_event_at, changes)
        for e in test_episodes:
            episodes.add(
                test_id, e.started_at, e.ended_at, e.previous_end, e.seconds, e.start_known, e.next_started_at
            )
        deltas.update(day_deltas(test_intervals))

    rows = TestCase.objects.order_by("id").values_list("id", "first_event_at").iterator(chunk_size=5000)
    changes = (
        StatusChange.objects.order_by("test_case_id", "occurred_at", code_point_ordered("delivery__svix_id"))
        .values_list("test_case_id", "occurred_at", "previous_status", "new_status")
        .iterator(chunk_size=5000)
    )
    for (test_id, first_event_at), test_changes in with_rows_of_each_test(rows, changes, Change):
        flush_test(test_id, first_event_at, test_changes)
    intervals.flush()
    episodes.flush()
    rebuild_auto_outcomes()
    StatusDayDelta.objects.bulk_create(
        [StatusDayDelta(day=day, status=status, delta=d) for (day, status), d in sorted(deltas.items()) if d],
        batch_size=1000,
    )
    rebuild_transition_counts()
    rebuild_owner_rollups()
    rebuild_target_tally()
    rebuild_fix_tally()
    rebuild_calibration()
    rebuild_investigation_rollups()
    rebuild_quarantined_since()
