"""From alerts to messages: match each new alert to the subscriptions (a notice each),
group a subscription's notices of one burst into one message, queue the weekly digests,
and recover sends that a crash left behind. `tick` runs all of it; `manage.py notify
--follow` runs `tick` every few seconds (the schedule), the task workers send."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Min

from events.models import Alert, TestCaseOwner

from . import render, sending
from .models import Message, Notice, Subscription
from .routing import Scope, matches
from .triggers import record_due_alerts

logger = logging.getLogger(__name__)
T = TypeVar("T")

BATCH = 500
# A send claimed this long ago and never finished (a worker killed mid-send) is tried again:
# far longer than a send may take (FLAKYBOARD_NOTIFY_TIMEOUT_SECONDS, under 10 s).
STUCK_AFTER = timedelta(minutes=15)
# A burst lists at most this many alerts in one message; the rest follow in the next.
MAX_ALERTS_PER_MESSAGE = 50


@dataclass
class TickResult:
    recorded: int = 0
    dispatched: int = 0
    messages: int = 0
    digests: int = 0
    requeued: int = 0


def tick(*, now: datetime) -> TickResult:
    """Each step on its own: a bug in one (a hostile stored value, a digest that cannot be
    rendered) is logged and the others still run; a database error stops the tick (the
    caller waits and tries again: nothing is lost, every step is idempotent)."""
    from .digests import queue_digests

    none: list[int] = []
    result = TickResult()
    result.recorded = _step(record_due_alerts, now, 0)
    result.dispatched = _step(dispatch_alerts, now, 0)
    result.messages = len(_step(group_notices, now, none))
    result.digests = len(_step(queue_digests, now, none))
    result.requeued = _step(requeue_overdue, now, 0)
    return result


def _step(step: Callable[..., T], now: datetime, failed: T) -> T:
    try:
        return step(now=now)
    except DatabaseError:
        raise
    except Exception:
        logger.exception("notifications: %s failed", step.__name__)
        return failed


def _skip_locked() -> bool:
    return bool(connection.features.has_select_for_update_skip_locked)


def dispatch_alerts(*, now: datetime) -> int:
    """A notice for each (new alert, real-time subscription it matches). Alerts are taken
    under a lock that other dispatchers skip, and a notice is unique per (subscription,
    alert): two dispatchers never notify twice."""
    subscriptions = list(Subscription.objects.filter(enabled=True, mode=Subscription.Mode.REALTIME))
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update(skip_locked=_skip_locked())
            .filter(dispatched_at__isnull=True)
            .order_by("recorded_at", "id")[:BATCH]
        )
        if not alerts:
            return 0
        scopes = _scopes_of(alerts)
        notices = [
            Notice(subscription=s, alert=a, created_at=now)
            for a in alerts
            for s in subscriptions
            if matches(s, a, scopes[a.test_case_id])
        ]
        Notice.objects.bulk_create(notices, ignore_conflicts=True)
        Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(dispatched_at=now)
    return len(alerts)


def _scopes_of(alerts: list[Alert]) -> dict[uuid.UUID, Scope]:
    from events.models import TestCase

    ids = {a.test_case_id for a in alerts}
    owners: dict[uuid.UUID, list[str]] = {pk: [] for pk in ids}
    for pk, key in TestCaseOwner.objects.filter(test_case_id__in=ids).values_list(
        "test_case_id", "owner__key"
    ):
        owners[pk].append(key)
    repos = dict(TestCase.objects.filter(pk__in=ids).values_list("pk", "repository__name"))
    return {pk: Scope(tuple(owners[pk]), (repos.get(pk) or "").casefold()) for pk in ids}


def group_notices(*, now: datetime) -> list[int]:
    """For each subscription whose oldest ungrouped alert was recorded a group window ago:
    one message with all its ungrouped notices (a burst). Returns the new messages' ids."""
    window = timedelta(seconds=settings.FLAKYBOARD_NOTIFY_GROUP_SECONDS)
    # Notices of a subscription turned off or to digest mode since: old news by the time it
    # would be turned back on (the digest tells them).
    Notice.objects.filter(message__isnull=True).exclude(
        subscription__enabled=True, subscription__mode=Subscription.Mode.REALTIME
    ).delete()
    due = (
        Notice.objects.filter(message__isnull=True)
        .values("subscription")
        .annotate(oldest=Min("alert__recorded_at"))
        .filter(oldest__lte=now - window)
    )
    created = []
    for row in due:
        message_id = _group(row["subscription"], now=now)
        if message_id is not None:
            created.append(message_id)
    return created


def _group(subscription_id: int, *, now: datetime) -> int | None:
    try:
        with transaction.atomic():
            subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
            notices = list(
                Notice.objects.select_related("alert")
                .filter(subscription=subscription, message__isnull=True)
                .order_by("id")[:MAX_ALERTS_PER_MESSAGE]
            )
            if not notices:  # another dispatcher grouped them meanwhile
                return None
            # Keyed by its first notice (the oldest: notices are taken in creation order),
            # which no other message can hold.
            key = f"alerts:{subscription.pk}:{notices[0].pk}"
            notices.sort(key=lambda n: (n.alert.moment, n.pk))
            content = render.alerts_message([n.alert for n in notices], subscription_name=subscription.name)
            message = sending.store_message(
                subscription, kind=Message.Kind.ALERTS, key=key, content=content, now=now
            )
            Notice.objects.filter(pk__in=[n.pk for n in notices]).update(message=message)
            sending.enqueue_on_commit(message.pk)
            return message.pk
    except IntegrityError:  # the same burst, grouped by another dispatcher
        return None


def requeue_overdue(*, now: datetime) -> int:
    """Sends a crash left behind: claimed long ago and never finished (a worker killed, or
    the outcome not recorded) go back to pending, or to failed after the last attempt; and
    pending ones long past their time (their task was lost) are queued again. The claim in
    `sending.attempt` makes a duplicate task harmless."""
    stuck = Message.objects.filter(state=Message.State.SENDING, claimed_at__lt=now - STUCK_AFTER)
    stuck.filter(attempts__gte=settings.FLAKYBOARD_NOTIFY_ATTEMPTS).update(
        state=Message.State.FAILED, last_error="The worker stopped during the last attempt."
    )
    revived = list(stuck.values_list("pk", flat=True)[:BATCH])
    Message.objects.filter(pk__in=revived, state=Message.State.SENDING).update(
        state=Message.State.PENDING, next_attempt_at=now
    )
    overdue = revived + list(
        Message.objects.filter(
            state=Message.State.PENDING, next_attempt_at__lt=now - STUCK_AFTER / 3
        ).values_list("pk", flat=True)[:BATCH]
    )
    with transaction.atomic():
        for pk in overdue:
            Message.objects.filter(pk=pk).update(next_attempt_at=now)
            sending.enqueue_on_commit(pk)
    return len(overdue)
