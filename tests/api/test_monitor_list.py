"""The monitor list reads its counts from the rollups (MonitorTotal, MonitorState)."""

import uuid

import pytest

from events.demo import payloads
from tests.events.factories import MONITOR, at, deliver, fake_test

pytestmark = pytest.mark.django_db
RATE = uuid.UUID(int=991)


def monitor(test, when, status, *, monitor_id=MONITOR, monitor_type="pass_on_retry"):
    deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=monitor_id, monitor_type=monitor_type, status=status
        )
    )


def test_monitor_list_counts_from_the_rollups(staff_api):
    t1, t2 = fake_test(1), fake_test(2)
    for when, status in [(at(2), "active"), (at(3), "active"), (at(4), "resolved"), (at(9), "active")]:
        monitor(t1, when, status)
    monitor(t2, at(12, 5), "resolved")  # latest event of the monitor, on another test
    monitor(t2, at(1), "active", monitor_id=RATE, monitor_type="failure_rate")
    monitor(t2, at(1, 2), "resolved", monitor_id=RATE, monitor_type="failure_rate")
    # The latest event is an `active` one, newer than another pair's `resolved`.
    count = uuid.UUID(int=992)
    monitor(t1, at(3), "resolved", monitor_id=count, monitor_type="failure_count")
    monitor(t2, at(7), "active", monitor_id=count, monitor_type="failure_count")
    rows = {row["type"]: row for row in staff_api.get("/api/v1/monitors/").json()["results"]}
    assert {t: (r["event_count"], r["active_tests"], r["last_event_at"]) for t, r in rows.items()} == {
        "pass_on_retry": (5, 1, "2026-05-12T05:00:00Z"),
        "failure_rate": (2, 0, "2026-05-01T02:00:00Z"),
        "failure_count": (2, 1, "2026-05-07T00:00:00Z"),
    }
