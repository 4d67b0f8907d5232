"""Fixes that held (METRICS "Fixes that held"): verified, relapsed and pending fixes over
a period, per test, per owner and overall, and the relapse curve (Kaplan-Meier) over
all closed episodes.

Counted in SQL over `Episode` (its `ended_at` and `next_started_at`, kept by the
rollups), per owner through OwnerTest (one row per test and owner key, "" for tests
without owners). Over all history and every repository, the counts and the curve read
the fix tally instead (FixTally: fixes per owner by the days until the next episode,
a few rows per owner whatever the history): only the fixes whose outcome still depends
on the clock are read from the episodes, those of the last FIX_VERIFICATION_WINDOW
(pending) or RELAPSE_CURVE_DAYS + 1 days (still observed without a new episode). The
tally cannot say which fixes lie after `now`, so it is used only when no episode starts
or ends after it (event times may lie up to an hour ahead of the clock). Only
aggregated rows reach Python; the curve goes to `events.metrics.kaplan_meier`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.db.models import BooleanField, Case, Count, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Greatest, Least

from events.metrics import (
    FIX_PENDING,
    FIX_RELAPSED,
    FIX_VERIFICATION_WINDOW,
    FIX_VERIFIED,
    NO_NEXT_EPISODE,
    RELAPSE_CURVE_DAYS,
    RELAPSE_CURVE_MARKS,
    CurvePoint,
    Period,
    kaplan_meier,
    verification_rate,
)
from events.models import Episode, FixTally, TestCase
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
    *,
    repository: int | None = None,
    owner_key: str | None = None,
    test_case: TestCase | None = None,
    closed: bool = True,
) -> QuerySet[Episode]:
    """The closed episodes (all with closed=False) of the scope: a repository's tests,
    an owner's ("" for tests without owners, through OwnerTest), one test."""
    episodes = Episode.objects.filter(ended_at__isnull=False) if closed else Episode.objects.all()
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
    without any). One query; over all history from the tally, three."""
    if test_case is None and period.start is None and not repository:
        tallied = _tallied_counts(period.now, owner_key=owner_key)
        if tallied is not None:
            return tallied[owner_key or ""]
    filters = _outcome_filters(period.now)
    row = (
        _episodes(repository=repository, owner_key=owner_key, test_case=test_case)
        .filter(period.filter("ended_at"))
        .aggregate(**{name: Count("id", filter=q) for name, q in filters.items()})
    )
    return _counts(row)


def _tally(owner_key: str | None, *, by_owner: bool = False) -> QuerySet[FixTally]:
    """The tally rows of every test (owner_key None), of one owner, or of every owner
    (by_owner)."""
    if owner_key is None and not by_owner:
        return FixTally.objects.filter(everyone=True)
    rows = FixTally.objects.filter(everyone=False)
    return rows if by_owner else rows.filter(owner_key=owner_key)


def _after(now: datetime) -> Q:
    """Episodes the tally cannot place against `now`: started or ended after it (event
    times may lie up to an hour ahead of the clock). Read by the same query as the
    recent episodes, on the two time indexes; any of them in the scope: the episodes
    answer instead."""
    return Q(started_at__gt=now) | Q(ended_at__gt=now)


def _tallied_counts(
    now: datetime, *, owner_key: str | None, by_owner: bool = False
) -> dict[str, FixCounts] | None:
    """fix_counts over all history and every repository from the tally, by owner key (""
    for every test when owner_key is None; every owner with by_owner). Relapsed fixes are
    settled whatever the clock; the others are pending while they ended within the
    window (read from the episodes, a range of the ended_at index), verified after.
    Two queries; None when an episode of the scope lies after `now`."""
    recent = (
        _episodes(owner_key=None if by_owner else owner_key, closed=False)
        .filter(Q(ended_at__gt=now - FIX_VERIFICATION_WINDOW) | _after(now))
        .values(owner=F("test_case__owner_rollups__owner_key") if by_owner else Value(owner_key or ""))
        .annotate(
            pending=Count("id", filter=_outcome_filters(now)[FIX_PENDING] & Q(ended_at__lte=now)),
            after=Count("id", filter=_after(now)),
        )
        .order_by()
    )
    pending: dict[str, int] = {}
    for row in recent:
        if row["after"]:
            return None
        pending[row["owner"]] = row["pending"]
    counts: dict[str, FixCounts] = {}
    for tally in (
        _tally(owner_key, by_owner=by_owner)
        .values("owner_key")
        .annotate(total=Sum("fixes"), relapsed_fixes=Sum("fixes", filter=Q(relapsed=True)))
        .order_by()
    ):
        fixes, relapsed = int(tally["total"] or 0), int(tally["relapsed_fixes"] or 0)
        waiting = pending.get(tally["owner_key"], 0)
        counts[tally["owner_key"]] = _counts(
            {FIX_VERIFIED: fixes - relapsed - waiting, FIX_RELAPSED: relapsed, FIX_PENDING: waiting}
        )
    if not by_owner:
        counts.setdefault(owner_key or "", EMPTY)
    return counts


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
    each. One query; over all history from the tally, three."""
    if period.start is None and not repository:
        tallied = _tallied_counts(period.now, owner_key=None, by_owner=True)
        if tallied is not None:
            return {key: counts for key, counts in tallied.items() if counts != EMPTY}
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
    censored); from the tally (every repository, nothing after `now`), three: the fixes
    followed by a new episode per whole days from the tally, those without one that
    ended more than RELAPSE_CURVE_DAYS days ago as their total there less the recent
    ones, which are read from the episodes by days observed."""
    if not repository:
        curve = _tallied_curve(now, owner_key=owner_key)
        if curve is not None:
            return curve
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
    return _curve(events, censored)


def _curve(events: dict[int, int], censored: dict[int, int]) -> list[CurvePoint]:
    if not any(events.values()) and not any(censored.values()):
        return []
    return kaplan_meier(events, censored)


def _tallied_curve(now: datetime, *, owner_key: str | None) -> list[CurvePoint] | None:
    """relapse_curve from the tally (see there). Two queries; None when an episode of the
    scope lies after `now`."""
    # Without a next episode and observed for fewer than RELAPSE_CURVE_DAYS + 1 whole
    # days: ended after this.
    observed = Q(next_started_at__isnull=True, ended_at__gt=now - timedelta(days=RELAPSE_CURVE_DAYS + 1))
    recent = (
        _episodes(owner_key=owner_key, closed=False)
        .filter(observed | _after(now))
        .values(days=Greatest(WholeDaysBetween(F("ended_at"), Value(now)), Value(0)))
        .annotate(n=Count("id", filter=observed), after=Count("id", filter=_after(now)))
        .order_by()
    )
    censored: dict[int, int] = {}
    for row in recent:
        if row["after"]:
            return None
        if row["n"]:
            censored[int(row["days"])] = int(row["n"])
    events: dict[int, int] = {}
    unfollowed = 0
    for days, n in _tally(owner_key).values_list("days_to_next").annotate(n=Sum("fixes")).order_by():
        if days == NO_NEXT_EPISODE:
            unfollowed = int(n)
        else:
            events[int(days)] = int(n)
    # The others have been observed for longer than the curve: its last bucket.
    longer = unfollowed - sum(censored.values())
    censored[RELAPSE_CURVE_DAYS + 1] = censored.get(RELAPSE_CURVE_DAYS + 1, 0) + longer
    return _curve(events, censored)


def curve_marks(points: list[CurvePoint]) -> list[CurvePoint]:
    """The curve's points at RELAPSE_CURVE_MARKS (the days its table quotes)."""
    return [points[day] for day in RELAPSE_CURVE_MARKS if day < len(points)]


def fixes_settled(
    *, periods: list[Period], repository: int | None = None, owner_key: str | None = None
) -> list[dict[str, int]]:
    """Per period (each with a start), what happened to fixes inside it: `fixed`, the
    episodes that ended inside it; `verified`, the fixes whose FIX_VERIFICATION_WINDOW
    ran out inside it without a new episode (end + window inside the period: verified
    as of the period's end, _outcome_filters); `relapsed`, the fixes whose next episode
    started inside it, within the window after the fix. One query, on the ended_at index
    (every fix counted ended after the earliest start less the window)."""
    aggregates: dict[str, Count] = {}
    for i, period in enumerate(periods):
        if period.start is None:
            raise ValueError("fixes_settled needs periods with a start")
        outcome = _outcome_filters(period.now)
        aggregates |= {
            f"fixed_{i}": Count("id", filter=period.filter("ended_at")),
            f"verified_{i}": Count(
                "id", filter=outcome[FIX_VERIFIED] & Q(ended_at__gt=period.start - FIX_VERIFICATION_WINDOW)
            ),
            f"relapsed_{i}": Count("id", filter=outcome[FIX_RELAPSED] & period.filter("next_started_at")),
        }
    earliest = min(period.start for period in periods if period.start is not None)
    row = (
        _episodes(repository=repository, owner_key=owner_key)
        .filter(ended_at__gt=earliest - FIX_VERIFICATION_WINDOW)
        .aggregate(**aggregates)
    )
    return [
        {name: int(row[f"{name}_{i}"] or 0) for name in ("fixed", "verified", "relapsed")}
        for i in range(len(periods))
    ]
