"""The alerts that come with time (the sweep): a fix verified, a quarantine ready to
release, a target missed. Each once, and only while its moment is recent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.demo import payloads
from events.models import Alert, OwnerTarget
from notifications.triggers import record_due_alerts
from tests.events.factories import MONITOR, deliver, fake_test

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(microsecond=0)


def change(test, at, previous, new):
    deliver(
        payloads.status_changed(
            test, at=at, previous=previous, new=new, monitor_id=MONITOR, monitor_type="flaky"
        )
    )


def kinds() -> list[tuple[str, str]]:
    return sorted(Alert.objects.values_list("kind", "owner_key"))


def test_a_fix_is_verified_14_days_after_it_held_once():
    test = fake_test(1)
    fixed = NOW - timedelta(days=14, minutes=5)
    change(test, fixed - timedelta(days=2), "HEALTHY", "FLAKY")
    change(test, fixed, "FLAKY", "HEALTHY")
    Alert.objects.all().delete()
    assert record_due_alerts(now=NOW) >= 1
    record_due_alerts(now=NOW + timedelta(minutes=1))  # the next sweep: no second alert
    assert Alert.objects.filter(kind=Alert.Kind.FIX_VERIFIED).count() == 1
    alert = Alert.objects.get(kind=Alert.Kind.FIX_VERIFIED)
    assert alert.moment == fixed + timedelta(days=14)


def test_a_fix_verified_long_ago_or_a_relapsed_fix_is_not_told():
    old, relapsed = fake_test(2), fake_test(3)
    change(old, NOW - timedelta(days=30), "HEALTHY", "FLAKY")
    change(old, NOW - timedelta(days=20), "FLAKY", "HEALTHY")  # verified 6 days ago: old news
    change(relapsed, NOW - timedelta(days=16), "HEALTHY", "FLAKY")
    change(relapsed, NOW - timedelta(days=14, minutes=5), "FLAKY", "HEALTHY")
    change(relapsed, NOW - timedelta(days=3), "HEALTHY", "FLAKY")  # relapsed inside 14 days
    Alert.objects.all().delete()
    record_due_alerts(now=NOW)
    assert not Alert.objects.filter(kind=Alert.Kind.FIX_VERIFIED).exists()


def test_a_quarantined_test_becomes_ready_to_release_once():
    test = fake_test(4, quarantined=True)
    healthy = NOW - timedelta(days=14, minutes=10)
    change(test, healthy - timedelta(days=3), "HEALTHY", "FLAKY")
    change(test, healthy, "FLAKY", "HEALTHY")
    Alert.objects.all().delete()
    record_due_alerts(now=NOW)
    record_due_alerts(now=NOW + timedelta(minutes=2))
    assert Alert.objects.filter(kind=Alert.Kind.READY_TO_RELEASE).count() == 1


def test_an_owner_episode_past_its_triage_and_fix_targets_is_told_per_owner(settings):
    settings.FLAKYBOARD_TARGET_TRIAGE_DAYS = 3
    settings.FLAKYBOARD_TARGET_FIX_DAYS = 14
    OwnerTarget.objects.create(owner_key="@acme/web", triage_days=1)
    late = fake_test(5, codeowners=["@acme/payments", "@acme/web"])
    change(late, NOW - timedelta(days=3, minutes=5), "HEALTHY", "FLAKY")
    Alert.objects.all().delete()
    record_due_alerts(now=NOW)
    # @acme/payments: 3 days passed 5 minutes ago; @acme/web's 1 day passed two days ago.
    assert kinds() == [(Alert.Kind.TARGET_MISSED, "@acme/payments")]
    record_due_alerts(now=NOW - timedelta(days=2, minutes=3))  # as the sweep saw it then
    assert kinds() == [(Alert.Kind.TARGET_MISSED, "@acme/payments"), (Alert.Kind.TARGET_MISSED, "@acme/web")]


def test_a_triaged_episode_misses_no_triage_target(settings, django_user_model):
    from events.triage import triage_test

    settings.FLAKYBOARD_TARGET_TRIAGE_DAYS = 3
    test = fake_test(6)
    change(test, NOW - timedelta(days=3, minutes=5), "HEALTHY", "FLAKY")
    user = django_user_model.objects.create(username="t", is_staff=True)
    from events.models import TestCase

    # Triaged a day after it started: inside the 3 days.
    triage_test(TestCase.objects.get(pk=test.id), by=user, state="investigating", at=NOW - timedelta(days=2))
    Alert.objects.all().delete()
    record_due_alerts(now=NOW)
    assert not Alert.objects.filter(kind=Alert.Kind.TARGET_MISSED).exists()
