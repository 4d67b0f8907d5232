"""Concurrent verdicts on one investigation against PostgreSQL (SQLite serialises
writers): a double click on "Confirmed", or two API clients at once. Every call must
succeed, one verdict row must result, and the history must record the change once."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from events.demo import payloads
from events.models import Investigation, InvestigationVerdict, TriageEvent
from events.triage import set_verdict, set_verdicts
from tests.events.factories import at, deliver, fake_test
from tests.events.test_concurrency import _race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")


def investigations(n: int) -> list[Investigation]:
    for i in range(n):
        deliver(
            payloads.investigation_completed(
                fake_test(i + 1),
                at=at(1) + timedelta(hours=i),
                investigation_id=uuid.UUID(int=0xDD00 + i),
                confidence=0.5,
                markdown_summary="s",
                failure_message="f",
                facts=[],
            )
        )
    return list(Investigation.objects.order_by("pk"))


def test_the_same_verdict_at_once_is_set_once():
    (investigation,) = investigations(1)
    users = [get_user_model().objects.create_user(f"u{i}", is_staff=True) for i in range(6)]
    for round_ in range(3):
        verdict = ("confirmed", "rejected", "confirmed")[round_]
        results = _race(lambda i, v=verdict: set_verdict(investigation, by=users[i], verdict=v), len(users))
        assert sorted(map(bool, results)) == [False] * (len(users) - 1) + [True]
        assert InvestigationVerdict.objects.get().verdict == verdict
        assert TriageEvent.objects.count() == round_ + 1


def test_overlapping_bulk_verdicts_do_not_fail():
    rows = investigations(4)
    user = get_user_model().objects.create_user("bulk", is_staff=True)
    selections = [rows[:3], rows[1:], rows[::2], list(reversed(rows))]
    _race(lambda i: set_verdicts([r.pk for r in selections[i]], by=user, verdict="rejected"), 4)
    assert InvestigationVerdict.objects.filter(verdict="rejected").count() == 4
    assert TriageEvent.objects.count() == 4
