"""Alerts recorded by live projection (the receiver, the projector): a test starting an
episode, once, and only while the change is recent; never from a late delivery, a
rebuild or a reprocess."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from events.demo import payloads
from events.models import Alert, Delivery
from events.projection.rebuild import rebuild_projections
from events.projection.replay import reprocess_delivery
from tests.events.factories import MONITOR, deliver, fake_test

pytestmark = pytest.mark.django_db


def ago(**delta) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def change(test, at, previous, new, **kw):
    return payloads.status_changed(
        test, at=at, previous=previous, new=new, monitor_id=MONITOR, monitor_type="flaky", **kw
    )


def test_a_recent_turn_to_flaky_records_one_alert_with_its_facts():
    test = fake_test(1)
    deliver(change(test, ago(minutes=2), "HEALTHY", "FLAKY"), msg_id="msg_a")
    deliver(change(test, ago(minutes=2), "HEALTHY", "FLAKY"), msg_id="msg_a")  # Svix retry: same id
    deliver(change(test, ago(minutes=2), "HEALTHY", "FLAKY"), msg_id="msg_b")  # same change, other id
    deliver(change(test, ago(minutes=1), "FLAKY", "BROKEN"))  # continues the episode
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.EPISODE_STARTED
    assert alert.test_case_id == test.id
    assert alert.facts["status"] == "FLAKY"
    assert alert.facts["relapse"] is False and alert.facts["fix_relapsed"] is False


def test_a_relapse_within_the_verification_window_says_so():
    test = fake_test(2)
    deliver(change(test, ago(days=10), "HEALTHY", "FLAKY"))
    deliver(change(test, ago(days=5), "FLAKY", "HEALTHY"))
    assert not Alert.objects.exists()  # both old when they arrived
    deliver(change(test, ago(minutes=3), "HEALTHY", "BROKEN"))
    alert = Alert.objects.get()
    assert alert.facts["relapse"] is True and alert.facts["fix_relapsed"] is True
    assert alert.facts["status"] == "BROKEN"


def test_a_late_delivery_records_nothing(settings):
    settings.FLAKYBOARD_NOTIFY_MAX_AGE_MINUTES = 60
    deliver(change(fake_test(3), ago(minutes=61), "HEALTHY", "FLAKY"))
    deliver(change(fake_test(4), ago(minutes=59), "HEALTHY", "FLAKY"))
    assert list(Alert.objects.values_list("test_case_id", flat=True)) == [uuid.UUID(int=4)]


def test_a_late_older_change_does_not_alert_for_an_episode_already_told():
    test = fake_test(5)
    deliver(change(test, ago(minutes=5), "HEALTHY", "FLAKY"))
    # A late, older change inside the same episode: the open episode did not start anew.
    deliver(change(test, ago(minutes=10), "HEALTHY", "FLAKY"))
    assert Alert.objects.count() <= 2
    # Whatever it recorded is one alert per episode start, and the latest start is told.
    starts = set(Alert.objects.values_list("moment", flat=True))
    assert len(starts) == Alert.objects.count()


def test_an_episode_told_once_when_its_start_arrives_after_its_middle():
    test = fake_test(10)
    deliver(change(test, ago(minutes=1), "FLAKY", "BROKEN"))  # first seen already FLAKY
    deliver(change(test, ago(minutes=2), "HEALTHY", "FLAKY"))  # then the change that began it
    assert Alert.objects.count() == 1


def test_a_new_episode_after_a_fix_inside_one_batch_is_told(settings):
    test = fake_test(11)
    deliver(change(test, ago(minutes=10), "HEALTHY", "FLAKY"))
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    deliver(change(test, ago(minutes=5), "FLAKY", "HEALTHY"))
    deliver(change(test, ago(minutes=4), "HEALTHY", "BROKEN"))
    call_command("project_pending", verbosity=0)
    assert sorted(Alert.objects.values_list("facts__status", flat=True)) == ["BROKEN", "FLAKY"]


def test_an_episode_that_ended_in_the_same_batch_is_not_told():
    test = fake_test(6)
    deliver(change(test, ago(minutes=5), "FLAKY", "HEALTHY"))  # first seen FLAKY, then fixed
    assert not Alert.objects.exists()


def test_rebuild_and_reprocess_record_nothing_and_keep_what_was_recorded():
    test = fake_test(7)
    deliver(change(test, ago(minutes=2), "HEALTHY", "FLAKY"))
    assert Alert.objects.count() == 1
    Alert.objects.all().delete()
    rebuild_projections()
    assert not Alert.objects.exists()
    for delivery in Delivery.objects.all():
        reprocess_delivery(delivery)
    assert not Alert.objects.exists()


def test_alerts_survive_a_rebuild():
    deliver(change(fake_test(8), ago(minutes=2), "HEALTHY", "FLAKY"))
    rebuild_projections()
    assert Alert.objects.count() == 1


def test_the_deferred_projector_records_alerts(settings):
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    deliver(change(fake_test(9), ago(minutes=2), "HEALTHY", "FLAKY"))
    assert not Alert.objects.exists()
    call_command("project_pending", verbosity=0)
    assert Alert.objects.count() == 1


def test_the_demos_live_alert_goes_through_the_receiver():
    for n in range(1, 4):
        deliver(change(fake_test(20 + n), ago(days=3), "FLAKY", "HEALTHY"))
    call_command("demo_alert", "--tests", "2", verbosity=0)
    assert Alert.objects.filter(kind=Alert.Kind.EPISODE_STARTED).count() == 2
    assert Delivery.objects.filter(svix_id__startswith="msg_demo_alert_").count() == 2
