"""Investigations: the confidence summary (histogram, per day, facts by type) and the
filterable list (the investigations page, the API's confidence stats and history)."""

from __future__ import annotations

from datetime import UTC

from django.db.models import Avg, Count, Exists, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from events import rollups
from events.metrics import CONFIDENCE_BANDS, HISTOGRAM_BINS, Period, band_q, bin_q
from events.models import FactDayCount, Investigation, InvestigationDay, InvestigationFact, Owner
from events.orm import distinct_values, related_count

from .common import in_repository, owned_by


def investigation_summary(*, period: Period, repository: int | None = None) -> dict:
    """Confidence histogram (tenths; 1.0 in the last bin), per-day mean confidence, and
    facts by type (count, mean confidence) over the investigations inside the period.

    All history, all repositories, and no investigation dated after now (one index
    probe): from the per-day rollups (InvestigationDay, FactDayCount), a row per day
    whatever the number of investigations. Otherwise from the investigations and facts
    of the period. Three queries either way."""
    whole_history = (
        period.start is None
        and not repository
        and not Investigation.objects.filter(occurred_at__gt=period.now).exists()
    )
    if whole_history:
        return _investigation_summary_from_days()
    investigations = Investigation.objects.filter(
        period.filter("occurred_at"), in_repository("test_case__repository", repository)
    )
    # Counted on confidence (never null), not id: the histogram and the series then read
    # only the (occurred_at, confidence) index, not the wide rows with their summaries.
    bins = {f"b{i}": Count("confidence", filter=bin_q(i)) for i in range(len(HISTOGRAM_BINS))}
    histogram = investigations.aggregate(**bins, total=Count("*"))
    over_time = list(
        investigations.annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .values("day")
        .annotate(count=Count("*"), mean_confidence=Avg("confidence"))
        .order_by("day")
    )
    if period.start is None and not repository:
        # All history with investigations dated after now: every fact whose investigation
        # is not in the future. Said as an anti-join on the few future investigations,
        # this reads the facts once; `investigation IN (every investigation)` hashes all
        # investigations first (3x slower at L).
        in_period = ~Q(
            Exists(Investigation.objects.filter(pk=OuterRef("investigation_id"), occurred_at__gt=period.now))
        )
    else:
        in_period = Q(investigation__in=investigations)
    facts = list(
        InvestigationFact.objects.filter(in_period)
        .values("fact_type")
        .annotate(count=Count("id"), mean_confidence=Avg("confidence"))
        .order_by("-count", "fact_type")
    )
    return {
        "histogram": [histogram[f"b{i}"] for i in range(len(HISTOGRAM_BINS))],
        "total": histogram["total"],
        "over_time": over_time,
        "facts_by_type": facts,
    }


def _investigation_summary_from_days() -> dict:
    """investigation_summary over all history, from the day rollups: the series is the
    days' rows themselves, and the histogram and total their sums (a row per day, summed
    as they are read rather than in a fourth query); facts by type sum the per-day
    counts and confidence sums in SQL (the mean over facts with a confidence, as AVG)."""
    histogram = [0] * len(rollups.BIN_FIELDS)
    over_time = []
    for day, count, confidence_sum, *bins in (
        InvestigationDay.objects.filter(count__gt=0)
        .order_by("day")
        .values_list("day", "count", "confidence_sum", *rollups.BIN_FIELDS)
    ):
        over_time.append({"day": day, "count": count, "mean_confidence": confidence_sum / count})
        histogram = [total + n for total, n in zip(histogram, bins, strict=True)]
    facts = [
        {
            "fact_type": fact_type,
            "count": count,
            "mean_confidence": confidence_sum / rated if rated else None,
        }
        for fact_type, count, rated, confidence_sum in FactDayCount.objects.values_list("fact_type")
        .annotate(n=Sum("count"), rated=Sum("confidence_count"), confidence_sum=Sum("confidence_sum"))
        .values_list("fact_type", "n", "rated", "confidence_sum")
        .order_by("-n", "fact_type")
    ]
    return {
        "histogram": histogram,
        "total": sum(row["count"] for row in over_time),
        "over_time": over_time,
        "facts_by_type": facts,
    }


def investigation_list(
    *,
    period: Period,
    repository: int | None = None,
    band: str | None = None,
    owner: str | None = None,
    fact_type: str | None = None,
) -> QuerySet[Investigation]:
    """Investigations inside the period, newest first, with their test (and its
    repository and owners, prefetched) and a `facts_count`: a fixed number of queries
    per page. `band` is a CONFIDENCE_BANDS key; `owner` an owner in any case or "none"."""
    investigations = Investigation.objects.filter(
        period.filter("occurred_at"), in_repository("test_case__repository", repository)
    )
    if band in CONFIDENCE_BANDS:
        investigations = investigations.filter(band_q(band))
    if owner:
        investigations = investigations.filter(owned_by(owner, "test_case"))
    if fact_type:
        investigations = investigations.filter(
            Exists(InvestigationFact.objects.filter(investigation=OuterRef("pk"), fact_type=fact_type))
        )
    # facts_count is a correlated subquery, not Count("facts"): a GROUP BY over the join
    # would aggregate every investigation of the period before the page's LIMIT (600 ms
    # at L for `all`), and would make the paginator's COUNT group too. As a subquery it
    # runs for the page's rows only, the newest first through the occurred_at index.
    return (
        investigations.select_related("test_case__repository")
        .prefetch_related(Prefetch("test_case__owners", queryset=Owner.objects.order_by("key")))
        .annotate(facts_count=related_count(InvestigationFact, "investigation"))
        .order_by("-occurred_at", "id")
    )


def fact_types() -> list[str]:
    """Every fact type seen (for the filter's choices). One query that jumps through the
    fact_type index from one value to the next (a plain DISTINCT reads every fact)."""
    return distinct_values(InvestigationFact, "fact_type", limit=None)


def investigation_count(*, period: Period, repository: int | None = None) -> int:
    """Investigations inside the period (the overview's count). One query."""
    return Investigation.objects.filter(
        period.filter("occurred_at"), in_repository("test_case__repository", repository)
    ).count()


def investigation_history(*, test_case_id=None) -> QuerySet[Investigation]:
    """Every investigation (or one test's) with its test, its facts in order and its
    verdict (the API's history list, filtered and paginated by the caller): a fixed number of queries per page."""
    rows = Investigation.objects.select_related("test_case", "verdict__by").prefetch_related(
        Prefetch("facts", queryset=InvestigationFact.objects.order_by("position"))
    )
    return rows if test_case_id is None else rows.filter(test_case_id=test_case_id)
