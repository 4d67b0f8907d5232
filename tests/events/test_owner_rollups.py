"""Owner rollups (OwnerTest, OwnerEpisode, OwnerCount: events/rollups/owners.py, kept by
refresh_tests) follow a test's status, episodes and owner links, in any order, and equal
a rebuild."""

import pytest
from django.core.management import call_command

from events import rollups
from events.demo import payloads
from events.models import Episode, OwnerCount, OwnerDayDelta, OwnerEpisode, OwnerTest, TestCase
from tests.events.factories import MONITOR, at, deliver, fake_test
from tests.events.state import projected_state

pytestmark = pytest.mark.django_db


def change(test, when, previous, new):
    return deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


def counts() -> dict[str, tuple]:
    rows = OwnerCount.objects.exclude(tests=0).values_list(
        "owner_key", "tests", "flaky", "broken", "fixes", "relapses"
    )
    return {key: tuple(rest) for key, *rest in rows}


def sums() -> dict[str, tuple]:
    """OwnerCount recomputed from the per-test rows it sums."""
    totals: dict[str, list[int]] = {}
    for key, status in OwnerTest.objects.values_list("owner_key", "status"):
        row = totals.setdefault(key, [0] * 5)
        row[0] += 1
        row[1] += status == "FLAKY"
        row[2] += status == "BROKEN"
    for key, ended_at, relapse in OwnerEpisode.objects.values_list("owner_key", "ended_at", "relapse"):
        row = totals.setdefault(key, [0] * 5)
        row[3] += ended_at is not None
        row[4] += relapse
    return {key: tuple(row) for key, row in totals.items() if row[0]}


def test_counts_follow_status_episodes_and_owner_changes():
    t1 = fake_test(1, codeowners=["@acme/web", "@acme/api"])
    change(t1, at(2), "HEALTHY", "FLAKY")
    change(t1, at(4), "FLAKY", "HEALTHY")
    change(t1, at(10), "HEALTHY", "BROKEN")  # a relapse, open
    assert counts() == {"@acme/web": (1, 0, 1, 1, 1), "@acme/api": (1, 0, 1, 1, 1)}
    assert OwnerEpisode.objects.count() == 2 * Episode.objects.count() == 4
    # A newer event names other owners (one in another case): the counts move with them.
    change(fake_test(1, codeowners=["@ACME/web"]), at(12), "BROKEN", "FLAKY")
    assert counts() == {"@acme/web": (1, 1, 0, 1, 1)}
    # No owner at all: "(no owner)" ("").
    change(fake_test(1, codeowners=[]), at(13), "FLAKY", "HEALTHY")
    assert counts() == {"": (1, 0, 0, 2, 1)}
    assert counts() == sums()
    # A late, older event with other owners changes history, not the current owners.
    change(fake_test(1, codeowners=["@late"]), at(1), "HEALTHY", "HEALTHY")
    assert counts() == sums() == {"": (1, 0, 0, 2, 1)}
    state = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == state


def test_owner_episodes_carry_time_to_fix_and_relapse():
    t1 = fake_test(1, codeowners=["@acme/web"])
    change(t1, at(2), "HEALTHY", "FLAKY")
    change(t1, at(5, 12), "FLAKY", "HEALTHY")
    change(t1, at(20), "HEALTHY", "FLAKY")
    rows = list(OwnerEpisode.objects.order_by("started_at").values_list("seconds", "relapse"))
    assert rows == [(3.5 * 86400, False), (None, True)]


def test_demo_history_counts_equal_their_rows_and_a_rebuild(load_demo):
    load_demo(tests=40, days=60)
    assert counts() == sums() and counts()
    state = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == state


def test_rebuild_owner_rollups_fills_empty_owner_rollups(load_demo):
    load_demo(tests=20, days=30)
    state = projected_state()
    for model in (OwnerCount, OwnerDayDelta, OwnerEpisode, OwnerTest):
        model.objects.all().delete()
    rollups.rebuild_owner_rollups()
    assert projected_state() == state


def test_owner_links_change_refreshes_the_owner_rollups():
    change(fake_test(1, codeowners=["@acme/web"]), at(2), "HEALTHY", "FLAKY")
    deliver(
        payloads.monitor_status_changed(
            fake_test(1, codeowners=["@acme/api"]),
            at=at(3),
            monitor_id=MONITOR,
            monitor_type="pass_on_retry",
            status="active",
        )
    )
    assert counts() == {"@acme/api": (1, 1, 0, 0, 0)}


def quarantined_counts() -> dict[str, int]:
    return dict(OwnerCount.objects.exclude(quarantined=0).values_list("owner_key", "quarantined"))


def quarantined_by_test() -> dict[str, int]:
    """OwnerCount.quarantined recomputed from the tests' own flags and owner links."""
    totals: dict[str, int] = {}
    for tc in TestCase.objects.filter(quarantined=True).prefetch_related("owners"):
        for key in [o.key for o in tc.owners.all()] or [""]:
            totals[key] = totals.get(key, 0) + 1
    return totals


def monitor_event(test, when):
    deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=MONITOR, monitor_type="pass_on_retry", status="active"
        )
    )


def test_quarantined_counts_follow_the_newest_flag_from_any_event():
    web = ["@acme/web", "@acme/api"]
    change(fake_test(1, codeowners=web), at(2), "HEALTHY", "FLAKY")
    change(fake_test(2, codeowners=[]), at(2), "HEALTHY", "FLAKY")
    assert quarantined_counts() == {}
    # A monitor event (no status change) carries the flag: the owner counts follow.
    monitor_event(fake_test(1, codeowners=web, quarantined=True), at(3))
    assert quarantined_counts() == {"@acme/web": 1, "@acme/api": 1} == quarantined_by_test()
    # A late, older event with the old flag changes nothing.
    monitor_event(fake_test(1, codeowners=web, quarantined=False), at(1))
    assert quarantined_counts() == {"@acme/web": 1, "@acme/api": 1}
    # The quarantining event itself (v1 test case shape) and a test without owners.
    deliver(
        payloads.quarantining_setting_changed(
            fake_test(2, codeowners=[], quarantined=True),
            at=at(4),
            previous="none",
            updated="always_quarantine",
            actor_email="a@example.com",
            actor_name="A",
        )
    )
    assert quarantined_counts() == {"@acme/web": 1, "@acme/api": 1, "": 1} == quarantined_by_test()
    # Unquarantined, and moved to one owner, in one event.
    monitor_event(fake_test(1, codeowners=["@acme/web"], quarantined=False), at(5))
    assert quarantined_counts() == {"": 1} == quarantined_by_test()
    state = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == state


def test_an_unchanged_flag_refreshes_no_owner_rollup(django_assert_num_queries):
    """One query checks the flag against the counted one; nothing more when it agrees
    (the other: the test's quarantined since, events/rollups/quarantine.py)."""
    change(fake_test(1, quarantined=True), at(2), "HEALTHY", "FLAKY")
    stale = rollups.Stale(quarantine_sent={fake_test(1).id})
    with django_assert_num_queries(2):
        stale.refresh()


def test_demo_history_quarantined_counts_equal_the_tests(load_demo):
    load_demo(tests=40, days=60)
    assert quarantined_counts() == quarantined_by_test() and quarantined_counts()
