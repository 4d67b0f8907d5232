"""Per-event history: one row per applied delivery (status changes, monitor events,
investigations with their facts, quarantine changes), kept with its event time
(`occurred_at`, Trunk's clock)."""

from django.db import models

from .delivery import Delivery
from .tests import Monitor, MonitorStatus, Status, TestCase


class StatusChange(models.Model):
    """A status change of a test (v2, or legacy v1). One per delivery."""

    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="status_change")
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="status_changes")
    occurred_at = models.DateTimeField()
    previous_status = models.CharField(max_length=8, choices=Status.choices)
    new_status = models.CharField(max_length=8, choices=Status.choices)
    monitor_id = models.UUIDField(null=True, blank=True)
    monitor_type = models.CharField(max_length=100, blank=True)
    monitor_status = models.CharField(max_length=32, blank=True)
    reason = models.TextField(blank=True, help_text="v1 payloads only.")
    quarantined = models.BooleanField(
        null=True, blank=True, help_text="The event's quarantined flag (empty: not sent)."
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["test_case", "occurred_at"]),
            models.Index(fields=["occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.previous_status} → {self.new_status} at {self.occurred_at:%Y-%m-%d %H:%M}"


class MonitorEvent(models.Model):
    """A monitor became active or resolved for one test. Evidence is kept as sent."""

    MonitorStatus = MonitorStatus  # tests.py: MonitorState's status takes the same choices

    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="monitor_event")
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="events")
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="monitor_events")
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=MonitorStatus.choices)
    evidence = models.JSONField(null=True, blank=True)
    quarantined = models.BooleanField(
        null=True, blank=True, help_text="The event's quarantined flag (empty: not sent)."
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["test_case", "occurred_at"]),
            models.Index(fields=["monitor", "test_case", "occurred_at"]),
            models.Index(fields=["occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.monitor} {self.status} at {self.occurred_at:%Y-%m-%d %H:%M}"


class Investigation(models.Model):
    """A completed AI investigation. Summary and failure message are untrusted text."""

    id = models.UUIDField(primary_key=True, help_text="Trunk's investigation id.")
    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="investigation")
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="investigations")
    occurred_at = models.DateTimeField(help_text="created_at from the payload.")
    confidence = models.FloatField()
    markdown_summary = models.TextField(blank=True)
    failure_message = models.TextField(blank=True)
    quarantined = models.BooleanField(
        null=True, blank=True, help_text="The event's quarantined flag (empty: not sent)."
    )
    auto_outcome = models.CharField(
        max_length=16,
        blank=True,
        db_default="",  # written without it by the projection's bulk inserts; "": not yet
        help_text="Derived: whether the episode open at its event time ended within 14 days "
        "(events.metrics.auto_outcome; kept by events/rollups/outcomes.py).",
    )

    class Meta:
        ordering = ["-occurred_at", "id"]
        indexes = [
            models.Index(fields=["test_case", "occurred_at"]),
            models.Index(fields=["occurred_at"]),
            models.Index(fields=["confidence"]),
            # The confidence histogram and series over a period read only this index
            # (index-only scan), not the wide rows with their summaries.
            models.Index(fields=["occurred_at", "confidence"], name="investigation_time_conf_idx"),
            # The automatic outcome per band over a period: index-only as well.
            models.Index(
                fields=["occurred_at", "confidence", "auto_outcome"], name="investigation_outcome_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Investigation {str(self.id)[:8]} ({self.confidence:.2f})"


class InvestigationFact(models.Model):
    investigation = models.ForeignKey(Investigation, on_delete=models.CASCADE, related_name="facts")
    position = models.PositiveIntegerField()
    fact_type = models.CharField(max_length=100, db_index=True)
    content = models.TextField(blank=True)
    confidence = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["investigation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["investigation", "position"], name="unique_fact_position")
        ]

    def __str__(self) -> str:
        return self.fact_type


class QuarantineChange(models.Model):
    """Someone changed a test's quarantine override in Trunk."""

    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="quarantine_change")
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="quarantine_changes")
    occurred_at = models.DateTimeField()
    actor_email = models.CharField(max_length=255, blank=True)
    actor_name = models.CharField(max_length=255, blank=True)
    previous_setting = models.CharField(max_length=64, blank=True)
    updated_setting = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    quarantined = models.BooleanField(
        null=True, blank=True, help_text="The event's quarantined flag (empty: not sent)."
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["test_case", "occurred_at"]),
            models.Index(fields=["occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.previous_setting} → {self.updated_setting}"
