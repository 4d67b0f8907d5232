"""What a crash, a stall, a hostile stored value or a change of mind must not do: send a
message twice, resend a deleted message's alerts, stop the schedule, or lose an alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db.models import ProtectedError

from events.demo import payloads
from events.models import Alert, OwnerTarget
from notifications import dispatch, sending
from notifications.admin import MessageAdmin
from notifications.dispatch import STUCK_AFTER, requeue_overdue, tick
from notifications.models import Message, Notice, Subscription
from notifications.routing import owner_matches
from notifications.triggers import record_due_alerts
from tests.events.factories import MONITOR, deliver, fake_test

pytestmark = pytest.mark.django_db(transaction=True)


def turn_flaky(n: int, **overrides) -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    deliver(
        payloads.status_changed(
            fake_test(n, **overrides),
            at=at,
            previous="HEALTHY",
            new="FLAKY",
            monitor_id=MONITOR,
            monitor_type="x",
        )
    )


def later(minutes: float = 2) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def run_workers() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)


@pytest.fixture
def subscription(receiver):
    receiver.ok("/team")
    return Subscription.objects.create(name="team", destination=receiver.url("json", "/team"))


def test_a_worker_that_stalled_past_its_claim_does_not_overwrite_the_takeover(
    subscription, receiver, monkeypatch
):
    turn_flaky(1)
    tick(now=later())
    message = Message.objects.get()
    real_send = sending.send
    calls = []

    def stalling_send(url, content):
        calls.append(url)
        if len(calls) == 1:
            # While this worker hangs, the schedule finds the send stuck and another worker
            # takes it over and sends it.
            requeue_overdue(now=later(STUCK_AFTER.total_seconds() / 60 + 1))
            assert sending.attempt(message.pk, now=later(STUCK_AFTER.total_seconds() / 60 + 1)) == "sent"
            raise sending.SendFailed("timed out")
        real_send(url, content)

    monkeypatch.setattr(sending, "send", stalling_send)
    assert sending.attempt(message.pk) == Message.State.PENDING  # its failure is not recorded
    message.refresh_from_db()
    assert (message.state, message.last_error) == (Message.State.SENT, "")
    run_workers()
    assert len(receiver.posts("/team")) == 1


def test_a_send_stuck_at_its_last_attempt_fails_instead_of_looping(subscription, settings):
    settings.FLAKYBOARD_NOTIFY_ATTEMPTS = 2
    turn_flaky(1)
    tick(now=later())
    Message.objects.update(state=Message.State.SENDING, attempts=2, claimed_at=datetime.now(UTC))
    requeue_overdue(now=later(STUCK_AFTER.total_seconds() / 60 + 1))
    message = Message.objects.get()
    assert message.state == Message.State.FAILED
    assert "worker stopped" in message.last_error


def test_a_sent_message_cannot_be_deleted_to_resend_its_alerts(subscription, rf, admin_user):
    turn_flaky(1)
    tick(now=later())
    run_workers()
    request = rf.get("/")
    request.user = admin_user
    assert not MessageAdmin(Message, None).has_delete_permission(request)
    with pytest.raises(ProtectedError):
        Message.objects.all().delete()
    tick(now=later(10))
    assert Message.objects.count() == 1


def test_a_disabled_subscription_cancels_its_queued_message_and_drops_its_notices(subscription, receiver):
    turn_flaky(1)
    tick(now=later())  # a message queued (not sent: no worker yet)
    turn_flaky(2)
    tick(now=datetime.now(UTC))  # a notice waiting for its burst
    Subscription.objects.update(enabled=False)
    run_workers()
    assert list(Message.objects.values_list("state", flat=True)) == [Message.State.CANCELLED]
    tick(now=later(5))
    assert not Notice.objects.filter(message__isnull=True).exists()
    assert receiver.posts("/team") == []
    assert sending.retry(list(Message.objects.values_list("pk", flat=True))) == 1  # retryable


def test_one_failing_step_does_not_stop_the_others(subscription, monkeypatch):
    def broken(*, now):
        raise ValueError("a bug")

    monkeypatch.setattr(dispatch, "record_due_alerts", broken)
    turn_flaky(1)
    result = tick(now=later())
    assert (result.dispatched, result.messages) == (1, 1)


def test_an_absurd_stored_target_does_not_break_the_sweep():
    OwnerTarget.objects.create(owner_key="@acme/payments", triage_days=10**9, fix_days=800_000)
    turn_flaky(1)
    record_due_alerts(now=datetime.now(UTC))
    assert Alert.objects.filter(kind=Alert.Kind.TARGET_MISSED).count() == 0


def test_owner_patterns_compare_as_the_projection_folds_case():
    assert owner_matches("@Acme/Straße", ["@acme/strasse"])
    assert owner_matches("@ACME/*", ["@acme/web"])
    assert owner_matches("(No Owner)", [])
    assert not owner_matches("@acme/web", [])


def test_a_burst_over_the_cap_goes_out_as_several_messages(subscription, receiver, monkeypatch):
    monkeypatch.setattr(dispatch, "MAX_ALERTS_PER_MESSAGE", 4)
    for n in range(1, 11):
        turn_flaky(n)
    for _ in range(3):
        tick(now=later())
    run_workers()
    assert Message.objects.count() == 3
    assert sorted(
        Message.objects.values_list("notices__alert__test_case_id", flat=True).distinct()
    ) == sorted(Alert.objects.values_list("test_case_id", flat=True))
    assert len(receiver.posts("/team")) == 3


def test_a_retry_is_due_at_a_whole_second_so_a_queue_of_whole_seconds_never_wakes_it_early(settings):
    """rq truncates a scheduled time to the second: a retry due at 12:00:01.300 ran at
    12:00:01.28, found the message not yet due and did nothing (the Redis queue test
    caught it, now and then)."""
    settings.FLAKYBOARD_NOTIFY_RETRY_SECONDS = 1
    now = datetime(2026, 12, 6, 12, 0, 0, 300_000, tzinfo=UTC)
    due = sending.next_attempt(now, 1)
    assert due == datetime(2026, 12, 6, 12, 0, 2, tzinfo=UTC)
    assert due >= now + sending.backoff(1)
    assert sending.next_attempt(now.replace(microsecond=0), 1) == datetime(2026, 12, 6, 12, 0, 1, tzinfo=UTC)
    # No back-off (the tests' setting): due at once, not a second later.
    settings.FLAKYBOARD_NOTIFY_RETRY_SECONDS = 0
    assert sending.next_attempt(now, 1) == now
