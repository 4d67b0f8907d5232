"""Deferred projection (FLAKYBOARD_DEFERRED_PROJECTION): the receiver stores deliveries as
pending in one statement; `project_pending` applies them in batches and must end in
exactly the state the inline receiver gives."""

import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from events import demo
from events.demo import payloads
from events.models import Delivery, Monitor, StatusChange, TestCase
from events.projection import projector
from events.projection.fold import Fold
from events.rollups import refresh as rollups_refresh
from events.trunk import parsing
from tests.conftest import DEMO_NOW
from tests.events.factories import at, deliver, fake_test
from tests.events.state import projected_state, wipe
from tests.projection_faults import projection_of

pytestmark = pytest.mark.django_db

MONITOR = uuid.UUID("7f1d7a52-54a4-4c2b-a0de-6a4f2a9a0c11")


@pytest.fixture
def deferred(settings):
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True


def demo_plan(*, tests=25, days=45, seed=5):
    messages = demo.generate_history(now=DEMO_NOW, tests=tests, days=days, seed=seed, repositories=2)
    return demo.plan_deliveries(messages, seed=seed, id_prefix=f"msg_p{seed}_")


def deliver_all(plan):
    for msg_id, payload in plan:
        deliver(json.dumps(payload), msg_id=msg_id)


def payloads_status(test, *, previous, new, day):
    return payloads.status_changed(
        test, at=at(day), previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
    )


def outcomes() -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in Delivery.objects.values_list("outcome", flat=True):
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: no savepoint
def test_the_deferred_receiver_stores_in_one_statement_and_applies_nothing(deferred):
    body = json.dumps(payloads_status(fake_test(1), previous="HEALTHY", new="FLAKY", day=3))
    with CaptureQueriesContext(connection) as queries:
        result = deliver(body, msg_id="msg_deferred_1")
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert result.delivery.outcome == Delivery.Outcome.PENDING
    assert Delivery.objects.get(svix_id="msg_deferred_1").processed_at is None
    assert not TestCase.objects.exists() and not StatusChange.objects.exists()


def test_the_receiver_answers_pending_and_invalid_bodies_are_still_classified_at_once(deferred, signed_post):
    response = signed_post(payloads_status(fake_test(1), previous="HEALTHY", new="FLAKY", day=3))
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    response = signed_post({"type": "v2.test_case.status_changed", "timestamp": "not a time"})
    assert response.json()["status"] == "invalid"
    assert projector.pending_count() == 1


@pytest.mark.parametrize("batch_size", [1, 7, 200])
def test_projecting_pending_deliveries_gives_exactly_the_inline_state(settings, batch_size):
    plan = demo_plan()
    deliver_all(plan)
    inline = projected_state()
    inline_outcomes = outcomes()
    wipe()

    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    deliver_all(plan)
    assert set(outcomes()) <= {"pending", "invalid", "ignored"}
    while projector.project_pending(batch_size=batch_size):
        pass
    assert projected_state() == inline
    assert outcomes() == inline_outcomes
    assert not Delivery.objects.filter(outcome="processed", processed_at__isnull=True).exists()


def test_a_redelivery_of_a_pending_delivery_is_counted_and_applied_once(deferred):
    body = json.dumps(payloads_status(fake_test(1), previous="HEALTHY", new="BROKEN", day=4))
    deliver(body, msg_id="msg_twice")
    deliver(body, msg_id="msg_twice")
    assert projector.project_pending() == 1
    assert Delivery.objects.get(svix_id="msg_twice").redeliveries == 1
    assert StatusChange.objects.count() == 1
    assert projector.project_pending() == 0


def test_a_delivery_that_fails_to_apply_is_marked_failed_and_the_rest_of_its_batch_lands(
    deferred, monkeypatch, caplog
):
    tests = [fake_test(n) for n in range(1, 6)]
    for n, test in enumerate(tests):
        deliver(json.dumps(payloads_status(test, previous="HEALTHY", new="FLAKY", day=2)), msg_id=f"msg_{n}")

    def broken_for_one(fold, event, delivery_id, key):
        if key[1] == "msg_2":
            raise ValueError("a projection bug")
        Fold.status_changed(fold, event, delivery_id, key)

    with projection_of(parsing.StatusChanged, broken_for_one):
        assert projector.project_pending(batch_size=50) == 5
    failed = Delivery.objects.get(svix_id="msg_2")
    assert failed.outcome == Delivery.Outcome.FAILED
    assert "ValueError: a projection bug" in failed.error
    assert outcomes() == {"processed": 4, "failed": 1}
    # The failed one's projection rolled back whole, the others' landed.
    assert sorted(TestCase.objects.values_list("name", flat=True)) == sorted(
        t.name for i, t in enumerate(tests) if i != 2
    )
    assert "projection failed for delivery msg_2" in caplog.text


def test_a_database_error_keeps_the_whole_batch_pending(deferred, monkeypatch):
    for n in range(3):
        deliver(json.dumps(payloads_status(fake_test(n), previous="HEALTHY", new="FLAKY", day=2)))

    def deadlock(batch, stale):
        raise OperationalError("deadlock detected")

    monkeypatch.setattr(projector, "apply_events", deadlock)
    with pytest.raises(OperationalError):
        projector.project_pending()
    assert outcomes() == {"pending": 3}


def test_the_command_drains_the_queue_and_reports_it(deferred):
    deliver_all(demo_plan(tests=6, days=10, seed=3))
    waiting = projector.pending_count()
    assert waiting > 0
    out = io.StringIO()
    call_command("project_pending", "--batch-size=4", stdout=out)
    assert f"Applied {waiting} pending deliveries." in out.getvalue()
    assert projector.pending_count() == 0
    assert Monitor.objects.exists()


def test_batches_refresh_each_test_rollup_once(deferred, monkeypatch):
    test = fake_test(1)
    for day, (previous, new) in enumerate(
        [("HEALTHY", "FLAKY"), ("FLAKY", "HEALTHY"), ("HEALTHY", "BROKEN")]
    ):
        deliver(json.dumps(payloads_status(test, previous=previous, new=new, day=day + 2)))
    refreshed = []
    # Patched where Stale.refresh looks it up.
    refresh_tests = rollups_refresh.refresh_tests
    monkeypatch.setattr(
        rollups_refresh,
        "refresh_tests",
        lambda ids, shared, **kw: refreshed.append(sorted(map(str, ids))) or refresh_tests(ids, shared, **kw),
    )
    assert projector.project_pending() == 3
    assert refreshed == [[str(test.id)]]


def one_delivery(kind: str, n: int) -> dict:
    """A delivery of type `kind` about test n (its own monitor or investigation)."""
    test = fake_test(n)
    if kind == "status":
        return payloads_status(test, previous="HEALTHY", new="FLAKY", day=2)
    if kind == "monitor":
        return payloads.monitor_status_changed(
            test, at=at(2), monitor_id=uuid.UUID(int=n), monitor_type="failure_count", status="active"
        )
    if kind == "investigation":
        return payloads.investigation_completed(
            test,
            at=at(2),
            investigation_id=uuid.UUID(int=n),
            confidence=0.7,
            markdown_summary="",
            failure_message="",
            facts=[{"fact_type": "CI_LOGS", "content": "x", "confidence": 0.5}],
        )
    return payloads.quarantining_setting_changed(
        test, at=at(2), previous="ALWAYS", updated="NEVER", actor_email="a@b.c", actor_name="A"
    )


@pytest.mark.parametrize("kind", ["status", "monitor", "investigation", "quarantine"])
def test_a_batch_runs_the_same_statements_whatever_its_size(deferred, kind):
    """The projector's cost is statements, not rows: a batch of 40 deliveries about 40
    new tests (test rows, owner links, history, rollups) runs as many as a batch of 4."""
    deliver(json.dumps(one_delivery(kind, 1)))  # the repository and owners exist from now on
    projector.project_pending()
    counts = []
    for size, offset in ((4, 100), (40, 200)):
        for n in range(offset, offset + size):
            deliver(json.dumps(one_delivery(kind, n)))
        with CaptureQueriesContext(connection) as queries:
            assert projector.project_pending(batch_size=100) == size
        counts.append(len(queries))
    assert counts[0] == counts[1] < 45  # the investigation kind runs 40 on PostgreSQL


def test_a_rebuild_applies_pending_deliveries_too(settings):
    plan = demo_plan(tests=8, days=14, seed=4)
    deliver_all(plan)
    inline = projected_state()
    wipe()
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    deliver_all(plan)
    call_command("rebuild_projections", verbosity=0, stdout=io.StringIO())
    assert projector.pending_count() == 0
    assert projected_state() == inline


def test_the_projector_yields_to_a_burst_and_works_flat_out_otherwise():
    # Arrivals outpace it: it works a quarter of the time (waits 3x its batch time).
    assert projector.pause_after_batch(applied=200, arrived=900, batch_seconds=0.4) == pytest.approx(1.2)
    # Keeping up with a burst (500 a second arrived while it worked): it still yields.
    assert projector.pause_after_batch(applied=1000, arrived=500, batch_seconds=1.0) == pytest.approx(3.0)
    # Trunk's own trickle, or catching up once the burst is over: no wait.
    assert projector.pause_after_batch(applied=200, arrived=10, batch_seconds=0.4) == 0
    assert projector.pause_after_batch(applied=200, arrived=0, batch_seconds=0.4) == 0
