"""Order independence and rebuild equality, proven over generated event sequences.

Svix delivers at least once and in best-effort order. Applying the same set of events in
any order, with duplicates, must give identical state; rebuilding from the stored
deliveries must give the state that was built incrementally.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.demo import payloads
from events.models import TestCase
from tests.events.factories import deliver
from tests.events.state import projected_state, wipe

pytestmark = pytest.mark.django_db

REPOS = [
    payloads.FakeRepository(uuid.UUID(int=1001), "https://github.com/acme/one"),
    payloads.FakeRepository(uuid.UUID(int=1002), "https://github.com/acme/two"),
]
MONITORS = [(uuid.UUID(int=2001), "pass_on_retry"), (uuid.UUID(int=2002), "failure_rate")]
OWNERS = ["@acme/web", "@Acme/Web", "@acme/payments", "@acme/QA"]
STATUSES = ["HEALTHY", "FLAKY", "BROKEN"]
BASE = datetime(2026, 3, 1, tzinfo=UTC)

# Few distinct times, so that ties on event time are common.
times = st.integers(min_value=0, max_value=12).map(lambda h: BASE + timedelta(hours=h))


@st.composite
def fake_tests(draw):
    n = draw(st.integers(min_value=1, max_value=3))
    return payloads.FakeTest(
        id=uuid.UUID(int=n),
        name=draw(st.sampled_from([f"test_{n}", f"test_{n}_renamed", "tëst ünïcode"])),
        classname=draw(st.sampled_from([f"Suite{n}", ""])),
        file_path=draw(st.sampled_from([f"tests/test_{n}.py", ""])),
        repository=REPOS[n % 2],
        codeowners=draw(st.lists(st.sampled_from(OWNERS), max_size=3)),
        variant="",
        quarantined=draw(st.booleans()),
        failure_rate_last_7d=draw(st.sampled_from([0.0, 0.1, 0.5])),
        pull_requests_impacted_last_7d=draw(st.integers(0, 5)),
    )


@st.composite
def events(draw):
    test = draw(fake_tests())
    at = draw(times)
    kind = draw(st.sampled_from(["status", "status_v1", "monitor", "investigation", "quarantine"]))
    monitor_id, monitor_type = draw(st.sampled_from(MONITORS))
    if kind == "status":
        return payloads.status_changed(
            test,
            at=at,
            previous=draw(st.sampled_from(STATUSES)),
            new=draw(st.sampled_from(STATUSES)),
            monitor_id=monitor_id,
            monitor_type=monitor_type,
        )
    if kind == "status_v1":
        return payloads.status_changed_v1(
            test, at=at, previous=draw(st.sampled_from(STATUSES)), new=draw(st.sampled_from(STATUSES))
        )
    if kind == "monitor":
        payload = payloads.monitor_status_changed(
            test,
            at=at,
            monitor_id=monitor_id,
            monitor_type=monitor_type,
            status=draw(st.sampled_from(["active", "resolved"])),
            evidence={"runs": draw(st.integers(0, 9))},
        )
        if draw(st.booleans()):
            del payload["test_case"]["quarantined"]  # optional fields may be missing
        return payload
    if kind == "investigation":
        return payloads.investigation_completed(
            test,
            at=at,
            investigation_id=uuid.UUID(int=draw(st.integers(3000, 1_000_000))),
            confidence=draw(st.floats(0, 1)),
            markdown_summary="**why**",
            failure_message="boom",
            facts=[{"fact_type": "CI_LOGS", "content": "log", "confidence": 0.5}],
        )
    return payloads.quarantining_setting_changed(
        test,
        at=at,
        previous="UNSPECIFIED",
        updated=draw(st.sampled_from(["ALWAYS_QUARANTINE", "NEVER_QUARANTINE"])),
        actor_email="a@b.c",
        actor_name="A",
    )


@st.composite
def deliveries_and_reordering(draw):
    bodies = draw(st.lists(events(), min_size=1, max_size=14))
    messages = [(f"msg_{i:03d}", json.dumps(body)) for i, body in enumerate(bodies)]
    reordered = draw(st.permutations(messages))
    duplicates = draw(st.lists(st.sampled_from(messages), max_size=4))
    # Redeliveries land anywhere in the stream, including before the first delivery.
    stream = list(reordered)
    for dup in duplicates:
        stream.insert(draw(st.integers(0, len(stream))), dup)
    return messages, stream


def _deliver_all(stream):
    for msg_id, body in stream:
        deliver(body, msg_id=msg_id)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(deliveries_and_reordering())
def test_any_order_with_duplicates_gives_the_same_state(case):
    messages, stream = case
    wipe()
    _deliver_all(messages)
    in_order = projected_state()

    wipe()
    _deliver_all(stream)
    assert projected_state() == in_order


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(deliveries_and_reordering())
def test_rebuild_equals_incremental_state(case):
    _, stream = case
    wipe()
    _deliver_all(stream)
    incremental = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == incremental


def test_rebuild_keeps_triage_data(django_user_model):
    user = django_user_model.objects.create_user("triager")
    test = payloads.FakeTest(id=uuid.UUID(int=7), name="t", classname="", file_path="", repository=None)
    deliver(
        payloads.status_changed(
            test, at=BASE, previous="HEALTHY", new="FLAKY", monitor_id=MONITORS[0][0], monitor_type="x"
        )
    )
    TestCase.objects.update(
        triage_state=TestCase.Triage.INVESTIGATING, assignee=user, triage_note="race in setup"
    )
    call_command("rebuild_projections", verbosity=0)
    row = TestCase.objects.get()
    assert (row.triage_state, row.assignee, row.triage_note) == ("investigating", user, "race in setup")
    assert row.status == "FLAKY"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    deliveries_and_reordering(),
    st.integers(min_value=0, max_value=20),
    st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=5),
)
def test_any_batching_by_the_projector_gives_the_inline_state(case, inline_first, batch_sizes):
    """The projector folds a batch in memory from the stored rows of its tests: however
    the stream is cut into batches (one test many times in one batch, new and known tests
    together, some applied inline before), it ends in the state of one delivery at a time."""
    from django.test import override_settings

    from events.projection import projector

    messages, stream = case
    wipe()
    _deliver_all(messages)
    in_order = projected_state()

    wipe()
    _deliver_all(stream[:inline_first])
    with override_settings(FLAKYBOARD_DEFERRED_PROJECTION=True):
        _deliver_all(stream[inline_first:])
    sizes = iter(batch_sizes * len(stream))
    while projector.project_pending(batch_size=next(sizes, 1000)):
        pass
    assert projected_state() == in_order
