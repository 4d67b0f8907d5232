"""The investigation rollups (InvestigationDay, FactDayCount:
events/rollups/investigations.py) equal a recompute from the Investigation and
InvestigationFact rows after every path that writes or removes them: new investigations,
a second delivery of one investigation (the smaller svix id wins, possibly moving it to
another day), redelivery, reprocessing (also of a delivery that now projects another
day, or nothing), and the rebuilds (all projections, or these rollups alone)."""

import json
import uuid
from collections import defaultdict
from datetime import UTC

import pytest
from django.core.management import call_command

from events import rollups
from events.delivery_log import delivery_changes_allowed
from events.demo import payloads
from events.metrics import HISTOGRAM_BINS
from events.models import Delivery, FactDayCount, Investigation, InvestigationDay, InvestigationFact
from events.projection.replay import reprocess_delivery
from events.rollups import BIN_FIELDS
from events.trunk import parsing
from tests.events.factories import at, deliver, fake_test
from tests.events.state import projected_state
from tests.projection_faults import failing

pytestmark = pytest.mark.django_db


def investigation(test, when, n: int, confidence: float, facts=(("CI_LOGS", 0.5),)) -> dict:
    return payloads.investigation_completed(
        test,
        at=when,
        investigation_id=uuid.UUID(int=n),
        confidence=confidence,
        markdown_summary="",
        failure_message="",
        facts=[{"fact_type": t, "content": "", "confidence": c} for t, c in facts],
    )


def recomputed() -> tuple[dict, dict]:
    """(day -> (count, confidence sum, bins)), ((day, fact type) -> (count, rated, sum)),
    in Python from every investigation and fact."""
    days: dict = defaultdict(lambda: [0, 0.0, [0] * 10])
    day_of = {}
    for pk, occurred_at, confidence in Investigation.objects.values_list("id", "occurred_at", "confidence"):
        day = day_of[pk] = occurred_at.astimezone(UTC).date()
        row = days[day]
        row[0] += 1
        row[1] += confidence
        for i, (lo, hi) in enumerate(HISTOGRAM_BINS):
            row[2][i] += confidence >= lo and (hi is None or confidence < hi)
    facts: dict = defaultdict(lambda: [0, 0, 0.0])
    for investigation_id, fact_type, confidence in InvestigationFact.objects.values_list(
        "investigation_id", "fact_type", "confidence"
    ):
        row = facts[(day_of[investigation_id], fact_type)]
        row[0] += 1
        if confidence is not None:
            row[1] += 1
            row[2] += confidence
    return (
        {day: (n, pytest.approx(total), bins) for day, (n, total, bins) in days.items()},
        {key: (n, rated, pytest.approx(total)) for key, (n, rated, total) in facts.items()},
    )


def stored() -> tuple[dict, dict]:
    days = {
        day: (n, total, list(bins))
        for day, n, total, *bins in InvestigationDay.objects.exclude(count=0).values_list(
            "day", "count", "confidence_sum", *BIN_FIELDS
        )
    }
    facts = {
        (day, fact_type): (n, rated, total)
        for day, fact_type, n, rated, total in FactDayCount.objects.values_list(
            "day", "fact_type", "count", "confidence_count", "confidence_sum"
        )
    }
    return days, facts


def assert_exact():
    assert stored() == recomputed()


def test_new_investigations_keep_their_days_exact():
    t1, t2 = fake_test(1), fake_test(2)
    deliver(investigation(t1, at(3, 1), 1, 0.0, [("CI_LOGS", 0.5), ("GIT_BLAME", None)]))
    assert_exact()
    deliver(investigation(t2, at(3, 23), 2, 0.1, [("CI_LOGS", 1.0)]))
    deliver(investigation(t1, at(4), 3, 1.0, []))  # midnight: the new day; no facts
    deliver(investigation(t2, at(4, 5), 4, 0.9, [("GIT_BLAME", None), ("GIT_BLAME", None)]))
    deliver(investigation(t2, at(6, 5), 5, 0.79999))
    assert_exact()
    days, facts = stored()
    assert days[at(3).date()] == (2, pytest.approx(0.1), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    assert days[at(4).date()] == (2, pytest.approx(1.9), [0] * 9 + [2])
    assert facts[(at(3).date(), "CI_LOGS")] == (2, 2, 1.5)
    assert facts[(at(3).date(), "GIT_BLAME")] == (1, 0, 0.0)
    assert facts[(at(4).date(), "GIT_BLAME")] == (2, 0, 0.0)
    assert (at(4).date(), "CI_LOGS") not in facts


@pytest.mark.parametrize("smaller_first", [True, False])
def test_the_copy_with_the_smaller_svix_id_wins_and_may_move_the_investigation_to_another_day(smaller_first):
    test = fake_test(1)
    deliver(investigation(test, at(9), 50, 0.2))  # another investigation on the later day
    kept = ("msg_a", investigation(test, at(5, 3), 7, 0.95, [("CI_LOGS", 0.25), ("FLAKY_HISTORY", 1.0)]))
    replaced = ("msg_b", investigation(test, at(9, 4), 7, 0.3, [("GIT_BLAME", 0.75)]))
    for msg_id, payload in [kept, replaced] if smaller_first else [replaced, kept]:
        deliver(payload, msg_id=msg_id)
        assert_exact()
    assert Investigation.objects.get(pk=uuid.UUID(int=7)).delivery.svix_id == "msg_a"
    days, facts = stored()
    assert days == {
        at(5).date(): (1, 0.95, [0] * 9 + [1]),
        at(9).date(): (1, 0.2, [0, 0, 1] + [0] * 7),
    }
    assert set(facts) == {
        (at(5).date(), "CI_LOGS"),
        (at(5).date(), "FLAKY_HISTORY"),
        (at(9).date(), "CI_LOGS"),
    }
    state = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == state


def test_a_redelivery_changes_nothing():
    payload = investigation(fake_test(1), at(3), 1, 0.5)
    deliver(payload, msg_id="msg_once")
    before = stored()
    assert deliver(payload, msg_id="msg_once").result.value == "redelivery"
    assert stored() == before == recomputed()


def test_reprocessing_removes_and_adds_the_days_of_the_delivery():
    test = fake_test(1)
    deliver(investigation(test, at(3), 1, 0.5), msg_id="msg_1")
    deliver(investigation(test, at(3, 6), 2, 0.7, [("GIT_BLAME", 0.1)]), msg_id="msg_2")
    delivery = Delivery.objects.get(svix_id="msg_2")
    before = stored()
    reprocess_delivery(delivery)
    assert stored() == before == recomputed()
    # The stored body now says another day (as a parser change could): the old day loses
    # the investigation, the new one gets it.
    delivery.body = json.dumps(investigation(test, at(8), 2, 0.7, [("GIT_BLAME", 0.1)]))
    with delivery_changes_allowed():
        delivery.save(update_fields=["body"])
    reprocess_delivery(delivery)
    assert_exact()
    assert stored()[0][at(8).date()][0] == 1 and stored()[0][at(3).date()][0] == 1
    # ... or projects nothing any more: its day is refreshed all the same.
    delivery.body = "not json"
    with delivery_changes_allowed():
        delivery.save(update_fields=["body"])
    assert reprocess_delivery(delivery) == Delivery.Outcome.INVALID
    assert_exact()
    assert at(8).date() not in stored()[0]


def test_reprocessing_a_delivery_whose_projection_fails_refreshes_the_removed_day(monkeypatch):
    test = fake_test(1)
    deliver(investigation(test, at(3), 1, 0.5), msg_id="msg_1")
    delivery = Delivery.objects.get(svix_id="msg_1")

    with failing(RuntimeError("projection bug"), parsing.InvestigationCompleted):
        assert reprocess_delivery(delivery) == Delivery.Outcome.FAILED
    assert not Investigation.objects.exists()
    assert stored() == ({}, {}) == recomputed()


def test_rebuilds_give_what_the_projections_keep(load_demo):
    load_demo(tests=25, days=40)
    assert InvestigationDay.objects.count() > 10 and FactDayCount.objects.exists()
    assert_exact()
    state = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == state
    InvestigationDay.objects.all().delete()
    FactDayCount.objects.all().delete()
    rollups.rebuild_investigation_rollups()
    assert projected_state() == state


def test_deferred_projector_batches_keep_the_days_exact(settings):
    from events.projection.projector import project_pending

    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    test = fake_test(1)
    for n in range(6):
        deliver(investigation(test, at(3 + n % 3, n), n + 1, n / 6), msg_id=f"msg_{n:02d}")
    deliver(investigation(test, at(1), 1, 0.9), msg_id="msg_00a")  # replaced copy, later svix id
    deliver(investigation(test, at(2), 2, 0.9), msg_id="msg_00")  # a redelivery
    assert not InvestigationDay.objects.exists()
    assert project_pending(batch_size=100) == 7
    assert_exact()
    assert sum(InvestigationDay.objects.values_list("count", flat=True)) == 6
