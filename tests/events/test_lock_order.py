"""Concurrent deliveries of different tests that share owners, days, monitors and a new
repository, posted through the real receiver (PostgreSQL): no deadlock, no non-2xx
answer, one row per repository, owner and test, and the state a rebuild computes.

The lock order every writing transaction follows is the contract at the top of
events/rollups/shared.py; these tests are what would catch a transaction that breaks it.
"""

import json
import random
import threading
import time
import uuid
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections
from django.test import Client

from events.demo import payloads
from events.models import Delivery, Owner, Repository, TestCase
from events.projection import projector
from events.projection.apply import TestCreatedConcurrently
from tests.conftest import WEBHOOK_URL, svix_headers
from tests.events.factories import at, deliver
from tests.events.state import projected_state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

SENDERS = 8
DELIVERIES_PER_SENDER = 40
OWNERS = ["@acme/alpha", "@acme/beta", "@acme/gamma"]
NEW_REPO = payloads.FakeRepository(
    uuid.UUID("5a1d0c3e-0000-4000-8000-00000000c0de"), "https://github.com/acme/new"
)
LEGACY_URL = "https://github.com/acme/legacy"  # named by v1 payloads only: by URL
MONITORS = [uuid.UUID(int=0xA1), uuid.UUID(int=0xA2)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")


def _deadlocks() -> int:
    """Deadlocks PostgreSQL has detected in this database so far (cumulative stats)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _test(n: int, owners: list[str]) -> payloads.FakeTest:
    legacy = n >= 8  # two tests whose repository is known by URL only
    return payloads.FakeTest(
        id=uuid.UUID(int=0x7E57_0000 + n),
        name=f"test_lock_{n}",
        classname=f"tests.lock.Test{n}",
        file_path=f"tests/lock/test_{n}.py",
        repository=payloads.FakeRepository(uuid.UUID(int=0), LEGACY_URL) if legacy else NEW_REPO,
        codeowners=owners,
    )


def _payload(rng: random.Random, sender: int, i: int) -> dict:
    """One delivery of the mix: status changes, monitor events, investigations and
    quarantine changes of ten tests sharing three owners (each test's owners change now
    and then), over six days, so that transactions share owner, day and monitor rows."""
    n = rng.randrange(10)
    owners = sorted(rng.sample(OWNERS, rng.choice([1, 1, 2, 3])))
    test = _test(n, owners)
    test.quarantined = rng.random() < 0.3
    moment = at(1 + rng.randrange(6), rng.randrange(24)).replace(minute=sender, second=i % 60)
    statuses = ["HEALTHY", "FLAKY", "BROKEN"]
    if n >= 8:
        previous, new = rng.sample(statuses, 2)
        return payloads.status_changed_v1(test, at=moment, previous=previous, new=new)
    kind = rng.random()
    if kind < 0.4:
        previous, new = rng.sample(statuses, 2)
        return payloads.status_changed(
            test,
            at=moment,
            previous=previous,
            new=new,
            monitor_id=rng.choice(MONITORS),
            monitor_type="pass_on_retry",
        )
    if kind < 0.75:
        return payloads.monitor_status_changed(
            test,
            at=moment,
            monitor_id=rng.choice(MONITORS),
            monitor_type="pass_on_retry",
            status=rng.choice(["active", "active", "resolved"]),
        )
    if kind < 0.9:
        return payloads.investigation_completed(
            test,
            at=moment,
            investigation_id=uuid.UUID(int=(sender << 16) + i),
            confidence=rng.random(),
            markdown_summary="",
            failure_message="",
            facts=[{"fact_type": rng.choice(["A", "B"]), "content": "", "confidence": rng.random()}],
        )
    return payloads.quarantining_setting_changed(
        test,
        at=moment,
        previous="ALWAYS_QUARANTINE",
        updated="NEVER_QUARANTINE",
        actor_email="a@example.com",
        actor_name="A",
    )


def _plan(seed: int) -> list[list[tuple[str, str]]]:
    """Per sender, its (svix id, body) list. Every sender starts with a first delivery
    of a different test, so new tests, owners and both repositories are created racing."""
    rng = random.Random(seed)
    plans = []
    for sender in range(SENDERS):
        bodies = []
        for i in range(DELIVERIES_PER_SENDER):
            payload = _payload(rng, sender, i)
            bodies.append((f"msg_lock_{seed}_{sender}_{i}", json.dumps(payload)))
        plans.append(bodies)
    return plans


def _send_all(plans, *, alongside=None) -> tuple[Counter, float]:
    """Every sender posts its deliveries through the receiver, all starting together;
    `alongside(stop)` runs in its own thread meanwhile. Returns the answers by status."""
    barrier = threading.Barrier(len(plans) + (1 if alongside else 0))
    answers: Counter = Counter()
    errors: list = []
    stop = threading.Event()

    def send(bodies):
        client = Client()
        try:
            barrier.wait()
            for msg_id, body in bodies:
                response = client.post(
                    WEBHOOK_URL,
                    data=body,
                    content_type="application/json",
                    headers=svix_headers(body, msg_id=msg_id),
                )
                answers[response.status_code] += 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def beside():
        try:
            barrier.wait()
            alongside(stop)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(bodies,)) for bodies in plans]
    if alongside:
        threads.append(threading.Thread(target=beside))
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads[: len(plans)]:
        t.join(timeout=300)
    stop.set()
    for t in threads[len(plans) :]:
        t.join(timeout=300)
    assert not errors, errors
    return answers, time.monotonic() - started


def _assert_one_row_each_and_rebuild_equal():
    assert Repository.objects.count() == 2, list(Repository.objects.values_list("trunk_id", "html_url"))
    assert Owner.objects.count() == len(OWNERS)
    assert TestCase.objects.count() == 10
    assert not Delivery.objects.exclude(outcome="processed").exists()
    incremental = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == incremental


def test_concurrent_deliveries_of_tests_sharing_owners_never_deadlock():
    """8 senders x 40 deliveries, inline projection."""
    plans = _plan(seed=12)
    before = _deadlocks()
    answers, seconds = _send_all(plans)
    deadlocks = _deadlocks() - before
    print(
        f"\n{sum(answers.values())} deliveries in {seconds:.1f} s, answers {dict(answers)}, deadlocks {deadlocks}"
    )
    assert answers == Counter({200: SENDERS * DELIVERIES_PER_SENDER})
    assert deadlocks == 0
    _assert_one_row_each_and_rebuild_equal()


def test_inline_receiver_and_projectors_side_by_side_never_deadlock(settings):
    """Half of the deliveries stored as pending first; then the projector applies them
    (two of them, batches of 20) while 8 senders post the other half inline."""
    plans = _plan(seed=13)
    pending = [bodies[: DELIVERIES_PER_SENDER // 2] for bodies in plans]
    inline = [bodies[DELIVERIES_PER_SENDER // 2 :] for bodies in plans]
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    for bodies in pending:
        for msg_id, body in bodies:
            assert deliver(body, msg_id=msg_id).delivery.outcome == "pending"
    settings.FLAKYBOARD_DEFERRED_PROJECTION = False
    failures = []
    retried = []

    def project(stop):
        def drain():
            try:
                while projector.pending_count():
                    try:
                        projector.project_pending(batch_size=20)
                    except OperationalError as exc:  # a deadlock: the batch rolled back
                        failures.append(exc)
                        connections.close_all()
                    except TestCreatedConcurrently:
                        # Three tries in a row found a claimed test locked by a sender
                        # (rare): the batch rolled back, nothing lost; the project_pending
                        # command retries so too.
                        retried.append(1)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)
            finally:
                connections.close_all()

        side = threading.Thread(target=drain)
        side.start()
        drain()
        side.join()

    before = _deadlocks()
    answers, seconds = _send_all(inline, alongside=project)
    deadlocks = _deadlocks() - before
    print(
        f"\n{sum(answers.values())} inline deliveries and {SENDERS * DELIVERIES_PER_SENDER // 2} pending"
        f" in {seconds:.1f} s, answers {dict(answers)}, deadlocks {deadlocks}, projector failures {len(failures)},"
        f" batches given up after three tries {len(retried)}"
    )
    assert answers == Counter({200: SENDERS * DELIVERIES_PER_SENDER // 2})
    assert not failures, failures
    assert deadlocks == 0
    _assert_one_row_each_and_rebuild_equal()


@pytest.mark.parametrize("shape", ["v2", "v1"])
def test_concurrent_first_deliveries_create_one_repository_owner_and_test(shape):
    """Twenty first deliveries naming one new repository (by Trunk id, or by URL only in
    v1), one new owner and one new test, racing."""
    repo = payloads.FakeRepository(uuid.UUID(int=0xBEEF), f"https://github.com/acme/race-{shape}")
    test = payloads.FakeTest(
        id=uuid.UUID(int=0xFACE),
        name="test_race",
        classname="tests.Race",
        file_path="tests/test_race.py",
        repository=repo,
        codeowners=["@acme/Racers"],
    )
    plans = []
    for i in range(20):
        moment = at(2, i)
        if shape == "v1":
            payload = payloads.status_changed_v1(test, at=moment, previous="HEALTHY", new="FLAKY")
        else:
            payload = payloads.monitor_status_changed(
                test, at=moment, monitor_id=MONITORS[0], monitor_type="x", status="active"
            )
        plans.append([(f"msg_first_{shape}_{i}", json.dumps(payload))])
    before = _deadlocks()
    answers, _ = _send_all(plans)
    assert answers == Counter({200: 20})
    assert _deadlocks() == before
    assert Repository.objects.count() == 1
    assert Owner.objects.count() == 1
    assert TestCase.objects.count() == 1
    incremental = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == incremental
