"""Monitor rollups (MonitorState.activations/event_days, MonitorDayCount) on hand-built
histories, and after reprocessing, which removes a delivery's event and applies it again."""

from datetime import date

import pytest
from django.core.management import call_command

from events import rollups
from events.delivery_log import delivery_changes_allowed
from events.demo import payloads
from events.models import Delivery, MonitorDayCount, MonitorState
from events.projection.replay import reprocess_delivery
from tests.events.factories import MONITOR, at, deliver, fake_test
from tests.events.state import projected_state

pytestmark = pytest.mark.django_db


def monitor(test, when, status, msg_id=None):
    return deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=MONITOR, monitor_type="pass_on_retry", status=status
        ),
        msg_id=msg_id,
    )


def day_counts():
    return sorted(
        MonitorDayCount.objects.exclude(count=0, resolutions=0).values_list(
            "day", "status", "count", "resolutions"
        )
    )


def test_day_counts_and_pair_counts_follow_each_event_in_any_order():
    t1, t2 = fake_test(1), fake_test(2)
    # Arrives out of order: the resolve first, then the activations before it.
    monitor(t1, at(3, 5), "resolved")
    monitor(t1, at(3), "active")
    monitor(t1, at(2), "active")  # the interval now starts on day 2, still resolved on day 3
    monitor(t1, at(3, 6), "resolved")  # a second `resolved`: an event, not a resolution
    monitor(t2, at(3, 1), "active")
    assert day_counts() == [
        (date(2026, 5, 2), "active", 1, 0),
        (date(2026, 5, 3), "active", 2, 0),
        (date(2026, 5, 3), "resolved", 2, 1),
    ]
    pairs = dict(MonitorState.objects.values_list("test_case_id", "activations"))
    assert pairs == {t1.id: 2, t2.id: 1}
    state = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == state


def test_reprocessing_deliveries_changes_no_rollup():
    t1 = fake_test(1)
    for i, (when, status) in enumerate([(at(2), "active"), (at(2, 4), "resolved"), (at(5), "active")]):
        monitor(t1, when, status, msg_id=f"msg_{i}")
    state = projected_state()
    for delivery in Delivery.objects.order_by("id"):
        reprocess_delivery(delivery)
    assert projected_state() == state
    assert day_counts() == [
        (date(2026, 5, 2), "active", 1, 0),
        (date(2026, 5, 2), "resolved", 1, 1),
        (date(2026, 5, 5), "active", 1, 0),
    ]


ROLLUP_KEYS = (
    "status_intervals",
    "episodes",
    "transition_day_counts",
    "status_day_deltas",
    "monitor_intervals",
    "monitor_day_counts",
    "monitor_totals",
    "resolution_buckets",
    "owner_episodes",
    "owner_day_deltas",
)


def test_reprocessing_a_delivery_that_no_longer_projects_refreshes_its_rollups():
    """A parser change may turn a stored delivery invalid: reprocessing removes its status
    change or monitor event, and the test's and pair's rollups follow (as recomputed)."""
    t1 = fake_test(1)
    deliver(
        payloads.status_changed(
            t1, at=at(2), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="pass_on_retry"
        ),
        msg_id="msg_change",
    )
    monitor(t1, at(2), "active", msg_id="msg_active")
    monitor(t1, at(3), "resolved", msg_id="msg_resolved")
    for svix_id in ("msg_change", "msg_resolved"):
        delivery = Delivery.objects.get(svix_id=svix_id)
        delivery.body = "not json"
        with delivery_changes_allowed():
            delivery.save(update_fields=["body"])
        assert reprocess_delivery(delivery) == Delivery.Outcome.INVALID
    kept = {key: value for key, value in projected_state().items() if key in ROLLUP_KEYS}
    assert kept["monitor_totals"] == [(MONITOR, 1)] and kept["resolution_buckets"] == []
    rollups.rebuild_all()
    assert {key: value for key, value in projected_state().items() if key in ROLLUP_KEYS} == kept
