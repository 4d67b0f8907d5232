"""An episode of a test first seen already FLAKY or BROKEN (METRICS "Episodes"): its start
is unknown, so it is shown from the test's first event ("since at least"), counts as a
fix and for relapses, and stays out of every median time to fix: overall, per owner,
over all history and over a period, with or without a repository."""

from datetime import timedelta

import pytest
from django.core.management import call_command

from dashboard.selectors import owners, status
from events.demo import payloads
from events.metrics import Period
from events.models import Episode, OwnerCount, OwnerEpisode, Repository
from tests.events.factories import MONITOR, at, deliver, fake_test
from tests.events.state import projected_state

pytestmark = pytest.mark.django_db


def change(test, when, previous, new):
    deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


@pytest.fixture
def history():
    """Test 1 is seen first turning FLAKY -> HEALTHY after 10 days (start unknown); tests
    2 and 3 go HEALTHY -> FLAKY -> HEALTHY in 2 and 4 hours."""
    seen_flaky, quick, slow = fake_test(1), fake_test(2), fake_test(3)
    change(seen_flaky, at(2), "FLAKY", "HEALTHY")
    deliver(
        payloads.monitor_status_changed(
            seen_flaky,
            at=at(2) - timedelta(days=10),
            monitor_id=MONITOR,
            monitor_type="pass_on_retry",
            status="active",
        )
    )
    change(quick, at(3), "HEALTHY", "FLAKY")
    change(quick, at(3, 2), "FLAKY", "HEALTHY")
    change(slow, at(4), "HEALTHY", "FLAKY")
    change(slow, at(4, 4), "FLAKY", "HEALTHY")
    return seen_flaky


def test_the_episode_of_a_test_first_seen_flaky_has_an_unknown_start(history):
    episode = Episode.objects.get(test_case_id=history.id)
    assert (episode.start_known, episode.seconds) == (False, None)
    assert episode.started_at == at(2) - timedelta(days=10)  # its first event: "since at least"
    assert set(
        OwnerEpisode.objects.filter(test_case_id=history.id).values_list("start_known", "seconds")
    ) == {(False, None)}
    assert Episode.objects.filter(start_known=True, seconds__isnull=False).count() == 2


@pytest.mark.parametrize("name", ["7d", "30d", "all"])
def test_medians_leave_it_out_and_fix_counts_keep_it(history, name):
    period = Period(name, at(6))
    assert status.median_time_to_fix(period=period) == timedelta(hours=3)  # (2 h + 4 h) / 2, not 10 days
    repository = Repository.objects.get().pk
    assert status.median_time_to_fix(period=period, repository=repository) == timedelta(hours=3)
    for scope in ({}, {"repository": repository}):
        rows = owners.owner_stats(period=period, **scope)
        assert {row["median_time_to_fix"] for row in rows} == {timedelta(hours=3)}
    fixes = OwnerCount.objects.values_list("fixes", "timed_fixes")
    assert {f for f, _ in fixes} == {3} and {t for _, t in fixes} == {2}


def test_a_rebuild_keeps_them(history):
    state = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == state


def test_the_test_page_shows_it_since_at_least(history, admin_client):
    page = admin_client.get(f"/tests/{history.id}/").content.decode()
    row = page[page.index("<h3>Episodes") :]
    assert "at least since</span> " + (at(2) - timedelta(days=10)).strftime("%Y-%m-%d %H:%M") in row
    assert "≥ 10" in row  # its duration is a lower bound
    quick = admin_client.get(f"/tests/{fake_test(2).id}/").content.decode()
    assert "at least since" not in quick and "≥" not in quick[quick.index("<h3>Episodes") :]
