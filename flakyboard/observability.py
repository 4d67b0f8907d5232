"""What operators watch: Prometheus metrics (prometheus_client), the readiness check, and
the svix id on every log line written while a delivery is received.

Metrics are off unless FLAKYBOARD_METRICS_TOKEN is set; `/metrics` then answers only
`Authorization: Bearer <token>`. The server's counters and histograms live in each
process; with PROMETHEUS_MULTIPROC_DIR set (bin/start-server sets it) gunicorn's workers
write there and `/metrics` adds them up. The projectors' totals (every projector, on any
host or container), the backlog and the outbox are read from the database at each
scrape (one row and a few indexed counts)."""

from __future__ import annotations

import contextvars
import hmac
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# ---------------------------------------------------------------- in-process metrics

DELIVERIES = Counter(
    "flakyboard_deliveries",
    "Webhook deliveries answered, by event type (known types; others are 'other') and outcome.",
    ["type", "outcome"],
)
REDELIVERIES = Counter(
    "flakyboard_redeliveries", "Deliveries whose svix id was stored already (Svix retries)."
)
RECEIVER_SECONDS = Histogram(
    "flakyboard_receiver_seconds",
    "Time from the request's body read to the answer, per delivery.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0),
)
REPLICA_FAILURES = Counter(
    "flakyboard_replica_failures",
    "Reads the read replica failed to answer (run again on the primary; flakyboard/db_router.py).",
)


def type_label(event_type: str) -> str:
    """A known event type, or "other": a signed body may carry any `type`, and a label per
    value would let anyone grow the metrics without bound."""
    from events.trunk.registry import EVENT_TYPES, IGNORED_TYPES

    return event_type if event_type in EVENT_TYPES or event_type in IGNORED_TYPES else "other"


# ---------------------------------------------------------------- read at each scrape


class DatabaseCollector(Collector):
    """The backlog (pending deliveries and the age of the oldest), every projector's
    totals (on any host: events.models.ProjectorTotals) and the notification outbox
    (messages by state, alerts not dispatched yet), read at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        from events.models import Alert, Delivery, ProjectorTotals
        from notifications.models import Message

        pending = Delivery.objects.filter(outcome=Delivery.Outcome.PENDING)
        oldest = pending.order_by("id").values_list("received_at", flat=True).first()
        yield GaugeMetricFamily(
            "flakyboard_pending_deliveries", "Deliveries stored, not applied yet.", pending.count()
        )
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "flakyboard_oldest_pending_seconds",
            "Age of the oldest pending delivery (0: none).",
            max(age, 0.0),
        )
        totals = ProjectorTotals.objects.filter(pk=ProjectorTotals.SINGLETON).first() or ProjectorTotals()
        for name, value, about in (
            ("batches", totals.batches, "Batches of pending deliveries applied, by every projector."),
            ("deliveries", totals.deliveries, "Pending deliveries applied, by every projector."),
            (
                "errors",
                totals.errors,
                "Projector batches that failed (rolled back and retried, or marked failed).",
            ),
        ):
            yield CounterMetricFamily(f"flakyboard_projector_{name}", about, value)
        outbox = GaugeMetricFamily(
            "flakyboard_notification_messages", "Notification messages by state.", labels=["state"]
        )
        counts = dict(Message.objects.values("state").annotate(n=Count("pk")).values_list("state", "n"))
        for state in Message.State.values:
            outbox.add_metric([state], counts.get(state, 0))
        yield outbox
        yield GaugeMetricFamily(
            "flakyboard_undispatched_alerts",
            "Alerts recorded and not yet matched to subscriptions.",
            Alert.objects.filter(dispatched_at__isnull=True).count(),
        )


def registry() -> CollectorRegistry:
    scraped = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(scraped)
    else:
        for collector in (
            DELIVERIES,
            REDELIVERIES,
            RECEIVER_SECONDS,
            REPLICA_FAILURES,
        ):
            scraped.register(collector)
    scraped.register(DatabaseCollector())
    return scraped


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.FLAKYBOARD_METRICS_TOKEN
    if not token:
        return HttpResponse(
            "Metrics are off: set FLAKYBOARD_METRICS_TOKEN.", status=404, content_type="text/plain"
        )
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return HttpResponse("A bearer token is required.", status=401, content_type="text/plain")
    try:
        body = generate_latest(registry())
    except DatabaseError:
        return HttpResponse("The database is unavailable.", status=503, content_type="text/plain")
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers, and how far behind projection and notifications
    are (reported, not judged: a backlog after an outage is normal and drains)."""
    from events.models import Delivery

    try:
        pending = Delivery.objects.filter(outcome=Delivery.Outcome.PENDING)
        count = pending.count()
        oldest = pending.order_by("id").values_list("received_at", flat=True).first()
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    age = round((datetime.now(UTC) - oldest).total_seconds(), 1) if oldest else 0.0
    return JsonResponse(
        {
            "status": "ok",
            "database": "ok",
            "backlog": {"pending": count, "oldest_pending_seconds": max(age, 0.0)},
        }
    )


# ---------------------------------------------------------------- the svix id on log lines

svix_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("svix_id", default="")


class SvixIdFilter(logging.Filter):
    """Adds `svix_id` to every record (empty outside a delivery's receipt)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.svix_id = svix_id_var.get()
        return True


class Timer:
    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
