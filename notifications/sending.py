"""Sending one message: the task the workers run (django-tasks; `manage.py db_worker` with
the database queue), the claim, the attempt and its outcome (sent; pending again with
back-off; failed with the error after the last attempt). Everything that queues a send
calls `enqueue_on_commit`."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django_tasks import task

from . import render
from .destinations import Outgoing, SendFailed, send
from .models import Message, Subscription

logger = logging.getLogger(__name__)


def backoff(attempts: int) -> timedelta:
    """30 s, 60 s, 120 s ... after the 1st, 2nd, 3rd failed attempt (at most a day)."""
    return timedelta(seconds=min(settings.FLAKYBOARD_NOTIFY_RETRY_SECONDS * 2 ** max(attempts - 1, 0), 86400))


def next_attempt(now: datetime, attempts: int) -> datetime:
    """When the attempt after `attempts` failed ones is due: `now` plus the back-off, rounded
    up to a whole second. rq schedules by whole seconds (it truncates the time), so an
    unrounded time would wake the task up to a second early; it would find the message
    not yet due, do nothing, and leave it to `requeue_overdue` minutes later."""
    delay = backoff(attempts)
    if not delay:
        return now
    due = now + delay
    return due if not due.microsecond else due.replace(microsecond=0) + timedelta(seconds=1)


def enqueue_on_commit(message_id: int, *, run_after: datetime | None = None) -> None:
    """Queue its send once the transaction that created or changed it commits (a worker
    must see the row)."""

    def enqueue() -> None:
        task = send_message.using(run_after=run_after) if run_after else send_message
        task.enqueue(message_id)

    transaction.on_commit(enqueue)


@task()
def send_message(message_id: int) -> str:
    """One attempt at sending a message; a failure queues the next attempt itself (back-off)."""
    return attempt(message_id)


def attempt(message_id: int, *, now: datetime | None = None) -> str:
    """One attempt. Claimed first (pending and due -> sending, with a token, in one
    statement): a second worker given the same message finds nothing to do, and only the
    attempt holding the claim records the outcome. Returns the state it left.

    Delivery is at least once: a destination that accepted the message while the database
    could not record it (or a worker killed after sending) gets it again after STUCK_AFTER."""
    now = now or timezone.now()
    token = uuid.uuid4().hex
    claimed = Message.objects.filter(
        pk=message_id, state=Message.State.PENDING, next_attempt_at__lte=now
    ).update(state=Message.State.SENDING, attempts=F("attempts") + 1, claimed_at=now, claim=token)
    if not claimed:
        return "skipped"
    message = Message.objects.select_related("subscription").get(pk=message_id)
    mine = Message.objects.filter(pk=message_id, state=Message.State.SENDING, claim=token)
    subscription = message.subscription
    if not subscription.enabled:
        mine.update(
            state=Message.State.CANCELLED, last_error="The subscription was turned off before it was sent."
        )
        return Message.State.CANCELLED
    try:
        send(subscription.destination, render.from_json(message.content))
    except SendFailed as failure:
        return _failed(message, mine, str(failure), now=now)
    except Exception as exc:  # a bug or a library error: kept like a failed send, never the URL
        logger.exception("sending message %s failed unexpectedly", message.pk)
        return _failed(message, mine, f"Unexpected error: {type(exc).__name__}", now=now)
    if not mine.update(state=Message.State.SENT, sent_at=timezone.now(), last_error=""):
        logger.warning("message %s was sent, but another worker had taken it over meanwhile", message.pk)
        return "taken over"
    logger.info("sent message %s (%s) to subscription %s", message.pk, message.kind, subscription.pk)
    return Message.State.SENT


def _failed(message: Message, mine: QuerySet[Message], error: str, *, now: datetime) -> str:
    error = error[:2000]
    if message.attempts >= settings.FLAKYBOARD_NOTIFY_ATTEMPTS:
        if mine.update(state=Message.State.FAILED, last_error=error):
            logger.warning("message %s failed after %s attempts", message.pk, message.attempts)
        return Message.State.FAILED
    retry_at = next_attempt(now, message.attempts)
    with transaction.atomic():
        if mine.update(state=Message.State.PENDING, next_attempt_at=retry_at, last_error=error):
            enqueue_on_commit(message.pk, run_after=retry_at)
    logger.info("message %s attempt %s failed; next at %s", message.pk, message.attempts, retry_at)
    return Message.State.PENDING


def retry(message_ids: list[int]) -> int:
    """The admin's "retry": failed, not sent or pending messages start again with fresh attempts."""
    now = timezone.now()
    with transaction.atomic():
        count = Message.objects.filter(
            pk__in=message_ids,
            state__in=[Message.State.FAILED, Message.State.CANCELLED, Message.State.PENDING],
        ).update(state=Message.State.PENDING, attempts=0, next_attempt_at=now)
        for pk in message_ids:
            enqueue_on_commit(pk)
    return count


def store_message(
    subscription: Subscription, *, kind: str, key: str, content: Outgoing, now: datetime | None = None
) -> Message:
    """The one write of a message: its content rendered once, as every attempt sends it."""
    return Message.objects.create(
        subscription=subscription,
        kind=kind,
        key=key,
        title=content.title,
        content=render.to_json(content),
        created_at=now or timezone.now(),
    )


def send_test_message(subscription_id: int) -> Message:
    """The admin's "send a test message": a message like any other, attempted at once (the
    person who asked sees the outcome: sent, or the destination's error); a failure is
    retried by the workers like any send."""
    subscription = Subscription.objects.get(pk=subscription_id)
    content = render.test_message(subscription_name=subscription.name)
    message = store_message(
        subscription, kind=Message.Kind.TEST, key=f"test:{subscription.pk}:{uuid.uuid4()}", content=content
    )
    attempt(message.pk)
    message.refresh_from_db()
    return message
