"""End to end: a change arrives, the alert is matched to subscriptions, a burst becomes one
message, the task workers (django-tasks' database queue, `db_worker`) send it to a real
receiver on 127.0.0.1; retries with back-off, failure after the last attempt, the admin's
retry; no double send from a second dispatcher or a duplicate task."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from events.demo import payloads
from events.models import Alert
from notifications import sending
from notifications.dispatch import dispatch_alerts, group_notices, tick
from notifications.models import Message, Notice, Subscription
from tests.events.factories import MONITOR, deliver, fake_test

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.FLAKYBOARD_NOTIFY_RETRY_SECONDS = 0
    settings.FLAKYBOARD_NOTIFY_ATTEMPTS = 3
    settings.FLAKYBOARD_NOTIFY_GROUP_SECONDS = 60
    settings.FLAKYBOARD_BASE_URL = "https://flakyboard.example.com"


def run_workers() -> None:
    """Drain the task queue as `manage.py db_worker` does in production."""
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)


def turn_flaky(n: int, *, owners=("@acme/payments",), name=None, minutes_ago=1) -> None:
    test = fake_test(n, codeowners=list(owners), **({"name": name} if name else {}))
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    deliver(
        payloads.status_changed(
            test, at=at, previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="flaky"
        )
    )


def subscribe(url: str, **fields) -> Subscription:
    return Subscription.objects.create(name=fields.pop("name", "payments"), destination=url, **fields)


def later(seconds: int = 61) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_a_test_turning_flaky_reaches_its_owners_destination_once(receiver):
    receiver.ok("/payments")
    receiver.ok("/web")
    subscribe(receiver.url("json", "/payments"), owners="@ACME/payments")
    subscribe(receiver.url("json", "/web"), name="web", owners="@acme/web")
    turn_flaky(1)
    tick(now=datetime.now(UTC))  # matched, but the burst window is still open
    assert not Message.objects.exists()
    tick(now=later())
    run_workers()
    tick(now=later(120))  # nothing new: nothing sent again
    run_workers()
    [post] = receiver.posts("/payments")
    assert "test_case_1" in post.json["title"] + post.json["message"]
    assert "turned FLAKY" in post.json["message"]
    assert "https://flakyboard.example.com/tests/" in post.json["message"]
    assert receiver.posts("/web") == []
    message = Message.objects.get()
    assert (message.state, message.attempts) == (Message.State.SENT, 1)


def test_ten_tests_turning_flaky_in_a_minute_make_one_message(receiver):
    receiver.ok("/team")
    subscribe(receiver.url("json", "/team"), owners="@acme/*")
    for n in range(1, 11):
        turn_flaky(n)
    tick(now=later())
    run_workers()
    [post] = receiver.posts("/team")
    assert "10 flaky-test alerts" in post.json["title"]
    assert all(f"test_case_{n}" in post.json["message"] for n in range(1, 11))
    assert Notice.objects.filter(message__isnull=False).count() == 10


def test_routing_by_owner_pattern_no_owner_repository_and_trigger(receiver):
    for path in ("/none", "/repo", "/other-repo", "/relapses"):
        receiver.ok(path)
    subscribe(receiver.url("json", "/none"), name="none", owners="(no owner)")
    subscribe(receiver.url("json", "/repo"), name="repo", repositories="ACME/checkout")
    subscribe(receiver.url("json", "/other-repo"), name="other", repositories="acme/other")
    subscribe(receiver.url("json", "/relapses"), name="relapses", triggers=["relapse"])
    turn_flaky(1, owners=())
    tick(now=later())
    run_workers()
    assert len(receiver.posts("/none")) == 1
    assert len(receiver.posts("/repo")) == 1
    assert receiver.posts("/other-repo") == []
    assert receiver.posts("/relapses") == []  # a first episode is not a relapse


def test_a_destination_answering_500_twice_then_200_gets_it_once(receiver):
    receiver.fail_times("/flaky", 2)
    subscribe(receiver.url("json", "/flaky"))
    turn_flaky(1)
    tick(now=later())
    run_workers()
    message = Message.objects.get()
    assert (message.state, message.attempts) == (Message.State.SENT, 3)
    assert len(receiver.posts("/flaky")) == 3  # two refused, one accepted
    run_workers()
    assert len(receiver.posts("/flaky")) == 3


def test_a_destination_that_always_fails_is_failed_after_the_attempts_with_the_error(receiver):
    receiver.always_fail("/down")
    subscribe(receiver.url("json", "/down"))
    turn_flaky(1)
    tick(now=later())
    run_workers()
    message = Message.objects.get()
    assert (message.state, message.attempts) == (Message.State.FAILED, 3)
    assert message.last_error
    assert len(receiver.posts("/down")) == 3
    # Retried from the admin once the destination is back.
    receiver.ok("/down")
    assert sending.retry([message.pk]) == 1
    run_workers()
    message.refresh_from_db()
    assert message.state == Message.State.SENT
    assert len(receiver.posts("/down")) == 4


def test_a_second_dispatcher_and_a_duplicate_task_send_nothing_twice(receiver):
    receiver.ok("/once")
    subscribe(receiver.url("json", "/once"))
    turn_flaky(1)
    now = later()
    dispatch_alerts(now=now)
    # The same alert offered again (a retry of the dispatcher's transaction): one notice.
    Alert.objects.update(dispatched_at=None)
    dispatch_alerts(now=now)
    assert Notice.objects.count() == 1
    assert len(group_notices(now=now)) == 1
    assert group_notices(now=now) == []
    message = Message.objects.get()
    sending.enqueue_on_commit(message.pk)  # a duplicate task for the same message
    run_workers()
    assert len(receiver.posts("/once")) == 1


def test_a_disabled_subscription_and_a_digest_subscription_get_no_alerts(receiver):
    receiver.ok("/off")
    subscribe(receiver.url("json", "/off"), enabled=False)
    subscribe(receiver.url("json", "/off"), name="digest", mode=Subscription.Mode.DIGEST)
    turn_flaky(1)
    tick(now=later())
    run_workers()
    assert not Message.objects.filter(kind=Message.Kind.ALERTS).exists()


def test_mentions_and_markup_in_a_test_name_ping_no_one(receiver):
    receiver.ok("/chat")
    subscribe(receiver.url("json", "/chat"))
    turn_flaky(1, name="<!here> @channel *bold* <script>alert(1)</script>")
    tick(now=later())
    run_workers()
    [post] = receiver.posts("/chat")
    text = post.json["title"] + post.json["message"]
    assert "<!here>" not in text and "@channel" not in text


def test_the_investigation_summary_is_plain_text_and_shortened(receiver):
    from events.demo.payloads import investigation_completed

    receiver.ok("/inv")
    subscribe(receiver.url("json", "/inv"))
    test = fake_test(1)
    now = datetime.now(UTC)
    deliver(
        investigation_completed(
            test,
            at=now - timedelta(minutes=5),
            investigation_id=__import__("uuid").uuid4(),
            confidence=0.9,
            markdown_summary="**Root cause**: a race in `checkout()`. " + "More detail. " * 100,
            failure_message="boom",
            facts=[],
        )
    )
    turn_flaky(1)
    tick(now=later())
    run_workers()
    [post] = receiver.posts("/inv")
    assert "Root cause" in post.json["message"] and "**Root cause**" not in post.json["message"]
    assert len(post.json["message"]) < 2000


def test_the_weekly_digest_goes_once_per_week_with_the_dashboard_figures(receiver, settings):
    from notifications.digests import queue_digests

    settings.FLAKYBOARD_DIGEST_WEEKDAY = 0
    settings.FLAKYBOARD_DIGEST_HOUR = 8
    receiver.ok("/digest")
    subscribe(receiver.url("json", "/digest"), name="weekly", mode=Subscription.Mode.DIGEST, owners="@acme/*")
    turn_flaky(1, minutes_ago=60 * 24)
    monday_7 = datetime(2026, 12, 7, 7, 59, tzinfo=UTC)
    assert queue_digests(now=monday_7) == []  # before the send time
    monday_8 = monday_7 + timedelta(minutes=1)
    assert len(queue_digests(now=monday_8)) == 1
    assert queue_digests(now=monday_8 + timedelta(days=3)) == []  # once a week
    run_workers()
    [post] = receiver.posts("/digest")
    assert "Weekly flaky-test digest" in post.json["title"]
    assert "New flaky or broken tests: 1" in post.json["message"]
    assert "https://flakyboard.example.com/digest/?owner=%40acme%2Fpayments" in post.json["message"]
    assert len(queue_digests(now=monday_8 + timedelta(days=7))) == 1  # the next week


def test_email_goes_through_djangos_email_backend(mailoutbox):
    subscribe("mailto:team@example.com,lead@example.com")
    turn_flaky(1, name="checkout <b>total</b> @channel")
    tick(now=later())
    run_workers()
    [mail] = mailoutbox
    assert mail.to == ["team@example.com", "lead@example.com"]
    assert "checkout <b>total</b>" in mail.subject + mail.body  # plain text: shown as sent
    html = mail.alternatives[0][0]
    assert "<b>total</b>" not in html and "&lt;b&gt;total&lt;/b&gt;" in html
    assert Message.objects.get().state == Message.State.SENT
