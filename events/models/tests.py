"""Current state: repositories, owners, tests and their owners, monitors and the latest
status of each (monitor, test) pair, projected from the deliveries and guarded by event
time. The triage fields on `TestCase` are flakyboard's own data and survive a rebuild."""

from django.conf import settings
from django.db import models
from django.urls import reverse


class Status(models.TextChoices):
    """Trunk's test statuses. Priority in Trunk: BROKEN over FLAKY over HEALTHY."""

    HEALTHY = "HEALTHY", "Healthy"
    FLAKY = "FLAKY", "Flaky"
    BROKEN = "BROKEN", "Broken"


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
            # repository (v1 or v2 shapes) create one row (events.projection.entities.upsert_repository).
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
    quarantined_since = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="While quarantined: the event time of the first event of the current unbroken "
        "run of events carrying quarantined: true (events/rollups/quarantine.py).",
    )
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
            # The quarantine ledger, oldest quarantine first.
            models.Index(
                fields=["quarantined_since"],
                condition=models.Q(quarantined=True),
                name="testcase_quarantined_since_idx",
            ),
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


class Monitor(models.Model):
    id = models.UUIDField(primary_key=True, help_text="Trunk's monitor id.")
    type = models.CharField(max_length=100, db_index=True)

    class Meta:
        ordering = ["type", "id"]

    def __str__(self) -> str:
        return f"{self.type} {str(self.id)[:8]}"


class MonitorStatus(models.TextChoices):
    """A monitor's status for one test (MonitorEvent.MonitorStatus), here so that
    MonitorState, the current state, needs nothing from the history."""

    ACTIVE = "active", "Active"
    RESOLVED = "resolved", "Resolved"


class MonitorState(models.Model):
    """Latest status of each (monitor, test) pair, by event time."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="states")
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="monitor_states")
    status = models.CharField(max_length=16, choices=MonitorStatus.choices)
    since = models.DateTimeField()
    event_key = models.CharField(max_length=255, editable=False)
    # Rollups kept by events/rollups/ (refresh_monitor_pairs, rebuild_all); database
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
            # "Has this test an active monitor?" (ready to release: the quarantine summary and
            # ledger) from a small index instead of every state of the test.
            models.Index(
                fields=["test_case"], condition=models.Q(status="active"), name="monitorstate_active_test_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.monitor} {self.status} for {self.test_case} since {self.since:%Y-%m-%d %H:%M}"
