"""The delivery log: every Svix message as received, the source of truth that every
other table is projected from (`manage.py rebuild_projections` replays it)."""

from django.db import models


class Delivery(models.Model):
    """One Svix message as received: kept forever, stored once per svix id."""

    class Outcome(models.TextChoices):
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (unknown type)"
        INVALID = "invalid", "Invalid payload"
        FAILED = "failed", "Failed to apply"
        # Stored, waiting for the projector (FLAKYBOARD_DEFERRED_PROJECTION: events/projection/projector.py).
        PENDING = "pending", "Pending"

    svix_id = models.CharField(max_length=255)  # unique: Meta.constraints
    event_type = models.CharField(max_length=255, blank=True)
    body = models.TextField(help_text="The request body as text (exactly as signed unless raw_body is set).")
    # Only for the rare body that text cannot hold (not UTF-8, or a NUL byte, which
    # PostgreSQL text refuses): its exact bytes. `body` then shows it with U+FFFD.
    raw_body = models.BinaryField(null=True, blank=True, editable=False)
    headers = models.JSONField(default=dict, help_text="The svix-*/webhook-* headers and content type.")
    user_agent = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(db_index=True)
    occurred_at = models.DateTimeField(null=True, blank=True, help_text="Event time from the payload.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.TextField(blank=True)
    redeliveries = models.PositiveIntegerField(default=0)
    last_redelivered_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Retention (`manage.py prune_deliveries`, events/retention.py): when the body and headers
    # were dropped. The row stays (id, svix id, type, times, outcome) and so does everything
    # projected from it, but it can no longer be replayed.
    pruned_at = models.DateTimeField(
        null=True, blank=True, help_text="Body and headers dropped by retention: not replayable."
    )

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-received_at", "-id"]
        permissions = [("reprocess_delivery", "Can reprocess deliveries")]
        # Declared here rather than with unique=True / db_index=True: on PostgreSQL those
        # add a second (varchar_pattern_ops) index per column for LIKE 'x%', which nothing
        # here runs, and every INSERT of the receiver's hot path pays for each index.
        constraints = [models.UniqueConstraint(fields=["svix_id"], name="delivery_svix_id_unique")]
        indexes = [
            models.Index(fields=["event_type"], name="delivery_event_type"),
            models.Index(fields=["outcome"], name="delivery_outcome"),
            # The projector's queue, in arrival order: small (empty when caught up).
            models.Index(fields=["id"], condition=models.Q(outcome="pending"), name="delivery_pending"),
            # The overview's last-24-hours invalid and failed counts (dashboard/selectors/
            # deliveries.py, delivery_health) without reading the window's rows: rare outcomes,
            # so small, and never written for a delivery that is processed.
            models.Index(
                fields=["received_at"],
                include=["outcome"],
                condition=models.Q(outcome__in=["invalid", "failed"]),
                name="delivery_unhealthy",
            ),
            # "Is anything pruned?" (a rebuild asks) without reading the log: empty until pruning.
            models.Index(fields=["id"], condition=models.Q(pruned_at__isnull=False), name="delivery_pruned"),
        ]

    def __str__(self) -> str:
        return f"{self.svix_id} ({self.event_type or 'no type'})"

    @property
    def raw_bytes(self) -> bytes:
        """The body exactly as signed."""
        return bytes(self.raw_body) if self.raw_body is not None else self.body.encode()

    @property
    def size(self) -> int:
        return len(self.raw_bytes)


class ProjectorTotals(models.Model):
    """What every projector has done, on any host, since the table was created: one row,
    added to after each batch (events/projection/projector.py) and read by `/metrics`
    (flakyboard/observability.py) as counters. Kept in the database rather than in each
    projector's memory, because a projector in its own container or on another machine
    has no `/metrics` of its own. Not a projection: rebuilds leave it alone."""

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    batches = models.BigIntegerField(default=0)
    deliveries = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "projector totals"

    def __str__(self) -> str:
        return f"{self.batches} batches, {self.deliveries} deliveries, {self.errors} errors"
