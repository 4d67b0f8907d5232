"""Concurrent triage of the same tests against PostgreSQL (SQLite serialises writers): a
double click on "Investigating", or two API clients at once. Every call must succeed,
and the history and the admin log must record each change once."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db import connection

from events.demo import payloads
from events.models import TestCase, TriageEvent
from events.triage import triage_test, triage_tests
from tests.events.factories import MONITOR, at, deliver, fake_test
from tests.events.test_concurrency import _race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")


def make_tests(n: int) -> list[TestCase]:
    for i in range(n):
        deliver(
            payloads.status_changed(
                fake_test(i + 1),
                at=at(1) + timedelta(hours=i),
                previous="HEALTHY",
                new="FLAKY",
                monitor_id=MONITOR,
                monitor_type="x",
            )
        )
    return list(TestCase.objects.order_by("pk"))


def test_the_same_triage_at_once_is_recorded_once():
    (test,) = make_tests(1)
    users = [get_user_model().objects.create_user(f"u{i}", is_staff=True) for i in range(8)]
    states = ("investigating", "fixed", "investigating")
    for round_, state in enumerate(states):
        results = _race(
            lambda i, s=state: triage_test(TestCase.objects.get(pk=test.pk), by=users[i], state=s),
            len(users),
        )
        assert sorted(results) == [[]] * (len(users) - 1) + [["triage_state"]]
        assert TestCase.objects.get(pk=test.pk).triage_state == state
        assert TriageEvent.objects.count() == round_ + 1
        assert LogEntry.objects.filter(object_id=str(test.pk)).count() == round_ + 1


def test_the_same_bulk_triage_in_opposite_orders_neither_deadlocks_nor_repeats():
    """Two tests in one `triage_tests` call, raced with the selection in the opposite
    order: the locks are taken in pk order, so neither waits on the other for ever."""
    rows = make_tests(2)
    users = [get_user_model().objects.create_user(f"u{i}", is_staff=True) for i in range(8)]
    ids = [r.pk for r in rows]
    selections = [
        TestCase.objects.filter(pk__in=ids).order_by("pk"),
        TestCase.objects.filter(pk__in=ids).order_by("-pk"),
    ]
    states = ("investigating", "fixed", "wont_fix", "new")
    for round_, state in enumerate(states):
        results = _race(
            lambda i, s=state: triage_tests(selections[i % 2].all(), by=users[i], state=s, via="API"),
            len(users),
        )
        assert sum(r.changed for r in results) == 2
        assert sum(r.unchanged for r in results) == 2 * len(users) - 2
        assert set(TestCase.objects.values_list("triage_state", flat=True)) == {state}
        assert TriageEvent.objects.count() == 2 * (round_ + 1)
