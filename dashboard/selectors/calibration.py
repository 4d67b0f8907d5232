"""Is Trunk's AI right? The calibration of Trunk's confidence against people's verdicts
(reliability per tenth, Brier score, expected calibration error), the same per fact type
with the facts' own confidence, and apart the automatic outcome "fixed within 14 days"
per confidence band (docs/metrics.md, "Is Trunk's AI right?").

Three queries whatever the number of investigations: one grouped query per bin for the
verdicts, one per (fact type, bin) for the facts, one per outcome for the automatic
outcome. Python only combines their few aggregated rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Avg, Case, Count, F, FloatField, Q, Sum, Value, When

from events.metrics import (
    AUTO_FIXED,
    AUTO_NO_OPEN_EPISODE,
    AUTO_NOT_FIXED,
    AUTO_OUTCOME_WINDOW,
    AUTO_OUTCOMES,
    AUTO_TOO_RECENT,
    BAND_LABELS,
    CALIBRATION_MIN_VERDICTS,
    CONFIDENCE_BANDS,
    HISTOGRAM_BINS,
    Period,
    band_q,
    bin_q,
    expected_calibration_error,
)
from events.models import (
    CalibrationBin,
    Investigation,
    InvestigationFact,
    InvestigationVerdict,
    OutcomeTally,
    Verdict,
)

from .common import in_repository

# The automatic outcome of one investigation (the open episode at its event time).
FIXED = AUTO_FIXED
NOT_FIXED = AUTO_NOT_FIXED
TOO_RECENT = AUTO_TOO_RECENT
NO_OPEN_EPISODE = AUTO_NO_OPEN_EPISODE


def _bin_index(field: str) -> Case:
    """The histogram bin of `field` in SQL (events.metrics.bin_q, the same float bounds)."""
    return Case(
        *(When(bin_q(i, field), then=Value(i)) for i in range(len(HISTOGRAM_BINS))),
        default=Value(0),  # below 0: the first bin, as histogram_bin
    )


def _reliability_columns(confidence: str, verdict: str) -> dict[str, Any]:
    """Per group: verdicts, mean confidence, confirmed, and the sum of (confidence -
    outcome)^2 (outcome 1 confirmed, 0 rejected), from which Brier is the mean."""
    outcome = Case(When(**{verdict: Verdict.CONFIRMED}, then=Value(1.0)), default=Value(0.0))
    error = F(confidence) - outcome
    return {
        "n": Count("*"),
        "mean": Avg(confidence),
        "confirmed": Count(confidence, filter=Q(**{verdict: Verdict.CONFIRMED})),
        "sse": Sum(error * error, output_field=FloatField()),
    }


@dataclass(frozen=True)
class _BinRow:
    """One bin's aggregates: verdicts, mean confidence, confirmed, sum of squared errors."""

    n: int
    mean: float
    confirmed: int
    sse: float


def _bin_row(row: Any) -> _BinRow:
    return _BinRow(n=row["n"], mean=float(row["mean"]), confirmed=row["confirmed"], sse=float(row["sse"]))


def _summary(rows: dict[int, _BinRow]) -> dict[str, Any]:
    """Bins, Brier, ECE and the bound from per-bin rows."""
    bins: list[dict[str, Any]] = []
    ece_input: list[tuple[int, float, float]] = []
    for index, (low, high) in enumerate(HISTOGRAM_BINS):
        row = rows.get(index)
        bins.append(
            {
                "index": index,
                "low": low,
                "high": 1.0 if high is None else high,  # the last bin holds 1.0
                "count": row.n if row else 0,
                "mean_confidence": row.mean if row else None,
                "confirmed": row.confirmed if row else 0,
                "share_confirmed": row.confirmed / row.n if row else None,
            }
        )
        if row:
            ece_input.append((row.n, row.mean, row.confirmed / row.n))
    verdicts = sum(row.n for row in rows.values())
    sse = sum(row.sse for row in rows.values())
    return {
        "verdicts": verdicts,
        "enough": verdicts >= CALIBRATION_MIN_VERDICTS,
        "needed": max(0, CALIBRATION_MIN_VERDICTS - verdicts),
        "bins": bins,
        # The mean of the squared errors (events.metrics.brier_score), from their sum.
        "brier_score": sse / verdicts if verdicts else None,
        "ece": expected_calibration_error(ece_input),
    }


def calibration(*, period: Period, repository: int | None = None) -> dict[str, Any]:
    """The calibration of the investigations inside the period (event time) that have a
    verdict, overall and per fact type, and the automatic outcome per band.

    All history, every repository, and no judged investigation dated after now (one
    probe on the occurred_at index): from the calibration tally (CalibrationBin), a few
    rows whatever the number of verdicts. Otherwise from the verdicts of the period."""
    if period.start is None and not repository and not _judged_after(period.now):
        return {
            **_calibration_from_tally(),
            "min_verdicts": CALIBRATION_MIN_VERDICTS,
            "auto_outcome": auto_outcome(period=period, repository=repository),
        }
    verdicts = InvestigationVerdict.objects.filter(
        period.filter("investigation__occurred_at"),
        in_repository("investigation__test_case__repository", repository),
    )
    per_bin = (
        verdicts.annotate(bin=_bin_index("investigation__confidence"))
        .values("bin")
        .annotate(**_reliability_columns("investigation__confidence", "verdict"))
        .order_by()
    )
    overall = _summary({row["bin"]: _bin_row(row) for row in per_bin})

    facts = InvestigationFact.objects.filter(
        period.filter("investigation__occurred_at"),
        in_repository("investigation__test_case__repository", repository),
        confidence__isnull=False,
        investigation__verdict__isnull=False,
    )
    by_type: dict[str, dict[int, _BinRow]] = {}
    row: Any
    for row in (
        facts.annotate(bin=_bin_index("confidence"))
        .values("fact_type", "bin")
        .annotate(**_reliability_columns("confidence", "investigation__verdict__verdict"))
        .order_by()
    ):
        by_type.setdefault(row["fact_type"], {})[row["bin"]] = _bin_row(row)
    fact_types = [{"fact_type": fact_type, **_summary(rows)} for fact_type, rows in by_type.items()]
    fact_types.sort(key=lambda row: (-row["verdicts"], row["fact_type"]))

    return {
        **overall,
        "min_verdicts": CALIBRATION_MIN_VERDICTS,
        "fact_types": fact_types,
        "auto_outcome": auto_outcome(period=period, repository=repository),
    }


def _judged_after(now: datetime) -> bool:
    return Investigation.objects.filter(occurred_at__gt=now, verdict__isnull=False).exists()


def _calibration_from_tally() -> dict[str, Any]:
    """The overall summary and the fact types' from CalibrationBin (one query)."""
    overall: dict[int, _BinRow] = {}
    by_type: dict[str, dict[int, _BinRow]] = {}
    for of_facts, fact_type, bin_, n, confirmed, total, errors in CalibrationBin.objects.filter(
        verdicts__gt=0
    ).values_list(
        "of_facts", "fact_type", "bin", "verdicts", "confirmed", "confidence_sum", "squared_error_sum"
    ):
        row = _BinRow(n=n, mean=total / n, confirmed=confirmed, sse=errors)
        if of_facts:
            by_type.setdefault(fact_type, {})[bin_] = row
        else:
            overall[bin_] = row
    fact_types = [{"fact_type": fact_type, **_summary(rows)} for fact_type, rows in by_type.items()]
    fact_types.sort(key=lambda row: (-row["verdicts"], row["fact_type"]))
    return {**_summary(overall), "fact_types": fact_types}


def auto_outcome(*, period: Period, repository: int | None = None) -> list[dict[str, Any]]:
    """Per confidence band (highest first), the investigations inside the period by their
    automatic outcome (events.metrics.auto_outcome, kept in Investigation.auto_outcome):
    fixed, not fixed (too recent while its window has not passed) or no open episode.

    One query on the (occurred_at, confidence, auto_outcome) index; over all history and
    every repository two: the tally (OutcomeTally) and the investigations of the last
    AUTO_OUTCOME_WINDOW, whose "not fixed" is still too recent (unless one lies after
    now, which the tally cannot leave out: then the index answers)."""
    counts = _tallied_outcomes(period.now) if period.start is None and not repository else None
    if counts is None:
        counts = _outcome_counts()
        passed = Q(occurred_at__lte=period.now - AUTO_OUTCOME_WINDOW)
        rows = (
            Investigation.objects.filter(
                period.filter("occurred_at"), in_repository("test_case__repository", repository)
            )
            .values(outcome=F("auto_outcome"))
            .annotate(
                **{f"{band}_passed": Count("pk", filter=band_q(band) & passed) for band in CONFIDENCE_BANDS},
                **{f"{band}_recent": Count("pk", filter=band_q(band) & ~passed) for band in CONFIDENCE_BANDS},
            )
            .order_by()
        )
        row: Any
        for row in rows:
            outcome = _outcome(row["outcome"])
            for band in CONFIDENCE_BANDS:
                passed_n, recent_n = row[f"{band}_passed"], row[f"{band}_recent"]
                if outcome == NOT_FIXED:
                    # Not fixed yet, and its 14 days have not passed: too recent to say.
                    counts[band][NOT_FIXED] += passed_n
                    counts[band][TOO_RECENT] += recent_n
                else:
                    counts[band][outcome] += passed_n + recent_n
    return _outcome_rows(counts)


def _outcome_counts() -> dict[str, dict[str, int]]:
    return {band: dict.fromkeys(AUTO_OUTCOMES, 0) for band in CONFIDENCE_BANDS}


def _outcome(stored: str) -> str:
    # "": not computed yet (a row being written); none in a committed state.
    return stored or NO_OPEN_EPISODE


def _tallied_outcomes(now: datetime) -> dict[str, dict[str, int]] | None:
    """auto_outcome's counts over all history from the tally (see there); None when an
    investigation lies after `now`. Two queries."""
    recent = (
        Investigation.objects.filter(occurred_at__gt=now - AUTO_OUTCOME_WINDOW)
        .values(outcome=F("auto_outcome"))
        .annotate(
            **{band: Count("pk", filter=band_q(band)) for band in CONFIDENCE_BANDS},
            after=Count("pk", filter=Q(occurred_at__gt=now)),
        )
        .order_by()
    )
    too_recent = dict.fromkeys(CONFIDENCE_BANDS, 0)
    row: Any
    for row in recent:
        if row["after"]:
            return None
        if _outcome(row["outcome"]) == NOT_FIXED:
            for band in CONFIDENCE_BANDS:
                too_recent[band] += row[band]
    counts = _outcome_counts()
    for band, outcome, n in OutcomeTally.objects.values_list("band", "outcome", "investigations"):
        counts[band][_outcome(outcome)] += n
    for band, n in too_recent.items():
        counts[band][NOT_FIXED] -= n
        counts[band][TOO_RECENT] += n
    return counts


def _outcome_rows(counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    result = []
    for band, n in counts.items():
        decided = n[FIXED] + n[NOT_FIXED]
        result.append(
            {
                "band": band,
                "label": BAND_LABELS[band],
                **n,
                "decided": decided,
                "share_fixed": n[FIXED] / decided if decided else None,
            }
        )
    return result
