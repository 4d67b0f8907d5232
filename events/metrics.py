"""The definitions behind flakyboard's numbers, in code once (docs/metrics.md says what
they mean to a user): confidence bands and histogram bins, the relapse window, periods,
UTC days, the "(no owner)" label and the bounds of a plausible event time.

The write side (parsing, rollups), the read side (dashboard selectors, charts, forms)
and the API import these names rather than repeating a number. This module imports
neither `dashboard` nor `api` (dependencies point one way) nor any model, so that
anything may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Q
from django.utils import timezone

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
