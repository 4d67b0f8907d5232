"""No double send under concurrency, on PostgreSQL (SQLite serialises writers): two
projectors applying one backlog record one alert per episode start; concurrent schedulers
make one notice per (subscription, alert) and one message per burst; concurrent workers
given one message send it once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from events.demo import payloads
from events.models import Alert
from events.projection import projector
from notifications import sending
from notifications.dispatch import tick
from notifications.models import Message, Notice, Subscription
from tests.events.factories import MONITOR, deliver, fake_test
from tests.events.test_concurrency import _race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")


def backlog(tests: int) -> None:
    """Each test turns FLAKY a minute ago, delivered twice under two svix ids (Trunk sent
    it twice), plus a FLAKY -> BROKEN inside the episode."""
    now = datetime.now(UTC)
    for n in range(1, tests + 1):
        test = fake_test(n, codeowners=["@acme/web"])
        flaky = payloads.status_changed(
            test,
            at=now - timedelta(minutes=2),
            previous="HEALTHY",
            new="FLAKY",
            monitor_id=MONITOR,
            monitor_type="x",
        )
        deliver(json.dumps(flaky), msg_id=f"msg_a_{n}")
        deliver(json.dumps(flaky), msg_id=f"msg_b_{n}")
        broken = payloads.status_changed(
            test,
            at=now - timedelta(minutes=1),
            previous="FLAKY",
            new="BROKEN",
            monitor_id=MONITOR,
            monitor_type="x",
        )
        deliver(json.dumps(broken), msg_id=f"msg_c_{n}")


def test_two_projectors_on_one_backlog_record_one_alert_per_episode(settings):
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    backlog(30)
    assert not Alert.objects.exists()

    def drain(_):
        while projector.project_pending(batch_size=7):
            pass

    _race(drain, 2)
    assert projector.pending_count() == 0
    assert Alert.objects.count() == 30
    assert set(Alert.objects.values_list("kind", flat=True)) == {Alert.Kind.EPISODE_STARTED}


def test_concurrent_schedulers_and_workers_send_each_burst_once(receiver, settings):
    settings.FLAKYBOARD_NOTIFY_GROUP_SECONDS = 0
    receiver.ok("/a")
    receiver.ok("/b")
    Subscription.objects.create(name="a", destination=receiver.url("json", "/a"), owners="@acme/web")
    Subscription.objects.create(name="b", destination=receiver.url("json", "/b"))
    backlog(12)
    later = datetime.now(UTC) + timedelta(seconds=5)
    _race(lambda _: tick(now=later), 4)
    assert Notice.objects.count() == 24
    assert Notice.objects.filter(message__isnull=True).count() == 0
    messages = list(Message.objects.values_list("pk", flat=True))
    assert len(messages) == 2
    # Every message given to four workers at once (duplicate tasks): each sent once.
    outcomes = _race(lambda i: sending.attempt(messages[i % 2]), 4)
    assert sorted(outcomes).count(Message.State.SENT) == 2
    assert len(receiver.posts("/a")) == 1 and len(receiver.posts("/b")) == 1
    assert set(Message.objects.values_list("state", flat=True)) == {Message.State.SENT}
