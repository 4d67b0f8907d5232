"""Retention: drop the raw bodies and headers of old processed deliveries, the one path
through the delivery log's append-only guard that the application takes
(events/delivery_log.py).

A pruned delivery keeps its row (id, svix id, type, event and received times, outcome,
error) and everything projected from it: the dashboards, the API and the history do not
change. What is lost is the ability to replay it: `rebuild_projections` refuses while
pruned deliveries exist, unless told to rebuild only from the replayable ones, and
reprocessing skips them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import Length

from .delivery_log import delivery_changes_allowed
from .models import Delivery

# Pending deliveries are not applied yet and failed ones may be reprocessed after a fix:
# only these are pruned.
PRUNABLE_OUTCOMES = (Delivery.Outcome.PROCESSED, Delivery.Outcome.IGNORED, Delivery.Outcome.INVALID)
BATCH = 1000


class NotReplayable(Exception):
    """Deliveries were pruned: replaying the log would lose what they projected."""


@dataclass(frozen=True)
class PruneReport:
    deliveries: int
    body_bytes: int
    cutoff: datetime


def prunable(*, older_than: timedelta, now: datetime):
    cutoff = now - older_than
    return (
        Delivery.objects.filter(
            received_at__lt=cutoff, outcome__in=PRUNABLE_OUTCOMES, pruned_at__isnull=True
        ),
        cutoff,
    )


def prune_deliveries(*, older_than: timedelta, now: datetime, apply: bool) -> PruneReport:
    """What pruning deliveries received before now - older_than would drop (apply=False),
    or drop it (apply=True), a batch per transaction."""
    candidates, cutoff = prunable(older_than=older_than, now=now)
    totals = candidates.aggregate(n=Count("pk"), size=Sum(Length("body")))
    if not apply:
        return PruneReport(totals["n"] or 0, totals["size"] or 0, cutoff)
    pruned = 0
    while True:
        with delivery_changes_allowed():
            ids = list(candidates.order_by("id").values_list("id", flat=True)[:BATCH])
            if not ids:
                break
            pruned += Delivery.objects.filter(pk__in=ids, pruned_at__isnull=True).update(
                body="", raw_body=None, headers={}, pruned_at=now
            )
    return PruneReport(pruned, totals["size"] or 0, cutoff)


def pruned_count() -> int:
    return Delivery.objects.filter(~Q(pruned_at=None)).count()


def check_replayable(*, replayable_only: bool) -> None:
    """Refuse a replay of the whole log while some of it was pruned."""
    if replayable_only:
        return
    if Delivery.objects.filter(pruned_at__isnull=False).exists():
        raise NotReplayable(
            f"{pruned_count()} deliveries were pruned (their bodies dropped by prune_deliveries): a rebuild "
            "would lose everything they projected. Rebuild from the replayable deliveries only with "
            "--replayable-only, knowing that the history they held goes."
        )
