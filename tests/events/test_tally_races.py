"""Reprocessing a delivery raced with the triage service and with a status change of its
test (PostgreSQL, threads): no deadlock, and the tallies stay a count from scratch.
Before reprocess_delivery locked the delivery's tests first (LOCK ORDER 2 before 3):

reprocess_delivery locks the Delivery row, then remove_projection_of reads what the
delivery's investigation counts for (verdict_tally, its auto_outcome) and deletes the
investigation row, all BEFORE the projection locks the test row (load_tests). The
triage service (set_verdicts) locks the test row, then the investigation row. So:

* the two take the test and investigation rows in opposite orders (deadlock), and
* the tally read by remove_projection_of is read without any lock: a verdict committed
  between that read and the delete leaves the calibration tally off by one verdict.

The interleavings are forced with events (no sleeps decide the outcome)."""

import threading
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections

from events import rollups, triage
from events.demo import payloads
from events.models import CalibrationBin, Delivery, Investigation
from events.projection import apply as projection_apply
from events.projection.replay import reprocess_delivery
from events.rollups.calibration import rebuild_calibration
from tests.events.factories import at, deliver, fake_test

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

INVESTIGATION = uuid.UUID(int=0xA77AC4)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


def _investigate() -> Delivery:
    deliver(
        payloads.investigation_completed(
            fake_test(1),
            at=at(2),
            investigation_id=INVESTIGATION,
            confidence=0.75,
            markdown_summary="s",
            failure_message="f",
            facts=[{"fact_type": "flaky", "content": "c", "confidence": 0.35}],
        ),
        msg_id="msg_attack_inv",
    )
    return Delivery.objects.get(svix_id="msg_attack_inv")


def _run(target, errors, name):
    def body():
        try:
            target()
        except Exception as exc:
            errors.append((name, exc))
        finally:
            connections.close_all()

    thread = threading.Thread(target=body, name=name)
    thread.start()
    return thread


def _bins():
    """Every stored bin, even at zero verdicts when another column is not zero
    (projected_state leaves out the zero-verdict bins, which would hide confirmed = -1)."""
    return sorted(
        (of_facts, fact_type, bin_, n, confirmed, round(total, 9), round(errors, 9))
        for of_facts, fact_type, bin_, n, confirmed, total, errors in CalibrationBin.objects.values_list(
            "of_facts", "fact_type", "bin", "verdicts", "confirmed", "confidence_sum", "squared_error_sum"
        )
        if n or confirmed or round(total, 9) or round(errors, 9)
    )


def _bins_from_scratch():
    CalibrationBin.objects.all().delete()
    rebuild_calibration()
    return _bins()


def test_reprocessing_races_a_verdict_without_deadlock(monkeypatch):
    """set_verdicts holds the test row and waits for the investigation row, which
    reprocessing deleted before waiting for the test row: a cycle."""
    delivery = _investigate()
    user = get_user_model().objects.create_user("judge")
    triage_has_test = threading.Event()
    reprocess_removed = threading.Event()

    original_lock_tests = triage._lock_tests

    def lock_tests_then_wait(ids):
        original_lock_tests(ids)
        triage_has_test.set()
        reprocess_removed.wait(5)  # a fixed lock order never signals: go on

    original_load_tests = projection_apply.load_tests

    def load_tests_after_removal(fold, ids, **kwargs):
        reprocess_removed.set()  # the investigation row is deleted (locked) by now
        return original_load_tests(fold, ids, **kwargs)

    monkeypatch.setattr(triage, "_lock_tests", lock_tests_then_wait)
    monkeypatch.setattr(projection_apply, "load_tests", load_tests_after_removal)

    errors: list = []
    a = _run(lambda: triage.set_verdicts([INVESTIGATION], by=user, verdict="confirmed"), errors, "triage")
    assert triage_has_test.wait(20)
    b = _run(lambda: reprocess_delivery(Delivery.objects.get(pk=delivery.pk)), errors, "reprocess")
    a.join(60)
    b.join(60)
    assert not errors, errors
    # When PostgreSQL picks reprocessing as the deadlock's victim, its savepoint hides
    # the error: the delivery is marked failed and its investigation is gone.
    stored = Delivery.objects.get(pk=delivery.pk)
    assert (stored.outcome, stored.error) == (Delivery.Outcome.PROCESSED, "")
    assert Investigation.objects.filter(pk=INVESTIGATION).exists()


def test_reprocessing_beside_a_verdict_keeps_the_calibration_tally(monkeypatch):
    """Reprocessing reads the verdict's old value, the verdict changes and commits, then
    reprocessing deletes and rewrites the investigation: it takes away the verdict it
    read (confirmed) and adds the one now stored (rejected), on top of the triage
    service's own rejected - confirmed."""
    delivery = _investigate()
    user = get_user_model().objects.create_user("judge")
    triage.set_verdicts([INVESTIGATION], by=user, verdict="confirmed")
    triage_ready = threading.Event()
    reprocess_read = threading.Event()

    original_add = triage.add_calibration

    def add_then_wait(deltas):
        original_add(deltas)
        triage_ready.set()
        reprocess_read.wait(5)  # commit after reprocessing read the tally (or 5 s: a fix makes it wait)

    original_tally = rollups.verdict_tally

    def tally_and_signal(ids=None):
        result = original_tally(ids)
        if threading.current_thread().name == "reprocess":
            reprocess_read.set()
        return result

    monkeypatch.setattr(triage, "add_calibration", add_then_wait)
    monkeypatch.setattr(rollups, "verdict_tally", tally_and_signal)

    errors: list = []
    a = _run(lambda: triage.set_verdicts([INVESTIGATION], by=user, verdict="rejected"), errors, "triage")
    assert triage_ready.wait(20)
    b = _run(lambda: reprocess_delivery(Delivery.objects.get(pk=delivery.pk)), errors, "reprocess")
    a.join(60)
    b.join(60)
    assert not errors, errors
    assert Investigation.objects.get().verdict.verdict == "rejected"
    kept = _bins()
    assert kept == _bins_from_scratch()


def test_a_replacement_naming_another_test_beside_a_verdict_keeps_the_calibration_tally(monkeypatch):
    """An investigation redelivered under a smaller svix id that names ANOTHER test: the
    projection locks the new test's row, not the one the triage service locks (the
    investigation's stored test), and reads the verdict (verdict_tally(replaced))
    before it locks the investigation row (its UPDATE). A verdict committed in between
    is taken away as it was and added as it is now: the tally is off."""
    _investigate()  # msg_attack_inv, on test 1
    user = get_user_model().objects.create_user("judge")
    triage.set_verdicts([INVESTIGATION], by=user, verdict="confirmed")
    triage_ready = threading.Event()
    projection_read = threading.Event()

    original_add = triage.add_calibration

    def add_then_wait(deltas):
        original_add(deltas)
        triage_ready.set()
        projection_read.wait(5)  # a fixed lock order never signals: go on

    original_tally = rollups.verdict_tally

    def tally_and_signal(ids=None):
        result = original_tally(ids)
        if threading.current_thread().name == "deliver":
            projection_read.set()
        return result

    monkeypatch.setattr(triage, "add_calibration", add_then_wait)
    monkeypatch.setattr(rollups, "verdict_tally", tally_and_signal)

    def redeliver():
        deliver(
            payloads.investigation_completed(
                fake_test(2),
                at=at(2),
                investigation_id=INVESTIGATION,
                confidence=0.25,
                markdown_summary="s",
                failure_message="f",
                facts=[],
            ),
            msg_id="msg_attack_ina",  # smaller than msg_attack_inv: it replaces it
        )

    errors: list = []
    a = _run(lambda: triage.set_verdicts([INVESTIGATION], by=user, verdict="rejected"), errors, "triage")
    assert triage_ready.wait(20)
    b = _run(redeliver, errors, "deliver")
    a.join(60)
    b.join(60)
    assert not errors, errors
    investigation = Investigation.objects.get()
    assert investigation.confidence == 0.25 and investigation.verdict.verdict == "rejected"
    kept = _bins()
    assert kept == _bins_from_scratch()


def test_reprocessing_beside_a_status_change_keeps_the_outcome_tally(monkeypatch):
    """The same unlocked read for OutcomeTally: reprocessing reads the investigation's
    stored outcome ("not fixed") before a delivery closing its episode commits ("fixed"),
    then deletes and rewrites it: it takes away "not fixed" a second time."""
    from events import rollups as rollups_package
    from events.models import OutcomeTally
    from events.rollups import refresh as refresh_module
    from events.rollups.outcomes import rebuild_auto_outcomes
    from tests.events.factories import MONITOR

    def change(when, previous, new, msg_id):
        deliver(
            payloads.status_changed(
                fake_test(1), at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="x"
            ),
            msg_id=msg_id,
        )

    change(at(1), "HEALTHY", "FLAKY", "msg_attack_s1")
    delivery = _investigate()  # day 2, inside the open episode: not fixed
    assert Investigation.objects.get().auto_outcome == "not_fixed"
    delivery_ready = threading.Event()
    reprocess_read = threading.Event()

    original_add = refresh_module.add_outcome_tally

    def add_then_wait(deltas):
        original_add(deltas)
        if threading.current_thread().name == "deliver":
            delivery_ready.set()
            reprocess_read.wait(5)  # a fixed lock order never signals: go on

    original_counted = rollups_package.counted_outcomes

    def counted_and_signal(rows):
        result = original_counted(rows)
        if threading.current_thread().name == "reprocess":
            reprocess_read.set()
        return result

    monkeypatch.setattr(refresh_module, "add_outcome_tally", add_then_wait)
    monkeypatch.setattr(rollups_package, "counted_outcomes", counted_and_signal)

    errors: list = []
    a = _run(lambda: change(at(5), "FLAKY", "HEALTHY", "msg_attack_s2"), errors, "deliver")
    assert delivery_ready.wait(20)
    b = _run(lambda: reprocess_delivery(Delivery.objects.get(pk=delivery.pk)), errors, "reprocess")
    a.join(60)
    b.join(60)
    assert not errors, errors
    kept = sorted(
        OutcomeTally.objects.exclude(investigations=0).values_list("band", "outcome", "investigations")
    )
    OutcomeTally.objects.all().delete()
    rebuild_auto_outcomes()
    assert kept == sorted(
        OutcomeTally.objects.exclude(investigations=0).values_list("band", "outcome", "investigations")
    )


def test_reprocessing_an_investigation_beside_a_status_change_does_not_deadlock(monkeypatch):
    """No triage at all: reprocessing an investigation deletes its row (locked), then
    waits for the test row (load_tests); a status change of that test holds the test
    row and rewrites the investigation's auto_outcome (refresh_auto_outcomes), waiting
    for the deleted row. A cycle between two projection writers, against the LOCK ORDER
    (rows of level 3 before the test row of level 2)."""
    from events.rollups import refresh as refresh_module
    from tests.events.factories import MONITOR

    def change(when, previous, new, msg_id):
        deliver(
            payloads.status_changed(
                fake_test(1), at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="x"
            ),
            msg_id=msg_id,
        )

    change(at(1), "HEALTHY", "FLAKY", "msg_attack_s1")
    delivery = _investigate()
    assert Investigation.objects.get().auto_outcome == "not_fixed"
    removed = threading.Event()
    outcomes_next = threading.Event()

    original_load_tests = projection_apply.load_tests

    def load_tests_after_removal(fold, ids, **kwargs):
        if threading.current_thread().name == "reprocess":
            removed.set()
            outcomes_next.wait(5)  # a fixed lock order never signals: go on
        return original_load_tests(fold, ids, **kwargs)

    original_refresh = refresh_module.refresh_auto_outcomes

    def refresh_signalled(test_ids, tally):
        if threading.current_thread().name == "deliver":
            outcomes_next.set()
        return original_refresh(test_ids, tally)

    monkeypatch.setattr(projection_apply, "load_tests", load_tests_after_removal)
    monkeypatch.setattr(refresh_module, "refresh_auto_outcomes", refresh_signalled)

    errors: list = []
    b = _run(lambda: reprocess_delivery(Delivery.objects.get(pk=delivery.pk)), errors, "reprocess")
    assert removed.wait(20)
    a = _run(lambda: change(at(5), "FLAKY", "HEALTHY", "msg_attack_s2"), errors, "deliver")
    a.join(60)
    b.join(60)
    assert not errors, errors
    stored = Delivery.objects.get(pk=delivery.pk)
    assert (stored.outcome, stored.error) == (Delivery.Outcome.PROCESSED, "")
    closing = Delivery.objects.get(svix_id="msg_attack_s2")
    assert (closing.outcome, closing.error) == (Delivery.Outcome.PROCESSED, "")
    assert Investigation.objects.get().auto_outcome == "fixed"
