"""Subscriptions (who is told what, where) and the messages sent to them.

An alert (events.Alert, recorded with the state change) becomes a `Notice` for each
subscription it matches (unique: at most one per alert and subscription, whatever retries
or concurrent dispatchers do); a subscription's notices of one burst are sent together as
one `Message`. A `Message` is the send outbox: its content is rendered once, and the
workers attempt it with back-off until it is sent or failed (the error kept)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from events.models import Alert

# What a subscription can ask to be told about (events.Alert kinds, refined): the reasons.
TRIGGERS = {
    "new_episode": "A test turned flaky or broken",
    "relapse": "A test relapsed (a new episode within 30 days of the last one's end)",
    "fix_relapsed": "A fix relapsed (a new episode within 14 days)",
    "fix_verified": "A fix was verified (14 days without a new episode)",
    "ready_to_release": "A quarantined test is ready to release",
    "target_missed": "An owner's episode missed its triage or fix target",
}


class Subscription(models.Model):
    class Mode(models.TextChoices):
        REALTIME = "realtime", "Real-time alerts"
        DIGEST = "digest", "Weekly digest"

    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True, help_text="Off: nothing is sent to it.")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.REALTIME)
    owners = models.TextField(
        blank=True,
        help_text="Owners, one per line: @org/team, a pattern such as @org/*, or (no owner). "
        "Empty: every test.",
    )
    repositories = models.TextField(
        blank=True, help_text="Repositories (owner/name), one per line. Empty: every repository."
    )
    triggers = models.JSONField(
        default=list, blank=True, help_text="What real-time alerts are sent for. Empty: every trigger."
    )
    # A secret (a webhook token, a password): never shown whole after saving, never logged,
    # not in the API. `destination_hint` is what is shown (notifications.destinations.masked).
    destination = models.CharField(max_length=2000)
    destination_hint = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def owner_patterns(self) -> list[str]:
        return [line.strip() for line in self.owners.splitlines() if line.strip()]

    def trigger_names(self) -> set[str]:
        return set(self.triggers or TRIGGERS) & set(TRIGGERS)

    def repository_names(self) -> list[str]:
        return [line.strip().casefold() for line in self.repositories.splitlines() if line.strip()]


class Message(models.Model):
    class Kind(models.TextChoices):
        ALERTS = "alerts", "Alerts"
        DIGEST = "digest", "Weekly digest"
        TEST = "test", "Test message"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Not sent (subscription off)"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # At most one message per burst, per digest week, per test request: a second
    # dispatcher deciding the same one inserts the same key.
    key = models.CharField(max_length=200, unique=True)
    title = models.CharField(max_length=500)
    content = models.JSONField(help_text="What is sent (rendered once; every attempt sends the same).")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The attempt that holds the message: only it may record the outcome (a worker that
    # stalled past STUCK_AFTER, whose message another worker took over, records nothing).
    claim = models.CharField(max_length=32, blank=True, editable=False)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"]),
            models.Index(fields=["subscription", "-created_at"]),
        ]

    def __str__(self) -> str:
        return self.title


class Notice(models.Model):
    """An alert matched to a subscription; `message` is the message that carries it (empty
    until its burst is grouped)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="notices")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notices")
    # PROTECT: a message that carried notices is history; deleting it would free its
    # notices to be grouped and sent again.
    message = models.ForeignKey(
        Message, on_delete=models.PROTECT, null=True, blank=True, related_name="notices"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "alert"], name="one_notice_per_alert"),
        ]
        indexes = [
            models.Index(
                fields=["subscription", "created_at"],
                condition=models.Q(message__isnull=True),
                name="notice_ungrouped_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.alert} -> {self.subscription}"
