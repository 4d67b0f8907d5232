"""The calibration tally (CalibrationBin): the verdicts over all history per tenth of
confidence, for the investigations and, per fact type, for their facts (METRICS "Is
Trunk's AI right?"), so that the reliability diagram, Brier score and ECE over all
history read a few rows whatever the number of verdicts.

A verdict counts with its investigation's confidence (and each fact's), so the tally
changes when a verdict does (the triage service: events/triage.py) and when a judged
investigation is written, replaced or removed (the projection: events/projection/).
Both take what the judged investigations concerned count for before and after
(`verdict_tally`) and add the difference (`add_calibration`), in the LOCK ORDER's last
place among the shared rows (shared.py); the rebuild counts everything afresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from ..metrics import histogram_bin
from ..models import CalibrationBin, InvestigationFact, InvestigationVerdict, Verdict
from .shared import add_to_counts

COLUMNS = ("verdicts", "confirmed", "confidence_sum", "squared_error_sum")
# (of_facts, fact_type, bin, column) -> value: what verdicts count for in CalibrationBin.
Tally = dict[tuple[bool, str, int, str], float]
# Ids per IN list.
CHUNK = 1000


def _chunks(ids: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def new_tally() -> Tally:
    return defaultdict(float)


def merge(into: Tally, tally: Tally, sign: int = 1) -> None:
    """Add `tally` (sign 1) or take it away (-1) from `into`."""
    for key, value in tally.items():
        into[key] = into.get(key, 0.0) + sign * value


def _count(tally: Tally, key: tuple[bool, str, int], confidence: float, confirmed: bool) -> None:
    error = confidence - (1.0 if confirmed else 0.0)
    tally[(*key, "verdicts")] += 1
    tally[(*key, "confirmed")] += int(confirmed)
    tally[(*key, "confidence_sum")] += confidence
    tally[(*key, "squared_error_sum")] += error * error


def verdict_tally(investigation_ids: Iterable[Any] | None = None) -> Tally:
    """What the current verdicts on these investigations (all with None) count for in
    CalibrationBin: (of_facts, fact_type, bin, column) -> value. A verdict whose
    investigation is not stored (removed, to be written again) counts for nothing. Two
    queries per thousand investigations (none for none)."""
    verdicts = InvestigationVerdict.objects.filter(investigation__isnull=False)
    if investigation_ids is None:
        chunks: Iterable[Any] = [None]
    else:
        chunks = _chunks(sorted(set(investigation_ids)))
    tally = new_tally()
    for chunk in chunks:
        rows = verdicts if chunk is None else verdicts.filter(investigation_id__in=chunk)
        confirmed: dict[Any, bool] = {}
        for pk, verdict, confidence in rows.values_list(
            "investigation_id", "verdict", "investigation__confidence"
        ).iterator(chunk_size=5000):
            confirmed[pk] = verdict == Verdict.CONFIRMED
            _count(tally, (False, "", histogram_bin(confidence)), confidence, confirmed[pk])
        if not confirmed:
            continue
        facts = InvestigationFact.objects.filter(confidence__isnull=False)
        if chunk is None:
            facts = facts.filter(investigation__verdict__isnull=False)
        else:
            facts = facts.filter(investigation_id__in=list(confirmed))
        for pk, fact_type, fact_confidence in facts.values_list(
            "investigation_id", "fact_type", "confidence"
        ).iterator(chunk_size=5000):
            if pk in confirmed and fact_confidence is not None:  # (filtered: for the type checker)
                key = (True, fact_type, histogram_bin(fact_confidence))
                _count(tally, key, fact_confidence, confirmed[pk])
    return tally


def add_calibration(deltas: Tally) -> None:
    """Add (of_facts, fact_type, bin, column) -> delta to CalibrationBin in one statement,
    rows in key order; keys whose deltas are all zero are left alone."""
    keys = sorted({key[:3] for key, value in deltas.items() if value})
    add_to_counts(
        CalibrationBin._meta.db_table,
        ("of_facts", "fact_type", "bin"),
        COLUMNS,
        [(*key, *(deltas.get((*key, column), 0.0) for column in COLUMNS)) for key in keys],
    )


def change(before: Tally, after: Tally) -> Tally:
    """after - before."""
    delta = new_tally()
    merge(delta, after)
    merge(delta, before, -1)
    return delta


def rebuild_calibration() -> None:
    """CalibrationBin from every verdict (a rebuild, on an empty table)."""
    tally = verdict_tally()
    keys = sorted({key[:3] for key in tally})
    CalibrationBin.objects.bulk_create(
        [
            CalibrationBin(
                of_facts=of_facts,
                fact_type=fact_type,
                bin=bin_,
                **{column: tally.get((of_facts, fact_type, bin_, column), 0.0) for column in COLUMNS},
            )
            for of_facts, fact_type, bin_ in keys
        ],
        batch_size=1000,
    )
