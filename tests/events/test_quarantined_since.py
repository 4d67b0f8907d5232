"""TestCase.quarantined_since (METRICS "Quarantined since"): the event time of the first
event of the test's current unbroken run of events carrying `quarantined: true`, through
the real receiver, in and out of order, and the same after a rebuild."""

import itertools
import uuid
from datetime import datetime

import pytest

from events.demo import payloads
from events.models import TestCase
from events.projection.rebuild import rebuild_projections
from tests.events.factories import MONITOR, at, deliver, fake_test

pytestmark = pytest.mark.django_db


def monitor_event(when: datetime, quarantined: bool | None, *, n: int = 1) -> dict:
    """A monitor event of test n carrying `quarantined` (None: the payload omits it)."""
    payload = payloads.monitor_status_changed(
        fake_test(n, quarantined=bool(quarantined)),
        at=when,
        monitor_id=MONITOR,
        monitor_type="pass_on_retry",
        status="active",
    )
    if quarantined is None:
        del payload["test_case"]["quarantined"]
    return payload


def status_event(when: datetime, quarantined: bool, *, n: int = 1) -> dict:
    return payloads.status_changed(
        fake_test(n, quarantined=quarantined),
        at=when,
        previous="HEALTHY",
        new="FLAKY",
        monitor_id=MONITOR,
        monitor_type="pass_on_retry",
    )


def since(n: int = 1) -> datetime | None:
    return TestCase.objects.get(id=uuid.UUID(int=n)).quarantined_since


def deliver_all(events: list[dict]) -> None:
    for event in events:
        deliver(event)


def rebuilt_since(n: int = 1) -> datetime | None:
    rebuild_projections()
    return since(n)


def test_not_quarantined_has_no_since():
    deliver(monitor_event(at(1), False))
    assert since() is None
    assert rebuilt_since() is None


def test_first_event_of_the_run_in_order():
    deliver_all([monitor_event(at(1), False), monitor_event(at(2), True), monitor_event(at(3), True)])
    assert since() == at(2)
    assert rebuilt_since() == at(2)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))), ids=lambda o: "".join(map(str, o)))
def test_any_order_gives_the_start_of_the_current_run(order):
    # true at 1, false at 2, then the current run: true at 3 and 5.
    events = [
        status_event(at(1), True),
        monitor_event(at(2), False),
        monitor_event(at(3), True),
        status_event(at(5), True),
    ]
    deliver_all([events[i] for i in order])
    assert TestCase.objects.get().quarantined is True
    assert since() == at(3)
    assert rebuilt_since() == at(3)


def test_earlier_true_arriving_late_moves_the_start_back():
    deliver_all([monitor_event(at(5), True), monitor_event(at(3), True)])
    assert since() == at(3)
    deliver(monitor_event(at(1), True))
    assert since() == at(1)


def test_false_after_the_run_clears_it():
    deliver_all([monitor_event(at(2), True), monitor_event(at(3), True)])
    assert since() == at(2)
    deliver(monitor_event(at(4), False))
    test = TestCase.objects.get()
    assert test.quarantined is False and test.quarantined_since is None
    assert rebuilt_since() is None


def test_late_false_inside_the_run_moves_the_start_to_the_next_true():
    deliver_all([monitor_event(at(2), True), monitor_event(at(4), True), monitor_event(at(6), True)])
    assert since() == at(2)
    # A false event of day 3 arrives late: the run now starts at day 4.
    deliver(monitor_event(at(3), False))
    assert TestCase.objects.get().quarantined is True
    assert since() == at(4)
    assert rebuilt_since() == at(4)


def test_late_false_before_the_run_changes_nothing():
    deliver_all([monitor_event(at(2), True), monitor_event(at(4), True)])
    deliver(monitor_event(at(1), False))
    assert since() == at(2)


def test_events_without_the_flag_do_not_break_the_run():
    deliver_all(
        [
            monitor_event(at(2), True),
            monitor_event(at(3), None),
            monitor_event(at(4), True),
            monitor_event(at(5), None),
        ]
    )
    test = TestCase.objects.get()
    assert test.quarantined is True
    assert test.quarantined_since == at(2)
    assert rebuilt_since() == at(2)


def test_quarantine_setting_change_starts_a_run():
    test = fake_test(1, quarantined=True)
    deliver(monitor_event(at(1), False))
    deliver(
        payloads.quarantining_setting_changed(
            test,
            at=at(3),
            previous="AUTO_QUARANTINE",
            updated="ALWAYS_QUARANTINE",
            actor_email="ann@example.com",
            actor_name="Ann",
            reason="noisy",
        )
    )
    assert TestCase.objects.get().quarantined is True
    assert since() == at(3)
    assert rebuilt_since() == at(3)


def test_tests_are_independent():
    deliver_all(
        [
            monitor_event(at(2), True, n=1),
            monitor_event(at(3), False, n=2),
            monitor_event(at(4), True, n=2),
            monitor_event(at(5), False, n=1),
        ]
    )
    assert since(1) is None
    assert since(2) == at(4)
    rebuild_projections()
    assert since(1) is None and since(2) == at(4)
