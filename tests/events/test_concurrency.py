"""Concurrent deliveries against the real database server (PostgreSQL).

Svix may deliver the same message twice at the same moment (a retry racing a slow
first attempt). Exactly one delivery row must result, every request must get a 2xx, and
the event must be applied once. SQLite serialises writers, so this needs PostgreSQL.
"""

import contextlib
import json
import threading
import uuid

import pytest
from django.core.management import call_command
from django.db import connection, connections

from events.demo import payloads
from events.models import Delivery, StatusChange, TestCase
from tests.events.factories import MONITOR, at, deliver, fake_test
from tests.events.state import projected_state, wipe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")


def _race(work, n: int):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run(i):
        try:
            barrier.wait()
            results.append(work(i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def test_concurrent_deliveries_of_one_svix_id_store_exactly_one_row():
    body = json.dumps(
        payloads.status_changed(
            fake_test(1), at=at(3), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="x"
        )
    )
    for round_ in range(5):
        msg_id = f"msg_race_{round_}"
        results = _race(lambda i, msg_id=msg_id: deliver(body, msg_id=msg_id).result.value, 8)
        assert sorted(results).count("stored") == 1
        assert sorted(results).count("redelivery") == 7
        delivery = Delivery.objects.get(svix_id=msg_id)
        assert delivery.redeliveries == 7
    assert StatusChange.objects.count() == 5


def test_concurrent_first_events_of_one_test_all_apply():
    """Different messages about a brand-new test racing to create it: none may fail."""
    test = fake_test(42, id=uuid.UUID(int=42))

    def work(i):
        payload = payloads.monitor_status_changed(
            test, at=at(1, i), monitor_id=MONITOR, monitor_type="pass_on_retry", status="active"
        )
        return deliver(payload, msg_id=f"msg_new_{i}").delivery.outcome

    results = _race(work, 8)
    assert results == ["processed"] * 8
    row = TestCase.objects.get()
    assert row.last_event_at == at(1, 7) and row.first_event_at == at(1, 0)


def test_concurrent_events_of_one_test_and_pair_keep_the_rollups_exact():
    """Status changes and monitor events of one test (and one monitor pair) racing each
    other: each refresh must see the others' committed events, so the rollups end up
    what a rebuild from the stored history computes."""
    test = fake_test(7, id=uuid.UUID(int=7))
    statuses = ["FLAKY", "HEALTHY", "BROKEN", "HEALTHY", "FLAKY", "HEALTHY"]

    def work(i):
        if i % 2:
            payload = payloads.status_changed(
                test,
                at=at(2, i),
                previous="HEALTHY",
                new=statuses[i % 6],
                monitor_id=MONITOR,
                monitor_type="x",
            )
        else:
            status = "active" if i % 4 == 0 else "resolved"
            payload = payloads.monitor_status_changed(
                test, at=at(2, i), monitor_id=MONITOR, monitor_type="pass_on_retry", status=status
            )
        return deliver(payload, msg_id=f"msg_rollup_{i}").delivery.outcome

    for _ in range(3):
        wipe()
        assert _race(work, 12) == ["processed"] * 12
        incremental = projected_state()
        call_command("rebuild_projections", verbosity=0)
        assert projected_state() == incremental


def test_concurrent_monitor_events_keep_the_monitor_rollups_exact():
    """Events of one pair, and of other pairs of the same monitor on the same day, racing:
    the pair lock and the adding upsert of the day counts must lose no event (the state
    equals what a rebuild computes from the stored events)."""
    from django.core.management import call_command

    from events.models import MonitorDayCount, MonitorState
    from tests.events.state import projected_state

    shared = fake_test(50, id=uuid.UUID(int=50))

    def work(i):
        test = shared if i % 2 else fake_test(60 + i, id=uuid.UUID(int=60 + i))
        status = "active" if i % 4 != 3 else "resolved"
        payload = payloads.monitor_status_changed(
            test, at=at(2, i), monitor_id=MONITOR, monitor_type="pass_on_retry", status=status
        )
        return deliver(payload, msg_id=f"msg_monitor_{i}").delivery.outcome

    assert _race(work, 8) == ["processed"] * 8
    assert sum(MonitorDayCount.objects.values_list("count", flat=True)) == 8
    assert MonitorState.objects.get(test_case_id=shared.id).activations == 2
    state = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == state


def _shared_owners(payload):
    """Every test owned by the same two teams (a monorepo): every batch updates the same
    owner rollup rows, the worst case for concurrent projectors."""
    if isinstance(payload, dict):
        return {
            k: (["@mono/platform", "@mono/web"] if k == "codeowners" else _shared_owners(v))
            for k, v in payload.items()
        }
    if isinstance(payload, list):
        return [_shared_owners(v) for v in payload]
    return payload


@pytest.mark.parametrize("monorepo", [False, True], ids=["demo-owners", "two-shared-owners"])
@pytest.mark.parametrize("projectors", [1, 2, 4])
def test_projectors_running_side_by_side_apply_each_pending_delivery_once(settings, projectors, monorepo):
    """Deferred projection with 1, 2 and 4 projectors at once: SKIP LOCKED gives each its
    own deliveries, the LOCK ORDER (events/rollups/shared.py) keeps their batches from
    deadlocking, and the state is the inline one, which is also what a rebuild gives."""
    from django.db import OperationalError

    from events import demo
    from events.projection import projector
    from tests.conftest import DEMO_NOW

    messages = demo.generate_history(now=DEMO_NOW, tests=12, days=30, seed=9, repositories=2)
    plan = demo.plan_deliveries(messages, seed=9, id_prefix="msg_two_projectors_")
    if monorepo:
        plan = [(msg_id, _shared_owners(payload)) for msg_id, payload in plan]
    for msg_id, payload in plan:
        deliver(json.dumps(payload), msg_id=msg_id)
    inline = projected_state()
    wipe()

    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    for msg_id, payload in plan:
        deliver(json.dumps(payload), msg_id=msg_id)

    deadlocks = []

    def drain(i):
        taken = 0
        while projector.pending_count():
            try:
                taken += projector.project_pending(batch_size=5)
            except OperationalError as exc:  # a deadlock: the batch rolled back and stays pending
                deadlocks.append(str(exc))
                connections.close_all()
        return taken

    taken = _race(drain, projectors)
    assert deadlocks == []
    assert projected_state() == inline
    assert sum(taken) == sum(1 for _ in Delivery.objects.filter(outcome="processed"))
    assert not Delivery.objects.filter(outcome="pending").exists()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == inline


def test_concurrent_investigations_of_one_day_keep_the_day_rollups_exact():
    """Investigations of one day racing, some of them two copies of one investigation
    (the smaller svix id wins, moving it between two days): each refresh locks the day's
    row before aggregating the day, so the last one sees every committed investigation
    and the rollups equal what a rebuild computes from the stored rows."""
    from events.models import Investigation, InvestigationDay

    def work(i):
        investigation_id = uuid.UUID(int=700 + i % 6)  # i and i + 6: two copies of one
        payload = payloads.investigation_completed(
            fake_test(80 + i % 3, id=uuid.UUID(int=80 + i % 3)),
            at=at(2 if i < 6 else 3, i),
            investigation_id=investigation_id,
            confidence=i / 12,
            markdown_summary="",
            failure_message="",
            facts=[{"fact_type": f"TYPE_{i % 4}", "content": "", "confidence": i / 24}],
        )
        # Odd pairs: the copy dated on the later day has the smaller svix id and wins.
        first, second = ("b", "a") if i % 2 else ("a", "b")
        msg_id = f"msg_inv_{i % 6}_{first if i < 6 else second}"
        return deliver(payload, msg_id=msg_id).delivery.outcome

    for _ in range(3):
        wipe()
        assert _race(work, 12) == ["processed"] * 12
        assert Investigation.objects.count() == 6
        assert sorted(InvestigationDay.objects.exclude(count=0).values_list("count", flat=True)) == [3, 3]
        state = projected_state()
        call_command("rebuild_projections", verbosity=0)
        assert projected_state() == state


def _lock_waits() -> list[str]:
    """What the other backends of this database wait for (pg_stat_activity's wait_event of
    type Lock: a transaction of ours blocked behind one that has not committed yet). Asked
    inside a transaction too: PostgreSQL keeps a transaction's first look at
    pg_stat_activity unless cleared."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT wait_event FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def _until(condition, seconds: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _held_open_until_another_waits(
    monkeypatch, module, name: str, first_done: threading.Event
) -> tuple[list[int], list[str]]:
    """Patch module.name so that its first call (in the first thread) signals
    `first_done` once it returned, then keeps its transaction open until the second
    thread waits for one of its locks (or 3 s: then it never will). Returns the calls
    made (their threads) and what the second thread was found waiting for."""
    real = getattr(module, name)
    calls: list[int] = []
    waits: list[str] = []

    def patched(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(threading.get_ident())
        if len(calls) == 1:
            first_done.set()
            _until(_lock_waits, 3.0)
            waits.extend(_lock_waits())
        return result

    monkeypatch.setattr(module, name, patched)
    return calls, waits


def test_one_delivery_reprocessed_twice_at_once_is_applied_once(monkeypatch):
    """An admin's reprocess action and `reprocess_deliveries` (or two admins) on the same
    delivery: each removes what the delivery projected and applies it again. The second
    must wait for the first and then remove what the first applied, or the delivery's
    history rows are doubled."""
    from events.projection import replay

    body = json.dumps(
        payloads.status_changed(
            fake_test(9), at=at(3), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="x"
        )
    )
    deliver(body, msg_id="msg_reprocessed_twice")
    delivery = Delivery.objects.get(svix_id="msg_reprocessed_twice")
    state = projected_state()
    first_applied = threading.Event()
    _held_open_until_another_waits(monkeypatch, replay, "apply_now", first_applied)

    def work(i):
        if i == 1:
            assert first_applied.wait(10)
        return replay.reprocess_delivery(Delivery.objects.get(pk=delivery.pk))

    assert _race(work, 2) == ["processed", "processed"]
    assert StatusChange.objects.filter(delivery=delivery).count() == 1
    assert projected_state() == state


def test_a_pending_delivery_reprocessed_while_the_projector_applies_it_is_applied_once(settings, monkeypatch):
    """The admin's reprocess action on a pending delivery that the projector's batch holds:
    reprocessing waits for the batch, then replaces what it applied."""
    from events.projection import projector, replay

    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    body = json.dumps(
        payloads.status_changed(
            fake_test(10), at=at(3), previous="HEALTHY", new="BROKEN", monitor_id=MONITOR, monitor_type="x"
        )
    )
    deliver(body, msg_id="msg_pending_reprocessed")
    delivery = Delivery.objects.get(svix_id="msg_pending_reprocessed")
    assert delivery.outcome == "pending"
    batch_applied = threading.Event()
    _held_open_until_another_waits(monkeypatch, projector, "apply_events", batch_applied)

    def work(i):
        if i == 0:
            return projector.project_pending()
        assert batch_applied.wait(10)
        return replay.reprocess_delivery(Delivery.objects.get(pk=delivery.pk))

    assert _race(work, 2) == [1, "processed"]
    assert StatusChange.objects.filter(delivery=delivery).count() == 1
    assert Delivery.objects.get(pk=delivery.pk).outcome == "processed"
    assert TestCase.objects.get(pk=uuid.UUID(int=10)).status == "BROKEN"


def test_two_projectors_creating_one_new_test_wait_for_each_other_instead_of_retrying(settings, monkeypatch):
    """Two projectors' batches concern the same new test. The second waits for the first
    on its claim (claim_tests: an advisory lock) and then finds the first's row. Before
    the claim, both inserted the test and the second rolled back to retry
    (TestCreatedConcurrently): two projectors whose batches straddle the same tests could
    do so on every try, and project_pending gave up after three."""
    from events.projection import projector

    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    test = fake_test(11)
    for n, (previous, new) in enumerate([("HEALTHY", "FLAKY"), ("FLAKY", "BROKEN")]):
        body = payloads.status_changed(
            test, at=at(3, n), previous=previous, new=new, monitor_id=MONITOR, monitor_type="x"
        )
        deliver(json.dumps(body), msg_id=f"msg_new_test_{n}")
    first_done = threading.Event()
    calls, waits = _held_open_until_another_waits(monkeypatch, projector, "apply_events", first_done)

    def work(i):
        if i == 1:
            assert first_done.wait(10)
        return projector.project_pending(batch_size=1)

    assert _race(work, 2) == [1, 1]
    assert waits == ["advisory"]
    assert len(calls) == 2, "a batch was applied again: it rolled back and retried"
    assert TestCase.objects.get(pk=uuid.UUID(int=11)).status == "BROKEN"
    state = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == state


def test_a_claimed_test_found_locked_is_not_waited_for():
    """After its claims a transaction never waits for a test's row (the row's holder may
    wait for those claims: a deadlock). A test created meanwhile and locked by another
    transaction (say the triage service) is TestCreatedConcurrently, which the callers
    retry (the receiver, project_pending). Shown on claim_new_tests itself: the window
    between a claim's previous holder's commit and the NOWAIT look cannot be timed."""
    from django.db import transaction

    from events.projection.apply import TestCreatedConcurrently, claim_new_tests

    body = payloads.status_changed(
        fake_test(12), at=at(3), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="x"
    )
    deliver(json.dumps(body), msg_id="msg_claimed_locked")
    test_id = uuid.UUID(int=12)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic():
                list(TestCase.objects.filter(pk=test_id).select_for_update())
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(10)
        with pytest.raises(TestCreatedConcurrently), transaction.atomic():
            claim_new_tests([test_id])
    finally:
        release.set()
        holder.join()
    with transaction.atomic():
        assert claim_new_tests([test_id])[test_id]["id"] == test_id


def test_a_redelivery_while_a_projector_holds_the_row_is_answered_at_once(settings, caplog):
    """A projector's batch holds its deliveries' rows until it commits (seconds under
    load). A redelivery of one of them is answered as a redelivery at once instead of
    waiting for that lock until the statement timeout (503); its row's counter misses it
    and the log says so. Once the lock is gone, redeliveries are counted again."""
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    body = json.dumps(
        payloads.status_changed(
            fake_test(1), at=at(3), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="x"
        )
    )
    assert deliver(body, msg_id="msg_locked").result.value == "stored"
    # The projector's claim: FOR UPDATE, held for its batch.
    with _held_elsewhere("SELECT id FROM events_delivery WHERE svix_id = 'msg_locked' FOR UPDATE"):
        assert deliver(body, msg_id="msg_locked").result.value == "redelivery"
        assert "while a projector applies it" in caplog.text
        assert Delivery.objects.get(svix_id="msg_locked").redeliveries == 0
    assert deliver(body, msg_id="msg_locked").result.value == "redelivery"
    assert Delivery.objects.get(svix_id="msg_locked").redeliveries == 1


def test_a_busy_table_lock_is_no_redelivery_of_a_message_never_stored(settings):
    """Waiting for a lock that is not the stored row's (a migration holding the table)
    says nothing about the message: counted as a redelivery only if it is stored."""
    from events.receiver.receive import _count_redelivery

    with _held_elsewhere("LOCK TABLE events_delivery IN SHARE MODE"):
        assert _count_redelivery("msg_never_stored") is False


@contextlib.contextmanager
def _held_elsewhere(sql: str):
    """Another connection runs `sql` in a transaction and holds its locks until the block ends."""
    from django.db import transaction

    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
                holding.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        yield
    finally:
        release.set()
        holder.join(30)


def test_the_rebuild_replaying_one_delivery_at_a_time_claims_no_test(settings, monkeypatch):
    """The rebuild's fallback (the bulk path refused a row) replays every delivery in its
    one transaction, after the TRUNCATE that keeps other writers out. Claims there would
    hold one entry of PostgreSQL's shared lock table per test until the commit: past a
    few thousand tests "out of shared memory", the deliveries marked failed and the rebuild
    rolled back. It claims none."""
    from django.db import DatabaseError

    from events.projection import rebuild

    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    for n in range(1, 301):
        body = payloads.status_changed(
            fake_test(n), at=at(3), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="x"
        )
        deliver(json.dumps(body), msg_id=f"msg_fallback_{n}")
    held = []
    real_replay = rebuild.replay

    def refused(*args, **kwargs):
        raise DatabaseError("a row the database refuses")

    def replay_then_count_claims(*args, **kwargs):
        outcomes = real_replay(*args, **kwargs)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'"
            )
            held.append(cursor.fetchone()[0])
        return outcomes

    monkeypatch.setattr(rebuild, "project_deliveries", refused)
    monkeypatch.setattr(rebuild, "replay", replay_then_count_claims)
    rebuild.rebuild_projections()
    assert held == [0]
    assert TestCase.objects.count() == 300
    assert not Delivery.objects.filter(outcome="failed").exists()
