"""flakyboard's own data beside the projections: verdicts on investigations, the triage
history of each test, and owners' targets. Written only by the triage service
(events/triage.py) and the admin; never by a projection, and kept through a rebuild.

A rebuild empties and refills the projected tables (TRUNCATE on PostgreSQL), and the
tests and investigations come back with the same ids (Trunk's): so these rows point at
them by id without a database constraint (`db_constraint=False`, DO_NOTHING), which
keeps TRUNCATE (no CASCADE) possible and the rows alive across it.
"""

from django.conf import settings
from django.db import models

from .history import Investigation
from .tests import TestCase


class Verdict(models.TextChoices):
    """A person's judgement of an investigation's root cause (METRICS "Investigation
    verdict"). No verdict is no row."""

    CONFIRMED = "confirmed", "Confirmed"
    REJECTED = "rejected", "Rejected"


class InvestigationVerdict(models.Model):
    """The current verdict on one investigation, with its author and time."""

    investigation = models.OneToOneField(
        Investigation,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="verdict",
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["verdict"])]

    def __str__(self) -> str:
        return f"{self.get_verdict_display()} by {self.by or 'nobody'}"


class TriageEvent(models.Model):
    """One triage action on a test (METRICS "Time to triage"): who, when, what changed.
    Empty "from"/"to" values mean unchanged; an assignee is kept by name (a deleted user
    keeps its history)."""

    test_case = models.ForeignKey(
        TestCase, on_delete=models.DO_NOTHING, db_constraint=False, related_name="triage_events"
    )
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    via = models.CharField(max_length=64, blank=True, help_text="dashboard, API, or an admin action.")
    state_from = models.CharField(max_length=16, blank=True)
    state_to = models.CharField(max_length=16, blank=True)
    assignee_changed = models.BooleanField(default=False)
    assignee_from = models.CharField(max_length=150, blank=True)
    assignee_to = models.CharField(max_length=150, blank=True)
    note_edited = models.BooleanField(default=False)
    investigation = models.ForeignKey(
        Investigation,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    verdict_from = models.CharField(max_length=16, blank=True, help_text="Empty: none.")
    verdict_to = models.CharField(max_length=16, blank=True, help_text="Empty: none.")
    message = models.TextField(help_text="What changed, as the admin history says it.")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The first triage action at or after an episode's start (time to triage).
            models.Index(fields=["test_case", "at"]),
            models.Index(fields=["at"]),
        ]

    def __str__(self) -> str:
        return self.message


class OwnerTarget(models.Model):
    """An owner's own targets (days), overriding the installation's defaults
    (FLAKYBOARD_TARGET_TRIAGE_DAYS, FLAKYBOARD_TARGET_FIX_DAYS). Keyed by the owner's
    case-insensitive key ("" for tests without an owner), like the owner rollups, so that
    it survives a rebuild."""

    owner_key = models.CharField(max_length=255, unique=True, blank=True)
    triage_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: the installation's default."
    )
    fix_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: the installation's default."
    )

    class Meta:
        ordering = ["owner_key"]

    def __str__(self) -> str:
        return f"Targets of {self.owner_key or '(no owner)'}"
