"""A monitor pair's "active since" (docs/metrics.md "Monitors"): the first `active` event
of the unbroken run of `active` events that ends with the latest. Repeated `active`
events without a `resolved` between them do not move it; it is the same whatever the
order in which the deliveries arrive."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import MonitorEvent
from tests.events.factories import fake_test
from tests.events.state import wipe

from .conftest import monitor

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
FIRST, SECOND, THIRD = (NOW - timedelta(days=d) for d in (5, 3, 1))
URL = "/api/v1/stats/monitors/?period=all"


def active_since(api) -> list[str]:
    body = api.get(URL).json()
    assert body["active_now_total"] == len(body["active_now"])
    return [pair["since"] for pair in body["active_now"]]


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_repeated_active_events_do_not_move_active_since(api):
    test = fake_test(1)
    for when in (FIRST, SECOND, THIRD):
        monitor(test, when, "active")
    assert active_since(api) == [iso(FIRST)]


def test_a_resolved_event_starts_a_new_run(api):
    test = fake_test(1)
    monitor(test, FIRST, "active")
    monitor(test, SECOND, "resolved")
    monitor(test, THIRD, "active")
    assert active_since(api) == [iso(THIRD)]


@pytest.mark.parametrize(
    "statuses, expected",
    [(("active", "active", "active"), FIRST), (("active", "resolved", "active"), THIRD)],
    ids=["repeated", "after-resolved"],
)
def test_any_order_of_arrival_gives_the_same_active_since(api, statuses, expected):
    events = list(zip((FIRST, SECOND, THIRD), statuses, strict=True))
    for order in itertools.permutations(events):
        wipe()
        test = fake_test(1)
        for when, status in order:
            monitor(test, when, status)
        assert MonitorEvent.objects.count() == 3
        assert active_since(api) == [iso(expected)], order
