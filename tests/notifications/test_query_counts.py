"""The schedule's work is a bounded number of queries whatever the number of alerts: one
read of the subscriptions, one of the alerts, one of their tests' owners and repositories,
one insert, one update (dispatch); grouping a burst reads its notices and tests once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.demo import payloads
from events.models import Alert
from notifications.dispatch import dispatch_alerts, group_notices
from notifications.models import Subscription
from tests.events.factories import MONITOR, deliver, fake_test

pytestmark = pytest.mark.django_db


def alerts(first: int, count: int) -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    for n in range(first, first + count):
        test = fake_test(n, codeowners=["@acme/web", f"@acme/team{n % 3}"])
        deliver(
            payloads.status_changed(
                test, at=at, previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="x"
            )
        )


def queries(work) -> int:
    with CaptureQueriesContext(connection) as captured:
        work()
    return len(captured)


@pytest.mark.parametrize("subscriptions", [1, 5])
def test_dispatch_and_grouping_do_not_grow_with_the_alerts(subscriptions):
    for i in range(subscriptions):
        Subscription.objects.create(name=f"s{i}", destination="json://127.0.0.1:9/x", owners="@acme/*")
    later = datetime.now(UTC) + timedelta(minutes=5)
    alerts(1, 3)
    few = queries(lambda: dispatch_alerts(now=later))
    few_grouped = queries(lambda: group_notices(now=later))
    alerts(100, 30)
    assert Alert.objects.filter(dispatched_at__isnull=True).count() == 30
    many = queries(lambda: dispatch_alerts(now=later))
    many_grouped = queries(lambda: group_notices(now=later))
    assert many == few
    assert many_grouped == few_grouped
