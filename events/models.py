"""The delivery log (source of truth) and the projections derived from it.

Two clocks, never mixed: `occurred_at` is Trunk's event time from the payload,
`received_at` is when flakyboard received the delivery. History and current state
follow `occurred_at` (see ../shared/METRICS.md).

Everything below `Delivery` is a projection: `manage.py rebuild_projections` deletes it
and replays the deliveries. The only exception is the triage fields on `TestCase`
(flakyboard's own data), which survive a rebuild.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse


class Status(models.TextChoices):
    """Trunk's test statuses. Priority in Trunk: BROKEN over FLAKY over HEALTHY."""

    HEALTHY = "HEALTHY", "Healthy"
    FLAKY = "FLAKY", "Flaky"
    BROKEN = "BROKEN", "Broken"


class Delivery(models.Model):
    """One Svix message as received: kept forever, stored once per svix id."""

    class Outcome(models.TextChoices):
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (unknown type)"
        INVALID = "invalid", "Invalid payload"
        FAILED = "failed", "Failed to apply"
        # Stored, waiting for the projector (FLAKYBOARD_DEFERRED_PROJECTION: events/projector.py).
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


class Repository(models.Model):
    """A repository as Trunk names it: by UUID in v2 payloads, by URL only in v1."""

    trunk_id = models.UUIDField(null=True, blank=True)  # unique: Meta.constraints
    html_url = models.URLField(max_length=500, blank=True, db_index=True)
    name = models.CharField(max_length=255, blank=True, help_text="owner/name, from the URL.")

    class Meta:
        verbose_name_plural = "repositories"
        ordering = ["name", "id"]
        constraints = [
            # A partial index (not one a foreign key can use), so that a v1 row adopting its
            # Trunk id takes a plain row lock, which the deferred foreign key checks of
            # tests referencing the row do not wait for (no deadlock at COMMIT).
            models.UniqueConstraint(
                fields=["trunk_id"],
                condition=models.Q(trunk_id__isnull=False),
                name="repository_trunk_id_unique",
            ),
            # One row per URL among the repositories known by URL only: every creation of a
            # repository goes through this slot, so concurrent first deliveries of one
            # repository (v1 or v2 shapes) create one row (projections.upsert_repository).
            models.UniqueConstraint(
                fields=["html_url"],
                condition=models.Q(trunk_id__isnull=True),
                name="repository_url_only_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.html_url or str(self.trunk_id)


class Owner(models.Model):
    """A codeowner. Compared case-insensitively (`key`), shown as first seen (`name`)."""

    key = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    first_seen_at = models.DateTimeField(help_text="Event time of the earliest event naming it.")

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


# The longest triage note, in characters. A note is a few lines of what is known and
# what is next; the bound keeps one form post or PATCH from storing megabytes. The
# field's max_length carries it to every writer: the admin's and the dashboard's forms
# (ModelForm) and the API (ModelSerializer).
TRIAGE_NOTE_MAX_LENGTH = 10_000


class TestCase(models.Model):
    """A test's current state. Trunk's fields are projected; triage fields are ours."""

    __test__ = False  # not a pytest test class

    class Triage(models.TextChoices):
        NEW = "new", "New"
        INVESTIGATING = "investigating", "Investigating"
        FIXED = "fixed", "Fixed"
        WONT_FIX = "wont_fix", "Won't fix"

    id = models.UUIDField(primary_key=True, help_text="Trunk's test case id.")
    repository = models.ForeignKey(
        Repository, null=True, blank=True, on_delete=models.SET_NULL, related_name="test_cases"
    )
    name = models.CharField(max_length=1000)
    classname = models.CharField(max_length=1000, blank=True)
    classname_at = models.DateTimeField(null=True, blank=True, editable=False)
    classname_event_key = models.CharField(max_length=255, blank=True, editable=False)
    parent = models.CharField(max_length=1000, blank=True)
    file_path = models.CharField(max_length=1000, blank=True)
    html_url = models.URLField(max_length=1000, blank=True)
    variant = models.CharField(max_length=255, blank=True)
    codeowners = models.JSONField(default=list, blank=True, help_text="As sent in the latest event.")
    owners = models.ManyToManyField(Owner, through="TestCaseOwner", related_name="test_cases")
    quarantined = models.BooleanField(default=False)
    quarantined_at = models.DateTimeField(null=True, blank=True, editable=False)
    quarantined_event_key = models.CharField(max_length=255, blank=True, editable=False)
    failure_rate_last_7d = models.FloatField(null=True, blank=True)
    pull_requests_impacted_last_7d = models.IntegerField(null=True, blank=True)

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.HEALTHY)
    status_since = models.DateTimeField(
        null=True, blank=True, help_text="Event time of the change that set the status."
    )
    # Guards that make projection order-independent: the (event time, svix id) of the
    # event whose values are current. Ties on event time go to the larger svix id.
    status_event_key = models.CharField(max_length=255, blank=True, editable=False)
    attributes_at = models.DateTimeField(editable=False)
    attributes_event_key = models.CharField(max_length=255, blank=True, editable=False)
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()

    # flakyboard's own triage data: never touched by projections or rebuilds.
    triage_state = models.CharField(max_length=16, choices=Triage.choices, default=Triage.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    triage_note = models.TextField(blank=True, max_length=TRIAGE_NOTE_MAX_LENGTH)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["status", "status_since"]),
            models.Index(fields=["-status_since"]),
            models.Index(fields=["quarantined"]),
            models.Index(fields=["triage_state"]),
            models.Index(fields=["variant"]),
            models.Index(fields=["name"]),
            # Per-repository counts by status / quarantined (API and admin repository
            # lists): index-only scans instead of reading every test.
            models.Index(
                fields=["repository", "status", "quarantined"], name="testcase_repository_status_idx"
            ),
            # Most severe first, then by name (status A to Z is BROKEN, FLAKY, HEALTHY): an
            # owner's tests page walks this index instead of sorting all of the owner's tests.
            models.Index(fields=["status", "name", "id"], name="testcase_status_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("dashboard:test-detail", args=[self.pk])


class TestCaseOwner(models.Model):
    __test__ = False

    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="owner_links")
    owner = models.ForeignKey(Owner, on_delete=models.CASCADE, related_name="test_links")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["test_case", "owner"], name="unique_test_case_owner")]
        indexes = [models.Index(fields=["owner", "test_case"])]

    def __str__(self) -> str:
        return f"{self.owner} owns {self.test_case}"


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

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["test_case", "occurred_at"]),
            models.Index(fields=["occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.previous_status} → {self.new_status} at {self.occurred_at:%Y-%m-%d %H:%M}"


class Monitor(models.Model):
    id = models.UUIDField(primary_key=True, help_text="Trunk's monitor id.")
    type = models.CharField(max_length=100, db_index=True)

    class Meta:
        ordering = ["type", "id"]

    def __str__(self) -> str:
        return f"{self.type} {str(self.id)[:8]}"


class MonitorEvent(models.Model):
    """A monitor became active or resolved for one test. Evidence is kept as sent."""

    class MonitorStatus(models.TextChoices):
        ACTIVE = "active", "Active"
        RESOLVED = "resolved", "Resolved"

    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="monitor_event")
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="events")
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="monitor_events")
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=MonitorStatus.choices)
    evidence = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["test_case", "occurred_at"]),
            models.Index(fields=["monitor", "test_case", "occurred_at"]),
            models.Index(fields=["occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.monitor} {self.status} at {self.occurred_at:%Y-%m-%d %H:%M}"


class MonitorState(models.Model):
    """Latest status of each (monitor, test) pair, by event time."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="states")
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="monitor_states")
    status = models.CharField(max_length=16, choices=MonitorEvent.MonitorStatus.choices)
    since = models.DateTimeField()
    event_key = models.CharField(max_length=255, editable=False)
    # Rollups kept by events/rollups.py (refresh_monitor_pair, rebuild_all); database
    # defaults, because the projections and the bulk rebuild insert rows without them.
    activations = models.IntegerField(
        default=0, db_default=0, editable=False, help_text="`active` events of the pair (flapping)."
    )
    event_days = models.TextField(
        default="",
        db_default="",
        editable=False,
        help_text="The pair's events as counted in MonitorDayCount: 'YYYY-MM-DDa' or 'YYYY-MM-DDr', comma-separated.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["monitor", "test_case"], name="unique_monitor_state")]
        indexes = [
            models.Index(fields=["status", "since"]),
            # Flapping over all history: the top pairs straight from the index.
            models.Index(fields=["-activations", "test_case", "monitor"], name="monitorstate_flapping_idx"),
            # The monitor list: active pairs and the latest event per monitor.
            models.Index(fields=["monitor", "status", "since"], name="monitorstate_monitor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.monitor} {self.status} for {self.test_case} since {self.since:%Y-%m-%d %H:%M}"


class Investigation(models.Model):
    """A completed AI investigation. Summary and failure message are untrusted text."""

    id = models.UUIDField(primary_key=True, help_text="Trunk's investigation id.")
    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="investigation")
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="investigations")
    occurred_at = models.DateTimeField(help_text="created_at from the payload.")
    confidence = models.FloatField()
    markdown_summary = models.TextField(blank=True)
    failure_message = models.TextField(blank=True)

    class Meta:
        ordering = ["-occurred_at", "id"]
        indexes = [
            models.Index(fields=["test_case", "occurred_at"]),
            models.Index(fields=["occurred_at"]),
            models.Index(fields=["confidence"]),
            # The confidence histogram and series over a period read only this index
            # (index-only scan), not the wide rows with their summaries.
            models.Index(fields=["occurred_at", "confidence"], name="investigation_time_conf_idx"),
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

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["test_case", "occurred_at"]),
            models.Index(fields=["occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.previous_setting} → {self.updated_setting}"


# ---------------------------------------------------------------- rollups (events/rollups.py)
# Derived from the history rows above and kept with them, so that pages read a few
# indexed rows instead of replaying all history per request. Rebuilt with the projections.


class StatusInterval(models.Model):
    """A test's status from `started_at` until `ended_at` (null: still current)."""

    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="status_intervals")
    status = models.CharField(max_length=8, choices=Status.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    changed = models.BooleanField(
        default=False,
        help_text="Started by a status change (TransitionDayCount counts it), not the status before the first.",
    )

    class Meta:
        ordering = ["test_case", "started_at", "id"]
        indexes = [
            models.Index(fields=["test_case", "started_at"]),
            models.Index(fields=["started_at", "ended_at"]),
            # With the one above: the intervals starting or ending in a range (status at
            # a time, dashboard.queries.status_counts_at) as two index ranges, not a scan.
            models.Index(fields=["ended_at"], name="statusinterval_ended_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.status} from {self.started_at:%Y-%m-%d %H:%M}"


class StatusDayDelta(models.Model):
    """Tests entering `status` on `day` minus tests leaving it (UTC days): the running sum
    over days is the number of tests in that status at the end of each day."""

    day = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices)
    delta = models.IntegerField(default=0)

    class Meta:
        ordering = ["day", "status"]
        constraints = [models.UniqueConstraint(fields=["day", "status"], name="unique_status_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.status} {self.delta:+d}"


class TransitionDayCount(models.Model):
    """Status change events per UTC day of event time and new_status (METRICS
    "Transitions on day D"); on the HEALTHY row, `fixes`: closed episodes that ended that
    day (the number of fixes for the median time to fix over all history)."""

    day = models.DateField()
    new_status = models.CharField(max_length=8, choices=Status.choices)
    count = models.IntegerField(default=0)
    fixes = models.IntegerField(default=0)

    class Meta:
        ordering = ["day", "new_status"]
        constraints = [models.UniqueConstraint(fields=["day", "new_status"], name="unique_transition_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.new_status} {self.count}"


class Episode(models.Model):
    """HEALTHY -> FLAKY/BROKEN ... -> HEALTHY (METRICS: "Episodes")."""

    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="episodes")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Empty while open.")
    previous_end = models.DateTimeField(
        null=True, blank=True, help_text="End of the test's previous episode (relapses)."
    )
    seconds = models.FloatField(
        null=True, blank=True, help_text="Time to fix (closed episodes whose start is known)."
    )
    start_known = models.BooleanField(
        default=True,
        help_text="False: the test was first seen already FLAKY or BROKEN; the episode began "
        "before started_at (its first event), and its time to fix stays out of medians.",
    )

    class Meta:
        ordering = ["test_case", "started_at"]
        indexes = [
            models.Index(fields=["test_case", "started_at"]),
            models.Index(fields=["ended_at"]),
            models.Index(fields=["started_at"]),
            # All history: the middle fix at its offset.
            models.Index(
                fields=["seconds"], condition=models.Q(seconds__isnull=False), name="episode_median_idx"
            ),
            # The few episodes whose start is unknown (not in medians): counted apart.
            models.Index(
                fields=["ended_at"], condition=models.Q(start_known=False), name="episode_start_unknown_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"episode from {self.started_at:%Y-%m-%d %H:%M}"


class MonitorInterval(models.Model):
    """A (monitor, test) pair active from `started_at` until `resolved_at` (null: still
    active): the first `active` event after a `resolved` one, to the next `resolved`."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="intervals")
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="monitor_intervals")
    monitor_type = models.CharField(max_length=100)
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True, help_text="Time to resolve.")

    class Meta:
        ordering = ["monitor", "test_case", "started_at"]
        indexes = [
            models.Index(fields=["monitor", "test_case", "started_at"]),
            models.Index(fields=["resolved_at", "monitor_type"]),
            models.Index(fields=["monitor_type", "seconds"]),
        ]

    def __str__(self) -> str:
        return f"{self.monitor} active from {self.started_at:%Y-%m-%d %H:%M}"


class MonitorTotal(models.Model):
    """Each monitor's events over all history (the sum of its MonitorDayCount rows), so
    that the monitor list reads one row per monitor, not one per day and status."""

    monitor = models.OneToOneField(Monitor, on_delete=models.CASCADE, primary_key=True, related_name="total")
    events = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.monitor}: {self.events} events"


class ResolutionBucket(models.Model):
    """Resolved MonitorInterval rows per monitor type and duration bucket
    (rollups.resolution_bucket: eight buckets per doubling of the time to resolve), so
    that the median time to resolve over all history finds the bucket holding the middle
    resolution from a few hundred rows, then reads it inside that bucket's range of the
    (monitor_type, seconds) index (a few thousand entries at most), instead of walking
    to the middle of every resolution of the type."""

    monitor_type = models.CharField(max_length=100)
    bucket = models.SmallIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        ordering = ["monitor_type", "bucket"]
        constraints = [
            models.UniqueConstraint(fields=["monitor_type", "bucket"], name="unique_resolution_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.monitor_type} bucket {self.bucket}: {self.count}"


class MonitorDayCount(models.Model):
    """Monitor events per (UTC day of event time, monitor, status), and how many of the
    `resolved` ones ended an interval: activations per day, events per monitor and
    resolutions per type without reading every event or interval (a few rows per monitor
    and day, whatever the number of tests)."""

    day = models.DateField()
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="day_counts")
    status = models.CharField(max_length=16, choices=MonitorEvent.MonitorStatus.choices)
    count = models.IntegerField(default=0)
    resolutions = models.IntegerField(
        default=0,
        help_text="On `resolved` rows: those events that ended an active interval (MonitorInterval.resolved_at).",
    )

    class Meta:
        ordering = ["day", "monitor", "status"]
        constraints = [
            models.UniqueConstraint(fields=["monitor", "status", "day"], name="unique_monitor_day_count")
        ]

    def __str__(self) -> str:
        return f"{self.monitor} {self.status} x{self.count} on {self.day}"


# Per-owner rollups (events/rollups.py: refresh_owners). Owners are keyed by Owner.key
# ("" for tests without owners: "(no owner)"), so that one test with several owners counts
# once for each, as METRICS says, and the owner pages read a few rows per owner.


class OwnerTest(models.Model):
    """The rollups' own copy of a test's owner links ("" when it has none) with the status
    and quarantined flag they counted it under: what the test contributes to OwnerCount,
    kept so that a refresh adds exactly the difference when its status, flag or owners
    change."""

    __test__ = False

    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="owner_rollups")
    owner_key = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices)
    quarantined = models.BooleanField(default=False)

    class Meta:
        ordering = ["test_case", "owner_key"]
        constraints = [models.UniqueConstraint(fields=["test_case", "owner_key"], name="unique_owner_test")]

    def __str__(self) -> str:
        return f"{self.owner_key or '(no owner)'}: {self.status}"


class OwnerEpisode(models.Model):
    """An Episode once per owner of its test ("" for none), with its time to fix and
    whether it is a relapse: per-owner medians and counts as index range reads."""

    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="owner_episodes")
    owner_key = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Empty while open.")
    seconds = models.FloatField(
        null=True, blank=True, help_text="Time to fix (closed episodes whose start is known)."
    )
    relapse = models.BooleanField(
        default=False, help_text="Started within 30 days of the end of the test's previous episode."
    )
    start_known = models.BooleanField(default=True, help_text="As Episode.start_known.")

    class Meta:
        ordering = ["test_case", "owner_key", "started_at"]
        indexes = [
            # Fixes inside a period, per owner (index-only).
            models.Index(fields=["ended_at", "owner_key", "seconds"], name="ownerepisode_fixes_idx"),
            # All history: the middle fix of each owner at its offset.
            models.Index(
                fields=["owner_key", "seconds"],
                condition=models.Q(seconds__isnull=False),
                name="ownerepisode_median_idx",
            ),
            models.Index(
                fields=["started_at", "owner_key"],
                condition=models.Q(relapse=True),
                name="ownerepisode_relapse_idx",
            ),
            # The oldest open episode of each owner: the first entry of its range.
            models.Index(
                fields=["owner_key", "started_at"],
                condition=models.Q(ended_at__isnull=True),
                name="ownerepisode_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner_key or '(no owner)'} episode from {self.started_at:%Y-%m-%d %H:%M}"


class OwnerCount(models.Model):
    """Per owner ("" for none): its tests now, those FLAKY, BROKEN and quarantined now, its
    closed episodes (fixes) and relapses over all history. The sums of OwnerTest and
    OwnerEpisode rows, kept by adding differences, so that the codeowners pages read one
    row per owner."""

    owner_key = models.CharField(max_length=255, unique=True, blank=True)
    tests = models.IntegerField(default=0)
    flaky = models.IntegerField(default=0)
    broken = models.IntegerField(default=0)
    quarantined = models.IntegerField(default=0)
    fixes = models.IntegerField(default=0, help_text="Closed episodes (all history).")
    relapses = models.IntegerField(default=0, help_text="Relapse episodes (all history).")
    timed_fixes = models.IntegerField(
        default=0, help_text="Closed episodes whose start is known: the ones the median time to fix takes."
    )

    class Meta:
        ordering = ["owner_key"]

    def __str__(self) -> str:
        return f"{self.owner_key or '(no owner)'}: {self.tests} tests"


class OwnerDayDelta(models.Model):
    """StatusDayDelta per owner ("" for none): the owner's tests entering `status` on `day`
    minus those leaving it. The running sum is the owner's tests by status at the end of
    each day (the owner page's trend), a few rows a day whatever the number of tests."""

    owner_key = models.CharField(max_length=255, blank=True)
    day = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices)
    delta = models.IntegerField(default=0)

    class Meta:
        ordering = ["owner_key", "day", "status"]
        constraints = [
            models.UniqueConstraint(fields=["owner_key", "day", "status"], name="unique_owner_status_day")
        ]

    def __str__(self) -> str:
        return f"{self.owner_key or '(no owner)'} {self.day} {self.status} {self.delta:+d}"


# Investigation rollups (events/rollups.py: refresh_investigation_days). Keyed by the UTC
# day of occurred_at, so that "all history" on the investigations page and in the
# confidence stats reads a row per day (and a few per day for facts), not every
# investigation and fact.


class InvestigationDay(models.Model):
    """The investigations of one UTC day of event time: how many, the sum of their
    confidence (the day's mean is sum / count) and how many fall in each tenth of the
    confidence histogram (bin9 holds [0.9, 1.0], 1.0 included). Recomputed from that
    day's investigations whenever one of them is written or removed; a day whose
    investigations were all removed (moved to another day) is kept with zeros."""

    day = models.DateField(unique=True)
    count = models.IntegerField(default=0)
    confidence_sum = models.FloatField(default=0)
    bin0 = models.IntegerField(default=0)
    bin1 = models.IntegerField(default=0)
    bin2 = models.IntegerField(default=0)
    bin3 = models.IntegerField(default=0)
    bin4 = models.IntegerField(default=0)
    bin5 = models.IntegerField(default=0)
    bin6 = models.IntegerField(default=0)
    bin7 = models.IntegerField(default=0)
    bin8 = models.IntegerField(default=0)
    bin9 = models.IntegerField(default=0)

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.day}: {self.count} investigation(s)"


class FactDayCount(models.Model):
    """The facts of the investigations of one UTC day (of the investigation's event
    time), per fact type: how many, how many have a confidence, and the sum of those
    confidences (mean fact confidence over the non-null ones, as SQL AVG). Recomputed
    with the day's InvestigationDay row, under its lock."""

    day = models.DateField()
    fact_type = models.CharField(max_length=100)
    count = models.IntegerField(default=0)
    confidence_count = models.IntegerField(default=0, help_text="Facts with a confidence.")
    confidence_sum = models.FloatField(default=0)

    class Meta:
        ordering = ["day", "fact_type"]
        constraints = [models.UniqueConstraint(fields=["day", "fact_type"], name="unique_fact_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.fact_type} x{self.count}"
