"""Deliveries: the delivery log, one delivery with what it projected, and the last
24 hours' health (the deliveries pages, the overview, the API's delivery log)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Value,
    Window,
)
from django.db.models.functions import Lag

from events.metrics import Period
from events.models import Delivery
from events.orm import distinct_values, related_model

# The overview's deliveries card, and the deliveries page's "received=24h": ingest health
# over the last day, whatever the period.
HEALTH_WINDOW = timedelta(hours=24)
# The rare outcomes the card counts from their partial index (Delivery.Meta: delivery_unhealthy).
UNHEALTHY = (Delivery.Outcome.INVALID.value, Delivery.Outcome.FAILED.value)


def delivery_health(*, repository: int | None = None, now: datetime | None = None) -> dict:
    """Deliveries received in the last 24 h (of a repository: see `delivery_list`), and
    how many were invalid, failed, or are still waiting for the projector
    (FLAKYBOARD_DEFERRED_PROJECTION). The rows the deliveries page lists with
    `received=24h`, counted.

    One query of three counts, each planned on its own (UNION ALL) rather than one pass
    with FILTERs that reads every row of the window from the heap: the total from the
    received_at index (an index-only scan: the heap only for the visibility of pages
    not yet all-visible), invalid and failed from their partial index (delivery_unhealthy),
    pending from the projector's queue (delivery_pending). Exact: the same rows counted."""
    rows = delivery_list(period=Period.parse(None, now=now), repository=repository, last_24h=True).order_by()
    total = rows.annotate(group=Value("total")).values("group").annotate(n=Count("*"))
    unhealthy = (
        rows.filter(outcome__in=UNHEALTHY).annotate(group=F("outcome")).values("group").annotate(n=Count("*"))
    )
    pending = (
        rows.filter(outcome=Delivery.Outcome.PENDING)
        .annotate(group=Value(Delivery.Outcome.PENDING.value))
        .values("group")
        .annotate(n=Count("*"))
    )
    counts = {"total": 0, **dict.fromkeys(UNHEALTHY, 0), Delivery.Outcome.PENDING.value: 0}
    counts.update(total.union(unhealthy, pending, all=True).values_list("group", "n"))
    return counts


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


# ---------------------------------------------------------------- gaps (outages)

# Gaps are looked for in the deliveries of the last GAP_WINDOW (Svix retries a failed message
# for about 27 hours and disables an endpoint after 5 days of failures).
GAP_WINDOW = timedelta(days=14)
# A gap is unusual when it is longer than this many times the window's mean interval
# between deliveries, and at least GAP_MIN long.
GAP_FACTOR = 20
GAP_MIN = timedelta(hours=1)
# Below this many deliveries in the window the rate says nothing.
GAP_MIN_DELIVERIES = 50
GAPS_SHOWN = 5


@dataclass(frozen=True)
class Gap:
    start: datetime  # the last delivery before it
    end: datetime | None  # the first after it; None: nothing since (still going on)
    seconds: float

    @property
    def length(self) -> timedelta:
        return timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class DeliveryGaps:
    deliveries: int
    per_hour: float
    threshold: timedelta
    gaps: tuple[Gap, ...]  # longest first
    enough: bool  # False: too few deliveries to know the installation's rate


def delivery_gaps(*, now: datetime) -> DeliveryGaps:
    """Periods without any delivery that are unusual for this installation's rate over the
    last 14 days: longer than 20 times the mean interval and at least an hour, including one
    still going on. Three queries, in the database (a window function over the window's
    received times)."""
    window = Delivery.objects.filter(received_at__gt=now - GAP_WINDOW, received_at__lte=now)
    totals = window.aggregate(n=Count("id"), first=Min("received_at"), last=Max("received_at"))
    count = totals["n"] or 0
    span = (now - totals["first"]) if totals["first"] else GAP_WINDOW
    if count < GAP_MIN_DELIVERIES:
        return DeliveryGaps(count, count / (span.total_seconds() / 3600 or 1), GAP_MIN, (), False)
    threshold = max(GAP_MIN, span / count * GAP_FACTOR)
    previous = Window(Lag("received_at"), order_by=[F("received_at").asc(), F("id").asc()])
    rows = (
        window.annotate(previous=previous)
        .annotate(gap=ExpressionWrapper(F("received_at") - F("previous"), output_field=DurationField()))
        .filter(gap__gt=threshold)
        .order_by("-gap")
        .values_list("previous", "received_at", "gap")[:GAPS_SHOWN]
    )
    gaps = [Gap(start, end, gap.total_seconds()) for start, end, gap in rows]
    if totals["last"] and now - totals["last"] > threshold:
        gaps.append(Gap(totals["last"], None, (now - totals["last"]).total_seconds()))
    gaps.sort(key=lambda g: -g.seconds)
    return DeliveryGaps(
        count, count / (span.total_seconds() / 3600), threshold, tuple(gaps[:GAPS_SHOWN]), True
    )
