"""The definitions behind flakyboard's numbers, in code once (docs/metrics.md says what
they mean to a user): confidence bands and histogram bins, the relapse window, periods,
UTC days, the "(no owner)" label, the bounds of a plausible event time and the impact
score ("Fix first").

The write side (parsing, rollups), the read side (dashboard selectors, charts, forms)
and the API import these names rather than repeating a number. This module imports
neither `dashboard` nor `api` (dependencies point one way) nor any model, so that
anything may import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Case, Expression, F, FloatField, Q, Value, When
from django.db.models.expressions import BaseExpression, Combinable
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from events.orm import WholeDaysBetween

# Re-exported: every definition is read from events.metrics.
from .targets import TARGET_FIX as TARGET_FIX
from .targets import TARGET_MAX_DAYS as TARGET_MAX_DAYS
from .targets import TARGET_TRIAGE as TARGET_TRIAGE
from .targets import Targets as Targets
from .targets import attainment as attainment
from .targets import default_targets as default_targets
from .targets import target_met as target_met

# ---------------------------------------------------------------- labels

# One label per concept, on every page, table header and chart (docs/metrics.md defines
# each): templates read them with the `label` filter (`{{ "failure_rate"|label }}`).
LABELS = {
    "failure_rate": "Failure rate 7d",
    "prs_impacted": "PRs impacted 7d",
    "status_since": "Status since",
    "quarantined": "Quarantined",
    "median_time_to_fix": "Median time to fix",
    "oldest_open": "Oldest open",
    "relapses": "Relapses",
    "active_monitors": "Active monitors",
    "active_since": "Active since",
    "activations": "Activations",
    "median_time_to_resolve": "Median time to resolve",
    "monitor_type": "Monitor type",
    "impact": "Impact",
    "relapses_all_time": "Relapses (all time)",
    "quarantined_since": "Quarantined since",
    "quarantine_age": "Quarantine age",
    "median_quarantine_age": "Median quarantine age",
    "ready_to_release": "Ready to release",
    "brier_score": "Brier score",
    "ece": "Expected calibration error",
    "share_confirmed": "Share confirmed",
    "fixed_within_14_days": "Fixed within 14 days",
    # Fixes that held
    "fixes_verified": "Fixes verified",
    "fixes_relapsed": "Relapsed",
    "fixes_pending": "Pending",
    "verification_rate": "Verification rate",
    "relapse_curve": "Relapse curve",
    # Owners' targets
    "triage_target_met": "Triage target met",
    "fix_target_met": "Fix target met",
    "breaching_now": "Breaching now",
}
# Spellings that once named the same concepts: no rendered page may show them
# (tests/dashboard/test_labels.py).
OLD_LABELS = (
    "Median to resolve",
    "Median fix time",
    "Failure rate (7d)",
    "PRs impacted (7d)",
    "Failure rate (7 days)",
    "PRs impacted (7 days)",
)


# ---------------------------------------------------------------- plausible event times

# An event time before this, or more than LATEST_AFTER_RECEIPT after the delivery was
# received, is not plausible: the delivery is stored as invalid, naming the field. So no
# figure ever reaches into year 1 or the future.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AFTER_RECEIPT = timedelta(hours=1)


# ---------------------------------------------------------------- owners

# The owner shown for tests without any owner (they count once, under this label).
NO_OWNER = "(no owner)"


# ---------------------------------------------------------------- episodes

# A relapse is an episode that starts at most this long (exactly included) after the end
# of the same test's previous episode.
RELAPSE_WINDOW = timedelta(days=30)


def is_relapse(started_at: datetime, *, previous_end: datetime | None) -> bool:
    return previous_end is not None and started_at - previous_end <= RELAPSE_WINDOW


# ---------------------------------------------------------------- impact ("Fix first")

# The impact score orders the tests to fix first (docs/metrics.md, "Fix first: the impact
# score"). It is a sum of points, times a factor for quarantine, so that anyone can
# recompute it from a test's row:
#
#   impact = Q x (S + P + 20 x R + 0.5 x min(D, 60) + 5 x N), and 0 for a HEALTHY test
#
# The unit is one pull request impacted in the last 7 days (Trunk's own measure of harm):
IMPACT_PER_PR = 1.0
# S: a BROKEN test fails every run, a FLAKY one some runs (Trunk's priority).
IMPACT_STATUS_POINTS = {"BROKEN": 20.0, "FLAKY": 10.0}  # HEALTHY: the score is 0
# R: Trunk's failure rate over 7 days (0 to 1): 20 points at 100 %, 2 at 10 %.
IMPACT_PER_FAILURE_RATE = 20.0
# D: whole days since the current episode started (its open age), capped, so that a
# long-ignored test rises but cannot bury a new test that blocks many pull requests.
IMPACT_PER_DAY_OPEN = 0.5
IMPACT_MAX_DAYS_OPEN = 60
# N: the test's relapses (all history): each says that a fix did not hold.
IMPACT_PER_RELAPSE = 5.0
# Q: a quarantined test's failures no longer block merges (they still cost CI time and
# hide what the test covers), so it weighs a quarter.
IMPACT_QUARANTINED_FACTOR = 0.25


IMPACT_FORMULA = (
    f"impact = Q x (S + P + {IMPACT_PER_FAILURE_RATE:g} x R + {IMPACT_PER_DAY_OPEN:g} x min(D, "
    f"{IMPACT_MAX_DAYS_OPEN}) + {IMPACT_PER_RELAPSE:g} x N), and 0 for a HEALTHY test: S = "
    f"{IMPACT_STATUS_POINTS['BROKEN']:g} for BROKEN, {IMPACT_STATUS_POINTS['FLAKY']:g} for FLAKY; "
    f"P = pull requests impacted in the last 7 days ({IMPACT_PER_PR:g} each); R = failure rate "
    "over 7 days (0 to 1); D = whole days since the current episode started; N = the test's "
    f"relapses; Q = {IMPACT_QUARANTINED_FACTOR:g} when quarantined, else 1. A missing figure counts 0."
)


def impact_score(
    *,
    status: str,
    prs_impacted: int | None,
    failure_rate: float | None,
    days_open: int,
    relapses: int,
    quarantined: bool,
) -> float:
    """The impact score of one test from its inputs (missing figures count 0); the SQL
    of `impact_expression` computes the same."""
    if status not in IMPACT_STATUS_POINTS:
        return 0.0
    points = (
        IMPACT_STATUS_POINTS[status]
        + (prs_impacted or 0) * IMPACT_PER_PR
        + (failure_rate or 0.0) * IMPACT_PER_FAILURE_RATE
        + min(max(days_open, 0), IMPACT_MAX_DAYS_OPEN) * IMPACT_PER_DAY_OPEN
        + relapses * IMPACT_PER_RELAPSE
    )
    return points * (IMPACT_QUARANTINED_FACTOR if quarantined else 1.0)


def impact_help() -> dict[str, object]:
    """The formula and its weights, as the dashboard explains them (from the constants)."""
    return {
        "broken": IMPACT_STATUS_POINTS["BROKEN"],
        "flaky": IMPACT_STATUS_POINTS["FLAKY"],
        "per_pr": IMPACT_PER_PR,
        "per_failure_rate": IMPACT_PER_FAILURE_RATE,
        "per_day": IMPACT_PER_DAY_OPEN,
        "max_days": IMPACT_MAX_DAYS_OPEN,
        "per_relapse": IMPACT_PER_RELAPSE,
        "quarantined": IMPACT_QUARANTINED_FACTOR,
        "relapse_days": RELAPSE_WINDOW.days,
    }


def days_open(*, now: datetime, episode_start: BaseExpression) -> Expression:
    """Whole days from the open episode's start to `now` (at least 0), as the Fix first
    list shows them. Without an open episode (a projection not yet caught up), from the
    status's own time."""
    start = Coalesce(episode_start, F("status_since"), Value(now))
    return Greatest(WholeDaysBetween(start, Value(now)), Value(0))


def impact_days_open(*, now: datetime, episode_start: BaseExpression) -> Expression:
    """D in SQL: `days_open`, at most IMPACT_MAX_DAYS_OPEN."""
    return Least(days_open(now=now, episode_start=episode_start), Value(IMPACT_MAX_DAYS_OPEN))


def impact_expression(*, now: datetime, episode_start: BaseExpression, relapses: Combinable) -> Expression:
    """The impact score in SQL, over a test case's row (status, quarantined, Trunk's 7-day
    figures): `episode_start` is the start of its open episode and `relapses` its relapse
    count, two expressions the caller builds over its episodes. Only the rows of FLAKY
    and BROKEN tests evaluate them (a HEALTHY test is 0 without)."""
    status_points = Case(
        *(When(status=status, then=Value(points)) for status, points in IMPACT_STATUS_POINTS.items()),
        default=Value(0.0),
        output_field=FloatField(),
    )
    points = (
        status_points
        + Coalesce(F("pull_requests_impacted_last_7d"), Value(0)) * Value(IMPACT_PER_PR)
        + Coalesce(F("failure_rate_last_7d"), Value(0.0)) * Value(IMPACT_PER_FAILURE_RATE)
        + impact_days_open(now=now, episode_start=episode_start) * Value(IMPACT_PER_DAY_OPEN)
        + relapses * Value(IMPACT_PER_RELAPSE)
    )
    factor = Case(
        When(quarantined=True, then=Value(IMPACT_QUARANTINED_FACTOR)),
        default=Value(1.0),
        output_field=FloatField(),
    )
    # The points once in the SQL (each subquery planned once, not once per branch).
    return Case(
        When(status__in=list(IMPACT_STATUS_POINTS), then=points * factor),
        default=Value(0.0),
        output_field=FloatField(),
    )


# ---------------------------------------------------------------- investigations

# Confidence bands: high >= 0.8, medium >= 0.5 and < 0.8, low < 0.5. Each is (low bound
# included, high bound excluded); None is unbounded. Highest band first.
HIGH_CONFIDENCE = 0.8
MEDIUM_CONFIDENCE = 0.5
CONFIDENCE_BANDS: dict[str, tuple[float | None, float | None]] = {
    "high": (HIGH_CONFIDENCE, None),
    "medium": (MEDIUM_CONFIDENCE, HIGH_CONFIDENCE),
    "low": (None, MEDIUM_CONFIDENCE),
}
BAND_LABELS = {
    "high": f"High (≥ {HIGH_CONFIDENCE})",
    "medium": f"Medium ({MEDIUM_CONFIDENCE}–{HIGH_CONFIDENCE})",
    "low": f"Low (< {MEDIUM_CONFIDENCE})",
}
BANDS_HELP = f"high >= {HIGH_CONFIDENCE}, medium >= {MEDIUM_CONFIDENCE} and < {HIGH_CONFIDENCE}, low < {MEDIUM_CONFIDENCE}"


def band_of(confidence: float | None) -> str:
    """The confidence band ("high", "medium" or "low"; "" without a confidence)."""
    if confidence is None:
        return ""
    if confidence >= HIGH_CONFIDENCE:
        return "high"
    return "medium" if confidence >= MEDIUM_CONFIDENCE else "low"


def band_q(band: str, field: str = "confidence") -> Q:
    """The filter "`field` is inside `band`" (a CONFIDENCE_BANDS key)."""
    low, high = CONFIDENCE_BANDS[band]
    q = Q()
    if low is not None:
        q &= Q(**{f"{field}__gte": low})
    if high is not None:
        q &= Q(**{f"{field}__lt": high})
    return q


# The confidence histogram's bins are tenths [i/10, (i+1)/10); the last one is [0.9, ...]
# so that 1.0 falls in it. The same float bounds on every path (SQL and Python).
HISTOGRAM_BINS: list[tuple[float, float | None]] = [
    (i / 10, (i + 1) / 10 if i < 9 else None) for i in range(10)
]


def bin_q(index: int, field: str = "confidence") -> Q:
    """The filter "`field` falls in histogram bin `index`"."""
    low, high = HISTOGRAM_BINS[index]
    return Q(**{f"{field}__gte": low}) & (Q(**{f"{field}__lt": high}) if high is not None else Q())


def band_counts(histogram: list[int]) -> dict[str, int]:
    """Counts per band from the histogram's counts: the band limits fall on bin edges,
    so each bin lies in one band (bins 0-4 low, 5-7 medium, 8-9 high)."""
    counts = dict.fromkeys(CONFIDENCE_BANDS, 0)
    for (low, _high), n in zip(HISTOGRAM_BINS, histogram, strict=True):
        counts[band_of(low)] += n
    return counts


# ---------------------------------------------------------------- periods and days

# `period` = 7d, 30d, 90d or all: N days, None for all history.
PERIODS: dict[str, int | None] = {"7d": 7, "30d": 30, "90d": 90, "all": None}
DEFAULT_PERIOD = "30d"
PERIOD_LABELS = {"7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days", "all": "All time"}


@dataclass(frozen=True)
class Period:
    """A period ending now: an event belongs to it when its time t satisfies
    now - N days < t <= now (the start excluded; `all` has no start)."""

    name: str
    now: datetime

    @property
    def start(self) -> datetime | None:
        days = PERIODS[self.name]
        return None if days is None else self.now - timedelta(days=days)

    @classmethod
    def parse(cls, value: str | None, *, now: datetime | None = None) -> Period:
        """The named period, or the default one for a missing or unknown name."""
        name = value if value in PERIODS else DEFAULT_PERIOD
        return cls(name=name, now=now or timezone.now())

    def filter(self, field: str) -> Q:
        """The filter "`field` lies inside the period"."""
        q = Q(**{f"{field}__lte": self.now})
        return q & Q(**{f"{field}__gt": self.start}) if self.start else q


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of a moment (every day in flakyboard is a UTC day)."""
    return moment.astimezone(UTC).date()


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def end_of_day(day: date) -> datetime:
    """The end of day D: D+1 00:00 UTC ("at the end of day D" means up to, excluding, it)."""
    return start_of_day(day + timedelta(days=1))


# ---------------------------------------------------------------- fixes that held

# A fix (a closed episode) is verified when the test stays out of any new episode for
# this long after it; until then it is pending; a new episode within it: relapsed.
FIX_VERIFICATION_WINDOW = timedelta(days=14)
# The relapse curve: the share of fixes still without a new episode d days after the
# fix, d = 0..RELAPSE_CURVE_DAYS (Kaplan-Meier).
RELAPSE_CURVE_DAYS = 90
# The days at which the curve's chart and tables quote the number still observed.
RELAPSE_CURVE_MARKS = (0, 7, 14, 30, 60, 90)

FIX_VERIFIED = "verified"
FIX_RELAPSED = "relapsed"
FIX_PENDING = "pending"


def fix_relapsed(*, ended_at: datetime, next_started_at: datetime | None) -> bool:
    """The test's next episode started within FIX_VERIFICATION_WINDOW after the fix."""
    return next_started_at is not None and next_started_at - ended_at <= FIX_VERIFICATION_WINDOW


def fix_outcome(*, ended_at: datetime, next_started_at: datetime | None, now: datetime) -> str:
    """verified, relapsed or pending, for a closed episode (METRICS "Verified fix")."""
    if fix_relapsed(ended_at=ended_at, next_started_at=next_started_at):
        return FIX_RELAPSED
    return FIX_VERIFIED if now - ended_at >= FIX_VERIFICATION_WINDOW else FIX_PENDING


# A fix whose test has no next episode (yet): FixTally's days_to_next.
NO_NEXT_EPISODE = -1


def relapse_curve_day(*, ended_at: datetime, next_started_at: datetime | None) -> int:
    """The relapse curve's day of a fix followed by a new episode: the whole days from the
    fix to the next start (rounded down), clamped to 0..RELAPSE_CURVE_DAYS + 1 (past the
    curve a fix only counts as at risk). NO_NEXT_EPISODE without one."""
    if next_started_at is None:
        return NO_NEXT_EPISODE
    return min(max((next_started_at - ended_at) // timedelta(days=1), 0), RELAPSE_CURVE_DAYS + 1)


def verification_rate(verified: int, relapsed: int) -> float | None:
    """verified / (verified + relapsed); None without any."""
    return verified / (verified + relapsed) if verified + relapsed else None


@dataclass(frozen=True)
class CurvePoint:
    day: int
    surviving: float  # the Kaplan-Meier estimate S(day), 0..1
    at_risk: int  # fixes still observed (no new episode, not censored) at the start of that day


def kaplan_meier(
    events: dict[int, int], censored: dict[int, int], *, days: int = RELAPSE_CURVE_DAYS
) -> list[CurvePoint]:
    """The Kaplan-Meier estimate of "no new episode yet" for d = 0..days, from the number
    of fixes whose next episode started after d whole days (`events[d]`) and of those
    observed for d whole days without one (`censored[d]`: until now). A fix is at risk
    on day d while it was observed for at least d days; S(d) is the product, over the
    days up to d, of (1 - events that day / at risk that day). Durations past `days`
    only count as at risk."""
    at_risk = sum(events.values()) + sum(censored.values())
    surviving = 1.0
    points = []
    for day in range(days + 1):
        ended = events.get(day, 0)
        if at_risk and ended:
            surviving *= 1 - ended / at_risk
        points.append(CurvePoint(day=day, surviving=surviving, at_risk=at_risk))
        at_risk -= ended + censored.get(day, 0)
    return points


# ---------------------------------------------------------------- quarantine

# Ready to release: quarantined now, HEALTHY for at least this long, no active monitor.
READY_TO_RELEASE_HEALTHY = timedelta(days=14)


# ---------------------------------------------------------------- investigation calibration

# Calibration needs enough verdicts to say anything: below this many, the page says how
# many more it needs instead of drawing noise (per fact type the same bound).
CALIBRATION_MIN_VERDICTS = 20
# The automatic outcome: the episode open at the investigation's event time ended
# within this long after it ("fixed within 14 days").
AUTO_OUTCOME_WINDOW = timedelta(days=14)


# The automatic outcome of one investigation: the test's episode open at its event time
# (started at or before it, not ended at it; the latest such) ended within
# AUTO_OUTCOME_WINDOW after it (fixed), or not (not fixed: still open, or ended later),
# or there was none. Shown as "too recent" while a not-fixed one's window has not passed.
AUTO_FIXED = "fixed"
AUTO_NOT_FIXED = "not_fixed"
AUTO_TOO_RECENT = "too_recent"
AUTO_NO_OPEN_EPISODE = "no_open_episode"
AUTO_OUTCOMES = (AUTO_FIXED, AUTO_NOT_FIXED, AUTO_TOO_RECENT, AUTO_NO_OPEN_EPISODE)


def auto_outcome(at: datetime, episodes: Iterable[tuple[datetime, datetime | None]]) -> str:
    """The automatic outcome of an investigation at `at` on a test with these episodes
    ((started_at, ended_at or None), in any order): fixed, not_fixed or no_open_episode
    (too_recent depends on the clock: the caller's)."""
    open_at = [
        (started, ended) for started, ended in episodes if started <= at and (ended is None or ended > at)
    ]
    if not open_at:
        return AUTO_NO_OPEN_EPISODE
    # The latest start; between two starting together, the one still open, then the later end.
    _started, ended = max(open_at, key=lambda e: (e[0], e[1] is None, e[1] or e[0]))
    return AUTO_FIXED if ended is not None and ended <= at + AUTO_OUTCOME_WINDOW else AUTO_NOT_FIXED


def histogram_bin(confidence: float) -> int:
    """The index of the tenth [i/10, (i+1)/10) holding `confidence` (1.0 in the last)."""
    for index, (low, high) in enumerate(HISTOGRAM_BINS):
        if confidence >= low and (high is None or confidence < high):
            return index
    return 0  # below 0: the first bin (Trunk's confidences are 0..1)


def brier_score(pairs: list[tuple[float, int]]) -> float | None:
    """Mean of (confidence - outcome)^2 over (confidence, outcome 1 confirmed / 0
    rejected) pairs; None without any."""
    return sum((c - o) ** 2 for c, o in pairs) / len(pairs) if pairs else None


def expected_calibration_error(bins: list[tuple[int, float, float]]) -> float | None:
    """Sum over bins of |share confirmed - mean confidence| weighted by the bin's count,
    from (count, mean confidence, share confirmed) per bin; None without any verdict."""
    total = sum(count for count, _mean, _share in bins)
    if not total:
        return None
    return sum(count * abs(share - mean) for count, mean, share in bins if count) / total
