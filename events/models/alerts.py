"""The outbox of notifications: what the derived state says a test's owners should be
told (a test started an episode, a fix held, a quarantine can be lifted, an owner's
target was missed). Recorded in the transaction that changed the state (the projection)
or, for a deadline that passes with time, by the notification sweep; read and sent by
the notifications app, never by the projection.

flakyboard's own data, like triage: kept through a rebuild (which records none), and
pointing at its test by id without a database constraint (see triage.py)."""

from django.db import models
from django.utils import timezone

from .tests import TestCase


class Alert(models.Model):
    class Kind(models.TextChoices):
        EPISODE_STARTED = "episode_started", "Turned flaky or broken"
        FIX_VERIFIED = "fix_verified", "Fix verified"
        READY_TO_RELEASE = "ready_to_release", "Ready to release from quarantine"
        TARGET_MISSED = "target_missed", "Target missed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    # One alert per occurrence: retries, a second projector or an overlapping sweep that
    # decide the same thing insert the same key, and the database keeps one.
    key = models.CharField(max_length=600, unique=True)
    test_case = models.ForeignKey(
        TestCase, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    owner_key = models.CharField(
        max_length=255, blank=True, help_text="The owner whose target was missed; empty otherwise."
    )
    moment = models.DateTimeField(
        help_text="When it happened: the event time of the change, or when the deadline passed."
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    facts = models.JSONField(default=dict, blank=True, help_text="What the message says (kind-specific).")
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was matched to the subscriptions (empty: not yet)."
    )

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            # The dispatcher reads only the undispatched ones.
            models.Index(
                fields=["recorded_at"],
                condition=models.Q(dispatched_at__isnull=True),
                name="alert_undispatched_idx",
            ),
            models.Index(fields=["test_case", "moment"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.moment:%Y-%m-%d %H:%M})"
