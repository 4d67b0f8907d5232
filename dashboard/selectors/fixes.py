"""Fixes that held (METRICS "Fixes that held"): verified, relapsed and pending fixes over
a period, per test, per owner and overall, and the relapse curve (Kaplan-Meier) over
all closed episodes.

Everything is counted in SQL over `Episode` (its `ended_at` and `next_started_at`, kept
by the rollups): one query gives the three counts, one more grouped by owner (through
OwnerTest, one row per test and owner key, "" for tests without owners), one per curve
(fixes per whole day observed, capped, and whether a new episode ended the
observation). Only the curve's at most 2 x 92 aggregated rows reach Python, for
`events.metrics.kaplan_meier`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from django.db.models import BooleanField, Case, Count, F, Q, QuerySet, Value, When
from django.db.models.functions import Greatest, Least

from events.metrics import (
    FIX_PENDING,
    FIX_RELAPSED,
    FIX_VERIFICATION_WINDOW,
    FIX_VERIFIED,
    RELAPSE_CURVE_DAYS,
    RELAPSE_CURVE_MARKS,
    CurvePoint,
    Period,
    kaplan_meier,
    verification_rate,
)
from events.models import Episode, TestCase
from events.orm import WholeDaysBetween


class FixCounts(TypedDict):
    verified: int
    relapsed: int
    pending: int
    verification_rate: float | None


def _outcome_filters(now: datetime, prefix: str = "") -> dict[str, Q]:
    """The filters "this closed episode's fix is verified / relapsed / pending" as of
    `now` (events.metrics.fix_outcome in SQL): relapsed when the next episode started at
    most FIX_VERIFICATION_WINDOW after the end; otherwise verified once the window has
    passed, pending before. `prefix`: the path to the episode ("test_case__episodes__")."""
    ended, following = f"{prefix}ended_at", f"{prefix}next_started_at"
    relapsed = Q(**{f"{following}__isnull": False, f"{following}__lte": F(ended) + FIX_VERIFICATION_WINDOW})
    held = Q(**{f"{following}__isnull": True}) | Q(**{f"{following}__gt": F(ended) + FIX_VERIFICATION_WINDOW})
    return {
        FIX_VERIFIED: held & Q(**{f"{ended}__lte": now - FIX_VERIFICATION_WINDOW}),
        FIX_RELAPSED: relapsed,
        FIX_PENDING: held & Q(**{f"{ended}__gt": now - FIX_VERIFICATION_WINDOW}),
    }


def _counts(row: Mapping[str, Any]) -> FixCounts:
    verified, relapsed = int(row.get(FIX_VERIFIED) or 0), int(row.get(FIX_RELAPSED) or 0)
    return FixCounts(
        verified=verified,
        relapsed=relapsed,
        pending=int(row.get(FIX_PENDING) or 0),
        verification_rate=verification_rate(verified, relapsed),
    )


EMPTY = FixCounts(verified=0, relapsed=0, pending=0, verification_rate=None)


def _episodes(
    *, repository: int | None = None, owner_key: str | None = None, test_case: TestCase | None = None
) -> QuerySet[Episode]:
    """The closed episodes of the scope: a repository's tests, an owner's ("" for tests
    without owners, through OwnerTest), one test."""
    episodes = Episode.objects.filter(ended_at__isnull=False)
    if repository is not None:
        episodes = episodes.filter(test_case__repository_id=repository)
    if owner_key is not None:
        episodes = episodes.filter(test_case__owner_rollups__owner_key=owner_key)
    if test_case is not None:
        episodes = episodes.filter(test_case=test_case)
    return episodes


def fix_counts(
    *,
    period: Period,
    repository: int | None = None,
    owner_key: str | None = None,
    test_case: TestCase | None = None,
) -> FixCounts:
    """Verified, relapsed and pending fixes among the episodes that ended inside the
    period, and the fix verification rate (verified / (verified + relapsed); None
    without any). One query."""
    filters = _outcome_filters(period.now)
    row = (
        _episodes(repository=repository, owner_key=owner_key, test_case=test_case)
        .filter(period.filter("ended_at"))
        .aggregate(**{name: Count("id", filter=q) for name, q in filters.items()})
    )
    return _counts(row)


def fix_counts_of_test(test_case: TestCase, *, period: Period) -> tuple[FixCounts, FixCounts]:
    """A test's fix_counts over the period and over all history, in one query."""
    filters = _outcome_filters(period.now)
    inside = period.filter("ended_at")
    row = _episodes(test_case=test_case).aggregate(
        **{name: Count("id", filter=q & inside) for name, q in filters.items()},
        **{f"all_{name}": Count("id", filter=q & Q(ended_at__lte=period.now)) for name, q in filters.items()},
    )
    return _counts(row), _counts({name: row[f"all_{name}"] for name in filters})


def fix_counts_by_owner(*, period: Period, repository: int | None = None) -> dict[str, FixCounts]:
    """fix_counts per owner key ("" for tests without owners; an owner without a fix
    ended inside the period has no entry: EMPTY). A test with several owners counts for
    each. One query."""
    filters = _outcome_filters(period.now)
    rows = (
        _episodes(repository=repository)
        .filter(period.filter("ended_at"))
        .values(owner=F("test_case__owner_rollups__owner_key"))
        .annotate(**{name: Count("id", filter=q) for name, q in filters.items()})
        .order_by()
    )
    # (A test without its OwnerTest rows, which the rollups always write, would come as None.)
    return {row["owner"]: _counts(row) for row in rows if row["owner"] is not None}


def attach_fix_counts(rows: list[dict[str, Any]], counts: dict[str, FixCounts]) -> None:
    """Add each owner row's counts (from fix_counts_by_owner) under "fixes"."""
    for row in rows:
        row["fixes"] = counts.get(row["owner_key"], EMPTY)


def relapse_curve(
    *, now: datetime, repository: int | None = None, owner_key: str | None = None
) -> list[CurvePoint]:
    """The relapse curve over all closed episodes of the scope (not a period): for d =
    0..RELAPSE_CURVE_DAYS, the Kaplan-Meier share of fixes still without a new episode
    after d days, with the number still observed. A fix is observed from its end until
    its next episode starts (an event after floor((next start - end) / 1 day) days) or
    until now (censored after floor((now - end) / 1 day) days). Empty without any closed
    episode. One query: fixes per (whole days, capped at RELAPSE_CURVE_DAYS + 1; event or
    censored)."""
    # A next start after `now` (an event time ahead of our clock) is not seen yet: censored.
    relapsed = Q(next_started_at__isnull=False, next_started_at__lte=now)
    days = Case(
        When(relapsed, then=WholeDaysBetween(F("ended_at"), F("next_started_at"))),
        default=WholeDaysBetween(F("ended_at"), Value(now)),
    )
    rows = (
        _episodes(repository=repository, owner_key=owner_key)
        .filter(ended_at__lte=now)
        .values(
            days=Least(Greatest(days, Value(0)), Value(RELAPSE_CURVE_DAYS + 1)),
            event=Case(When(relapsed, then=Value(True)), default=Value(False), output_field=BooleanField()),
        )
        .annotate(n=Count("id"))
        .order_by()
    )
    events: dict[int, int] = {}
    censored: dict[int, int] = {}
    for row in rows:
        target = events if row["event"] else censored
        target[int(row["days"])] = target.get(int(row["days"]), 0) + int(row["n"])
    if not events and not censored:
        return []
    return kaplan_meier(events, censored)


def curve_marks(points: list[CurvePoint]) -> list[CurvePoint]:
    """The curve's points at RELAPSE_CURVE_MARKS (the days its table quotes)."""
    return [points[day] for day in RELAPSE_CURVE_MARKS if day < len(points)]
