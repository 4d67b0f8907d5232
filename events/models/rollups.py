"""Rollups (events/rollups/): derived from the history rows (history.py) and kept with
them, so that pages read a few indexed rows instead of replaying all history per
request. Rebuilt with the projections."""

from django.db import models

from .history import MonitorEvent
from .tests import Monitor, Status, TestCase


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
            # a time, dashboard.selectors.status.status_counts_at) as two index ranges, not a scan.
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
    next_started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Start of the test's next episode (fixes that held; empty: none yet).",
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
            # The open episode of each test (its start: the impact score, Fix first).
            models.Index(
                fields=["test_case", "-started_at"],
                condition=models.Q(ended_at__isnull=True),
                name="episode_open_idx",
            ),
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


# Per-owner rollups (events/rollups/owners.py). Owners are keyed by Owner.key
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
    next_started_at = models.DateTimeField(null=True, blank=True, help_text="As Episode.next_started_at.")
    first_triage_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The first triage action on the test at or after the start (time to triage; "
        "events/rollups/triaged.py).",
    )

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


class FixTally(models.Model):
    """Fixes (closed episodes) over all history, counted by what followed them: the whole
    days until the test's next episode (events.metrics.relapse_curve_day; -1: none yet)
    and whether that was within the verification window (a relapsed fix). Rows with
    `everyone` count every test's fixes once (owner_key ""); the others count them per
    owner of the test ("" for tests without owners). The fix counts and the relapse curve
    over all history sum these few rows instead of reading every episode (fixes of the
    last days, whose outcome still depends on the clock, are read from the episodes:
    dashboard/selectors/fixes.py). Kept by adding differences, as OwnerCount."""

    everyone = models.BooleanField()
    owner_key = models.CharField(max_length=255, blank=True)
    days_to_next = models.SmallIntegerField(help_text="Whole days to the next episode (0..91); -1: none yet.")
    relapsed = models.BooleanField(help_text="The next episode started within the verification window.")
    fixes = models.IntegerField(default=0)

    class Meta:
        ordering = ["everyone", "owner_key", "days_to_next", "relapsed"]
        constraints = [
            models.UniqueConstraint(
                fields=["everyone", "owner_key", "days_to_next", "relapsed"], name="unique_fix_tally"
            )
        ]

    def __str__(self) -> str:
        scope = "everyone" if self.everyone else self.owner_key or "(no owner)"
        return f"{scope}: {self.fixes} fixes, next episode after {self.days_to_next} days"


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


# Investigation rollups (events/rollups/investigations.py: refresh_investigation_days). Keyed by the UTC
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


class CalibrationBin(models.Model):
    """The verdicts on investigations over all history, per tenth of confidence (bin 9
    holds 1.0): how many, how many confirmed, the sum of the confidences and the sum of
    the squared errors (confidence - outcome)^2, outcome 1 confirmed and 0 rejected.
    Rows with `of_facts` count each fact of a judged investigation that has a
    confidence, by fact type and the fact's own confidence; the others count the
    investigations (fact_type ""). The reliability diagram, Brier score and ECE over all
    history read these few rows (dashboard/selectors/calibration.py). Kept by adding
    differences (events/rollups/calibration.py): the triage service when verdicts change,
    the projection when a judged investigation is written or removed."""

    of_facts = models.BooleanField()
    fact_type = models.CharField(max_length=100, blank=True)
    bin = models.SmallIntegerField()
    verdicts = models.IntegerField(default=0)
    confirmed = models.IntegerField(default=0)
    confidence_sum = models.FloatField(default=0)
    squared_error_sum = models.FloatField(default=0)

    class Meta:
        ordering = ["of_facts", "fact_type", "bin"]
        constraints = [
            models.UniqueConstraint(fields=["of_facts", "fact_type", "bin"], name="unique_calibration_bin")
        ]

    def __str__(self) -> str:
        scope = self.fact_type if self.of_facts else "investigations"
        return f"{scope} bin {self.bin}: {self.verdicts} verdict(s)"


class OutcomeTally(models.Model):
    """The investigations over all history per confidence band and automatic outcome
    (Investigation.auto_outcome: fixed, not_fixed, no_open_episode): the investigations
    page and the calibration stats over all history read these rows, and only the
    investigations of the last 14 days (whose not_fixed is still "too recent") from the
    index. Kept by adding differences (events/rollups/outcomes.py)."""

    band = models.CharField(max_length=8)
    outcome = models.CharField(max_length=16)
    investigations = models.IntegerField(default=0)

    class Meta:
        ordering = ["band", "outcome"]
        constraints = [models.UniqueConstraint(fields=["band", "outcome"], name="unique_outcome_tally")]

    def __str__(self) -> str:
        return f"{self.band} {self.outcome}: {self.investigations}"


class TargetTally(models.Model):
    """Owner episodes over all history by how long they took to be triaged and fixed:
    per owner ("" for none) and kind ("triage": from the start to the first triage
    action; "fix": to the end), the episodes per whole days rounded up (-1: not yet;
    capped past the longest target), counting only episodes whose start is known (-2,
    under "triage": those whose start is unknown, which only say the owner has
    episodes). Attainment over all history for any target of whole days is then a sum
    over these rows (dashboard/selectors/targets.py). Kept by adding differences
    whenever a test's owner episodes or their first triage change
    (events/rollups/targets.py)."""

    owner_key = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=8)
    days = models.SmallIntegerField()
    episodes = models.IntegerField(default=0)

    class Meta:
        ordering = ["owner_key", "kind", "days"]
        constraints = [
            models.UniqueConstraint(fields=["owner_key", "kind", "days"], name="unique_target_tally")
        ]

    def __str__(self) -> str:
        return f"{self.owner_key or '(no owner)'} {self.kind} {self.days}d: {self.episodes}"
