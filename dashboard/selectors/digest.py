"""The weekly digest (docs/metrics.md, "The weekly digest"): for every test, one owner's or
the tests without owners, what happened in the week that ends now and in the week
before, beside what stands now.

The week is the 7 days ending at `now` (now - 7 days < t <= now, as METRICS periods: a
Period("7d") ending now); last week is the same ending 7 days earlier, so last week's
figure is the one this digest showed a week ago (as of then, on the data known now).
Every figure reuses an existing definition: episodes and relapses (Episode rows,
events.metrics.is_relapse), fixes that held (selectors.fixes), ready to release
(selectors.quarantine), owners' targets (selectors.targets). Tests are scoped to an
owner through OwnerTest (one row per test and owner key, "" for tests without owners),
as the fixes are. Eight queries, whatever the data size.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    Subquery,
    Value,
    Window,
)
from django.db.models.functions import Coalesce

from events.metrics import RELAPSE_WINDOW, Period, attainment
from events.models import Episode, TestCase

from . import fixes, quarantine, targets

WEEK = timedelta(days=7)
NEW_SHOWN = 10  # new episodes listed (newest first)
OPEN_SHOWN = 5  # open episodes listed (oldest first)
READY_SHOWN = 10  # tests ready to release listed (longest quarantined first)


@dataclass(frozen=True)
class WeekFigure:
    """A count this week and last week."""

    this_week: int
    last_week: int

    @property
    def change(self) -> int:
        return self.this_week - self.last_week


@dataclass(frozen=True)
class Attainment:
    """Episodes that met a target, and those that missed it (METRICS "Attainment")."""

    met: int
    missed: int

    @property
    def decided(self) -> int:
        return self.met + self.missed

    @property
    def share(self) -> float | None:
        return attainment(self.met, self.missed)

    @property
    def percent(self) -> int | None:
        share = self.share
        return None if share is None else round(share * 100)


@dataclass(frozen=True)
class AttainmentFigure:
    this_week: Attainment
    last_week: Attainment

    @property
    def change(self) -> int | None:
        """The change of the share, in percentage points (None without both shares)."""
        now, before = self.this_week.percent, self.last_week.percent
        return None if now is None or before is None else now - before


@dataclass(frozen=True)
class DigestTest:
    """A test as the digest's lists show it (the link: dashboard:test-detail by id)."""

    id: uuid.UUID
    name: str
    variant: str
    status: str  # now


@dataclass(frozen=True)
class NewEpisode:
    test: DigestTest
    started_at: datetime
    start_known: bool  # False: first seen already FLAKY or BROKEN ("since at least")
    relapse: bool


@dataclass(frozen=True)
class OpenEpisode:
    test: DigestTest
    started_at: datetime
    start_known: bool
    age: timedelta  # open age: now - start


@dataclass(frozen=True)
class ReadyTest:
    test: DigestTest
    quarantined_since: datetime | None
    healthy_since: datetime | None  # None: never changed (HEALTHY since first seen)


@dataclass(frozen=True)
class NewEpisodes:
    """Episodes that started in the week, and how many of them are relapses."""

    started: WeekFigure
    relapses: WeekFigure
    shown: tuple[NewEpisode, ...]  # this week's, newest first, at most NEW_SHOWN


@dataclass(frozen=True)
class FixesSettled:
    """Fixes made (episodes ended), verified and relapsed in the week (fixes_settled)."""

    fixed: WeekFigure
    verified: WeekFigure
    relapsed: WeekFigure


@dataclass(frozen=True)
class OpenEpisodes:
    """Episodes open now (current state: no last week's figure), oldest first."""

    count: int
    shown: tuple[OpenEpisode, ...]


@dataclass(frozen=True)
class ReadyToRelease:
    """Tests ready to release now (current state: no last week's figure)."""

    count: int
    shown: tuple[ReadyTest, ...]


@dataclass(frozen=True)
class TargetAttainment:
    """Triage and fix attainment over the episodes that started in the week, summed over
    the owners in scope (an episode of a test with two owners counts for each)."""

    triage: AttainmentFigure
    fix: AttainmentFigure


@dataclass(frozen=True)
class Digest:
    owner_key: str | None  # None: every test; "": tests without owners
    now: datetime
    new: NewEpisodes
    fixes: FixesSettled
    open: OpenEpisodes
    ready: ReadyToRelease
    targets: TargetAttainment

    @property
    def week_start(self) -> datetime:
        return self.now - WEEK

    @property
    def last_week_start(self) -> datetime:
        return self.now - 2 * WEEK

    @property
    def quiet(self) -> bool:
        """Nothing at all to report: no episode, fix, open episode or release."""
        counts = (self.new.started, self.fixes.fixed, self.fixes.verified, self.fixes.relapsed)
        return (
            not any(f.this_week or f.last_week for f in counts)
            and not self.open.count
            and not self.ready.count
        )


def _owned(owner_key: str | None, repository: int | None, test_case: str = "test_case") -> Q:
    """The filter "the test at `test_case` ("" for TestCase itself) is in scope": the
    owner's through OwnerTest (a unique (test, owner key) row: no duplicates)."""
    prefix = f"{test_case}__" if test_case else ""
    q = Q()
    if owner_key is not None:
        q &= Q(**{f"{prefix}owner_rollups__owner_key": owner_key})
    if repository:
        q &= Q(**{f"{prefix}repository_id": repository})
    return q


# events.metrics.is_relapse in SQL: started at most RELAPSE_WINDOW after the previous end.
_RELAPSE = Q(previous_end__isnull=False, started_at__lte=F("previous_end") + RELAPSE_WINDOW)


def _test(test: TestCase) -> DigestTest:
    return DigestTest(id=test.pk, name=test.name, variant=test.variant, status=test.status)


def _new_episodes(scope: Q, this: Period, last: Period) -> NewEpisodes:
    """Two queries: both weeks' counts, this week's newest episodes."""
    episodes = Episode.objects.filter(scope)
    counts = episodes.filter(started_at__gt=last.start, started_at__lte=this.now).aggregate(
        started=Count("id", filter=this.filter("started_at")),
        relapses=Count("id", filter=this.filter("started_at") & _RELAPSE),
        started_before=Count("id", filter=last.filter("started_at")),
        relapses_before=Count("id", filter=last.filter("started_at") & _RELAPSE),
    )
    rows = (
        episodes.filter(this.filter("started_at"))
        .select_related("test_case")
        .annotate(is_relapse=ExpressionWrapper(_RELAPSE, output_field=BooleanField()))
        .order_by("-started_at", "test_case__name", "id")[:NEW_SHOWN]
    )
    shown = tuple(
        NewEpisode(
            test=_test(row.test_case),
            started_at=row.started_at,
            start_known=row.start_known,
            relapse=bool(row.is_relapse),
        )
        for row in rows
    )
    return NewEpisodes(
        started=WeekFigure(counts["started"], counts["started_before"]),
        relapses=WeekFigure(counts["relapses"], counts["relapses_before"]),
        shown=shown,
    )


def _open_episodes(scope: Q, now: datetime) -> OpenEpisodes:
    """One query: the oldest open episodes, with the count of all (a subquery of its
    own, counted once; a window count made PostgreSQL join every open episode to its
    test before keeping the first few: 60-330 ms at L instead of 5)."""
    open_now = Episode.objects.filter(scope, ended_at__isnull=True, started_at__lte=now)
    count = open_now.order_by().annotate(one=Value(1)).values("one").annotate(n=Count("*")).values("n")
    rows = list(
        open_now.select_related("test_case")
        .annotate(total=Coalesce(Subquery(count, output_field=IntegerField()), 0))
        .order_by("started_at", "test_case__name", "id")[:OPEN_SHOWN]
    )
    shown = tuple(
        OpenEpisode(
            test=_test(row.test_case),
            started_at=row.started_at,
            start_known=row.start_known,
            age=now - row.started_at,
        )
        for row in rows
    )
    return OpenEpisodes(count=rows[0].total if rows else 0, shown=shown)


def _ready(owner_key: str | None, repository: int | None, now: datetime) -> ReadyToRelease:
    """One query: the tests ready to release now (quarantine.quarantined), the longest
    quarantined first, with the count of all (a window count)."""
    rows = list(
        quarantine.quarantined(repository=repository, ready=True, now=now)
        .filter(_owned(owner_key, None, test_case=""))
        .annotate(total=Window(Count("id")))
        .order_by(F("quarantined_since").asc(nulls_last=True), "name", "id")[:READY_SHOWN]
    )
    shown = tuple(
        ReadyTest(test=_test(row), quarantined_since=row.quarantined_since, healthy_since=row.status_since)
        for row in rows
    )
    return ReadyToRelease(count=rows[0].total if rows else 0, shown=shown)


def _attainment(
    owner_key: str | None, repository: int | None, this: Period, last: Period
) -> TargetAttainment:
    """Three queries: the targets, each week's counts (targets.owner_targets)."""
    by_owner = targets.targets_by_owner()
    weeks = []
    for period in (this, last):
        rows = targets.owner_targets(
            period=period, repository=repository, owner_key=owner_key, targets=by_owner
        ).values()
        weeks.append(
            (
                Attainment(sum(r.triage_met for r in rows), sum(r.triage_missed for r in rows)),
                Attainment(sum(r.fix_met for r in rows), sum(r.fix_missed for r in rows)),
            )
        )
    (triage, fix), (triage_before, fix_before) = weeks
    return TargetAttainment(
        triage=AttainmentFigure(triage, triage_before), fix=AttainmentFigure(fix, fix_before)
    )


def weekly_digest(*, owner_key: str | None, now: datetime, repository: int | None = None) -> Digest:
    """The digest of the week ending at `now` beside the week before: episodes started,
    fixes made, verified and relapsed, target attainment; and, as of now, the oldest open
    episodes and the tests ready to release. `owner_key`: None for every test, "" for
    the tests without owners, else an owner's key (lower case, as OwnerTest stores it);
    `repository`: only its tests. Eight queries whatever the data size (see the sections)."""
    this, last = Period("7d", now), Period("7d", now - WEEK)
    scope = _owned(owner_key, repository)
    fixed_this, fixed_last = fixes.fixes_settled(
        periods=[this, last], repository=repository, owner_key=owner_key
    )
    return Digest(
        owner_key=owner_key,
        now=now,
        new=_new_episodes(scope, this, last),
        fixes=FixesSettled(
            **{
                name: WeekFigure(fixed_this[name], fixed_last[name])
                for name in ("fixed", "verified", "relapsed")
            }
        ),
        open=_open_episodes(scope, now),
        ready=_ready(owner_key, repository, now),
        targets=_attainment(owner_key, repository, this, last),
    )
