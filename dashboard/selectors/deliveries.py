"""Deliveries: the delivery log, one delivery with what it projected, and the last
24 hours' health (the deliveries pages, the overview, the API's delivery log)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from events.metrics import Period
from events.models import Delivery
from events.orm import distinct_values, related_model

# The overview's deliveries card, and the deliveries page's "received=24h": ingest health
# over the last day, whatever the period.
HEALTH_WINDOW = timedelta(hours=24)


def delivery_health(*, repository: int | None = None, now: datetime | None = None) -> dict:
    """Deliveries received in the last 24 h (of a repository: see `delivery_list`), and
    how many were invalid, failed, or are still waiting for the projector
    (FLAKYBOARD_DEFERRED_PROJECTION). The rows the deliveries page lists with
    `received=24h`, counted."""
    rows = delivery_list(period=Period.parse(None, now=now), repository=repository, last_24h=True)
    return rows.order_by().aggregate(
        total=Count("id"),
        invalid=Count("id", filter=Q(outcome=Delivery.Outcome.INVALID)),
        failed=Count("id", filter=Q(outcome=Delivery.Outcome.FAILED)),
        pending=Count("id", filter=Q(outcome=Delivery.Outcome.PENDING)),
    )


def delivery_event_types() -> list[str]:
    """Every stored delivery type ("" for none). One query that jumps through the
    event_type index (a plain DISTINCT reads the whole index: ~100 ms at 1M deliveries)."""
    return distinct_values(Delivery, "event_type", limit=None)


PROJECTIONS = ("status_change", "monitor_event", "investigation", "quarantine_change")


def delivery_list(
    *,
    period: Period,
    repository: int | None = None,
    outcome: str | None = None,
    event_type: str | None = None,
    last_24h: bool = False,
) -> QuerySet[Delivery]:
    """Stored deliveries received inside the period (our clock: an invalid delivery has
    no event time), or with `last_24h` in the 24 hours before the period's end, newest
    first, without their bodies. With a repository: the deliveries whose projected row
    belongs to a test of that repository."""
    if last_24h:
        window = Q(received_at__gt=period.now - HEALTH_WINDOW, received_at__lte=period.now)
    else:
        window = period.filter("received_at")
    deliveries = Delivery.objects.filter(window)
    if outcome:
        deliveries = deliveries.filter(outcome=outcome)
    if event_type is not None:
        deliveries = deliveries.filter(event_type=event_type)
    if repository:
        in_repository = Q()
        for relation in PROJECTIONS:
            model = related_model(Delivery, relation)
            in_repository |= Q(
                Exists(
                    model._default_manager.filter(delivery=OuterRef("pk"), test_case__repository=repository)
                )
            )
        deliveries = deliveries.filter(in_repository)
    return deliveries.defer("body", "headers", "error").order_by("-received_at", "-id")


def delivery_with_projections(delivery_id: int) -> QuerySet[Delivery]:
    """The delivery and whatever it projected (each with its test), in one query."""
    return Delivery.objects.filter(pk=delivery_id).select_related(
        *(f"{relation}__test_case" for relation in PROJECTIONS), "monitor_event__monitor"
    )


def deliveries(*, with_body: bool = True) -> QuerySet[Delivery]:
    """Every stored delivery (the API's delivery log, filtered and paginated by the
    caller); without their bodies and headers for a list."""
    rows = Delivery.objects.all()
    return rows if with_body else rows.defer("body", "headers")
