"""Owners' targets (METRICS "Time to triage", "Owner targets", "Attainment"): per owner,
the share of episodes triaged and fixed within the owner's targets, the episodes
breaching a target now, and the weekly trend; and a test's triage history.

Episodes come from OwnerEpisode (each episode once per owner of its test, "" for tests
without owners); the time of the first triage action at or after an episode's start is
one correlated subquery on TriageEvent's (test_case, at) index. Each owner's targets
(its OwnerTarget row, else the installation's defaults) enter the SQL as a CASE over
owner_key (a handful of rows), so met / missed are counted by the database, grouped by
owner: the cost follows the number of episodes in the period plus the open ones, never
all history.

An episode whose start is unknown (the test was first seen already FLAKY or BROKEN) is
left out of attainment (whether it met a target is unknown) but counts as breaching
when even its known part is past a target (it is certainly breaching).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import TruncWeek

from events.metrics import NO_OWNER, TARGET_MAX_DAYS, Period, Targets, attainment, default_targets
from events.models import Owner, OwnerEpisode, OwnerTarget, TargetTally, TestCase, TriageEvent
from events.rollups.targets import START_UNKNOWN, TRIAGE

from .common import as_datetime, in_repository, run_sql

# The weekly trend covers at least this many ISO weeks, the whole period when longer,
# and never more than TREND_MAX_WEEKS (the `all` period: a bounded chart).
TREND_WEEKS = 12
TREND_MAX_WEEKS = 104
# The owner page lists this many breaching episodes (oldest first), with the total.
BREACHING_SHOWN = 50
# The test page shows this many triage history entries (newest first), with the total.
TRIAGE_HISTORY_SHOWN = 20


@dataclass
class OwnerTargets:
    """One owner's targets and how they were met (attainment over the period)."""

    owner_key: str
    targets: Targets
    own: bool  # the owner's own targets (OwnerTarget), not the installation's defaults
    triage_met: int = 0
    triage_missed: int = 0
    fix_met: int = 0
    fix_missed: int = 0
    breaching: int = 0  # open episodes breaching a target now
    owner: str = ""
    owner_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def triage_attainment(self) -> float | None:
        return attainment(self.triage_met, self.triage_missed)

    @property
    def fix_attainment(self) -> float | None:
        return attainment(self.fix_met, self.fix_missed)

    @property
    def triage_percent(self) -> int | None:
        share = self.triage_attainment
        return None if share is None else round(share * 100)

    @property
    def fix_percent(self) -> int | None:
        share = self.fix_attainment
        return None if share is None else round(share * 100)

    @property
    def triage_decided(self) -> int:
        return self.triage_met + self.triage_missed

    @property
    def fix_decided(self) -> int:
        return self.fix_met + self.fix_missed


def targets_by_owner() -> tuple[Targets, dict[str, Targets]]:
    """The installation's default targets and each owner's own (an OwnerTarget row; an
    empty field takes the default). One query."""
    default = default_targets()
    own = {
        key: Targets(
            min(triage or default.triage_days, TARGET_MAX_DAYS), min(fix or default.fix_days, TARGET_MAX_DAYS)
        )
        for key, triage, fix in OwnerTarget.objects.values_list("owner_key", "triage_days", "fix_days")
    }
    return default, own


def _target(kind: str, default: Targets, own: dict[str, Targets]) -> Any:
    """The owner's target (`kind`: "triage" or "fix") as an SQL duration: a CASE over the
    owner keys that have their own value, else the default."""
    days = f"{kind}_days"
    whens = [
        When(owner_key=key, then=Value(timedelta(days=getattr(t, days))))
        for key, t in sorted(own.items())
        if getattr(t, days) != getattr(default, days)
    ]
    fallback = Value(timedelta(days=getattr(default, days)))
    if not whens:
        return ExpressionWrapper(fallback, output_field=DurationField())
    return Case(*whens, default=fallback, output_field=DurationField())


def _episodes(
    *, now: datetime, repository: int | None, owner_key: str | None, default: Targets, own: dict[str, Targets]
) -> QuerySet[OwnerEpisode]:
    """Owner episodes with their first triage and both deadlines (start + target)."""
    one = Q() if owner_key is None else Q(owner_key=owner_key)
    return (
        OwnerEpisode.objects.filter(one, in_repository("test_case__repository", repository))
        .annotate(
            # Kept on the row (events/rollups/triaged.py); an action stamped after `now`
            # (a replayed history) does not count yet.
            triaged_at=Case(
                When(first_triage_at__lte=now, then=F("first_triage_at")),
                default=Value(None),
                output_field=DateTimeField(),
            ),
            triage_deadline=ExpressionWrapper(
                F("started_at") + _target("triage", default, own), output_field=DateTimeField()
            ),
            fix_deadline=ExpressionWrapper(
                F("started_at") + _target("fix", default, own), output_field=DateTimeField()
            ),
        )
        .order_by()
    )


def breaching_q(now: datetime) -> Q:
    """Breaching now: open, and past the fix target or still untriaged past the triage
    target."""
    return Q(ended_at__isnull=True) & (
        Q(fix_deadline__lt=now) | Q(triaged_at__isnull=True, triage_deadline__lt=now)
    )


# The counts over _episodes' rows, as SQL over them (`e`): the first triage is computed
# once per row in the inner query (an ORM aggregate would repeat its subquery in every
# conditional count). Met / missed as events.metrics.target_met; {started}: the episode
# started inside the period and its start is known.
COUNTS_SQL = {
    "triage_met": "{started} AND e.triaged_at <= e.triage_deadline",
    "triage_missed": "{started} AND e.triage_deadline < {now}"
    " AND (e.triaged_at IS NULL OR e.triaged_at > e.triage_deadline)",
    "fix_met": "{started} AND e.ended_at <= e.fix_deadline",
    "fix_missed": "{started} AND e.fix_deadline < {now} AND (e.ended_at IS NULL OR e.ended_at > e.fix_deadline)",
    "breaching": "e.ended_at IS NULL AND (e.fix_deadline < {now} OR (e.triaged_at IS NULL AND e.triage_deadline < {now}))",
    # For the tally (_tallied_targets): not met, and the deadline not passed yet; and
    # episodes the tally cannot place against now.
    "triage_pending": "{started} AND e.triage_deadline >= {now}"
    " AND (e.triaged_at IS NULL OR e.triaged_at > e.triage_deadline)",
    "fix_pending": "{started} AND e.fix_deadline >= {now} AND (e.ended_at IS NULL OR e.ended_at > e.fix_deadline)",
    "after": "e.started_at > {now} OR e.ended_at > {now}",
}
# The figures of OwnerTargets.
FIGURES = ("triage_met", "triage_missed", "fix_met", "fix_missed", "breaching")
_TOKEN = re.compile(r"\{(started|now)\}")


def _count_rows(
    episodes: QuerySet[OwnerEpisode], group: str, period: Period, names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Per value of `group` (a column or annotation of `episodes`), the COUNTS_SQL counts
    `names`, in one query over `episodes` as a derived table."""
    inner = episodes.values(
        group, "started_at", "ended_at", "start_known", "triaged_at", "triage_deadline", "fix_deadline"
    )
    inner_sql, inner_params = inner.query.sql_with_params()
    now = connection.ops.adapt_datetimefield_value(period.now)
    if period.start is None:
        fragments = {"started": ("e.start_known AND e.started_at <= %s", [now])}
    else:
        start = connection.ops.adapt_datetimefield_value(period.start)
        fragments = {"started": ("e.start_known AND e.started_at <= %s AND e.started_at > %s", [now, start])}
    fragments["now"] = ("%s", [now])
    sums, params = [], []
    for name in names:
        # The placeholders' values in the order the tokens appear.
        for token in _TOKEN.findall(COUNTS_SQL[name]):
            params += fragments[token][1]
        condition = _TOKEN.sub(lambda m: fragments[m.group(1)][0], COUNTS_SQL[name])
        sums.append(f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)")
    # Constant fragments only (COUNTS_SQL, the ORM's own SQL); every value is a parameter.
    query = f"SELECT e.{group}, {', '.join(sums)} FROM ({inner_sql}) e GROUP BY e.{group}"  # noqa: S608
    rows = run_sql(query, [*params, *inner_params])  # the sums come first in the text
    return [{group: row[0], **{n: int(v or 0) for n, v in zip(names, row[1:], strict=True)}} for row in rows]


TargetsByOwner = tuple[Targets, dict[str, Targets]]


def owner_targets(
    *,
    period: Period,
    repository: int | None = None,
    owner_key: str | None = None,
    targets: TargetsByOwner | None = None,
) -> dict[str, OwnerTargets]:
    """Per owner key ("" = no owner) with any episode started in the period or open now:
    its targets, triage and fix attainment over the episodes that started inside the
    period (and whose target time has passed or that met it), and its episodes breaching
    a target now. `owner_key`: only that owner. Two queries (targets, counts; one with
    `targets`, as targets_by_owner gives them); over all history and every repository,
    from the target tally, four (see _tallied_targets)."""
    default, own = targets or targets_by_owner()
    if period.start is None and not repository:
        tallied = _tallied_targets(now=period.now, owner_key=owner_key, default=default, own=own)
        if tallied is not None:
            return tallied
    episodes = _episodes(
        now=period.now, repository=repository, owner_key=owner_key, default=default, own=own
    ).filter(period.filter("started_at") | Q(ended_at__isnull=True))
    result = {}
    for counted in _count_rows(episodes, "owner_key", period, FIGURES):
        key = counted.pop("owner_key")
        result[key] = OwnerTargets(owner_key=key, targets=own.get(key, default), own=key in own, **counted)
    return result


def _tallied_targets(
    *, now: datetime, owner_key: str | None, default: Targets, own: dict[str, Targets]
) -> dict[str, OwnerTargets] | None:
    """owner_targets over all history and every repository from the target tally
    (TargetTally: each owner's episodes by whole days to their first triage and to their
    end): met is the episodes within the target's days; missed, the others less those
    whose deadline has not passed yet, which are read from the episodes started within
    the longest target, with the open ones (breaching). None when the tally cannot
    answer for `now`: an episode started or ended after it, or a triage action stamped
    after it. Three queries."""
    if TriageEvent.objects.filter(at__gt=now).exists():
        return None
    longest = max(t for targets in (default, *own.values()) for t in (targets.triage_days, targets.fix_days))
    unsettled = _episodes(now=now, repository=None, owner_key=owner_key, default=default, own=own).filter(
        Q(started_at__gte=now - timedelta(days=longest)) | Q(ended_at__isnull=True) | Q(ended_at__gt=now)
    )
    names = ("breaching", "triage_pending", "fix_pending", "after")
    recent = {}
    for counted in _count_rows(unsettled, "owner_key", Period(name="all", now=now), names):
        if counted["after"]:
            return None
        recent[counted["owner_key"]] = counted
    tally = TargetTally.objects.filter(episodes__gt=0)
    if owner_key is not None:
        tally = tally.filter(owner_key=owner_key)
    counts: dict[str, dict[str, int]] = {}
    for key, kind, days, n in tally.values_list("owner_key", "kind", "days", "episodes"):
        owner = counts.setdefault(key, {"triage": 0, "fix": 0, "triage_met": 0, "fix_met": 0})
        if days == START_UNKNOWN:
            continue  # in no attainment; the owner has episodes
        owner[kind] += n
        target = own.get(key, default)
        if 0 <= days <= (target.triage_days if kind == TRIAGE else target.fix_days):
            owner[f"{kind}_met"] += n
    result = {}
    for key, owner in counts.items():
        pending = recent.get(key, {})
        result[key] = OwnerTargets(
            owner_key=key,
            targets=own.get(key, default),
            own=key in own,
            triage_met=owner["triage_met"],
            triage_missed=owner["triage"] - owner["triage_met"] - pending.get("triage_pending", 0),
            fix_met=owner["fix_met"],
            fix_missed=owner["fix"] - owner["fix_met"] - pending.get("fix_pending", 0),
            breaching=pending.get("breaching", 0),
        )
    return result


def no_figures(owner_key: str, targets: TargetsByOwner) -> OwnerTargets:
    """An owner's targets without figures (an owner without any episode that counts)."""
    default, own = targets
    return OwnerTargets(owner_key=owner_key, targets=own.get(owner_key, default), own=owner_key in own)


def owner_target_rows(
    *, period: Period, repository: int | None = None, owner_key: str | None = None
) -> list[OwnerTargets]:
    """owner_targets with the owners' names and ids (the API), by name. Three queries."""
    rows = owner_targets(period=period, repository=repository, owner_key=owner_key)
    names = {
        key: (name, pk)
        for key, name, pk in Owner.objects.filter(key__in=rows).values_list("key", "name", "id")
    }
    for key, row in rows.items():
        row.owner, row.owner_id = names.get(key, (key or NO_OWNER, None))
    return sorted(rows.values(), key=lambda r: (r.owner.casefold(), r.owner, r.owner_key))


@dataclass(frozen=True)
class WeekAttainment:
    week: datetime  # Monday 00:00 UTC of the ISO week of the episodes' start
    triage_met: int
    triage_missed: int
    fix_met: int
    fix_missed: int

    @property
    def triage_attainment(self) -> float | None:
        return attainment(self.triage_met, self.triage_missed)

    @property
    def fix_attainment(self) -> float | None:
        return attainment(self.fix_met, self.fix_missed)


def trend_start(period: Period) -> datetime:
    """The start of the weekly trend: the last TREND_WEEKS weeks, or the whole period when
    longer (at most TREND_MAX_WEEKS)."""
    now = period.now
    start = now - timedelta(weeks=TREND_WEEKS)
    if period.start is None:
        return now - timedelta(weeks=TREND_MAX_WEEKS)
    return max(min(start, period.start), now - timedelta(weeks=TREND_MAX_WEEKS))


def weekly_attainment(
    *, owner_key: str, period: Period, repository: int | None = None, targets: TargetsByOwner | None = None
) -> list[WeekAttainment]:
    """The owner's attainment per ISO week of episode start (see trend_start), as of now:
    weeks without a decided episode are left out. Two queries (targets, counts; one with
    `targets`)."""
    default, own = targets or targets_by_owner()
    now = period.now
    since = trend_start(period)
    episodes = (
        _episodes(now=now, repository=repository, owner_key=owner_key, default=default, own=own)
        .filter(started_at__gt=since, started_at__lte=now)
        .annotate(week=TruncWeek("started_at"))
    )
    names = ("triage_met", "triage_missed", "fix_met", "fix_missed")
    rows = sorted(
        _count_rows(episodes, "week", Period(name="all", now=now), names),
        key=lambda r: as_datetime(r["week"]),
    )
    weeks = []
    for row in rows:
        week = WeekAttainment(
            week=as_datetime(row["week"]),
            **{k: row[k] for k in ("triage_met", "triage_missed", "fix_met", "fix_missed")},
        )
        if week.triage_met + week.triage_missed + week.fix_met + week.fix_missed:
            weeks.append(week)
    return weeks


def breaching_episodes(
    *,
    owner_key: str,
    now: datetime,
    repository: int | None = None,
    limit: int = BREACHING_SHOWN,
    targets: TargetsByOwner | None = None,
) -> list[dict[str, Any]]:
    """The owner's open episodes breaching a target now, oldest first (at most `limit`):
    test, start, age, what is breached, the test's assignee. Two queries (targets, rows;
    one with `targets`)."""
    default, own = targets or targets_by_owner()
    episodes = (
        _episodes(now=now, repository=repository, owner_key=owner_key, default=default, own=own)
        .filter(breaching_q(now))
        .select_related("test_case__assignee")
        .order_by("started_at", "test_case_id")[:limit]
    )
    rows = []
    episode: Any  # with the annotations of _episodes
    for episode in episodes:
        breached = []
        if episode.triaged_at is None and episode.triage_deadline < now:
            breached.append("triage")
        if episode.fix_deadline < now:
            breached.append("fix")
        rows.append(
            {
                "test": episode.test_case,
                "started_at": episode.started_at,
                "start_known": episode.start_known,
                "age": now - episode.started_at,
                "breached": breached,
                "assignee": episode.test_case.assignee,
            }
        )
    return rows


# ---------------------------------------------------------------- a test's triage history


def triage_history(test: TestCase, *, limit: int = TRIAGE_HISTORY_SHOWN) -> tuple[list[TriageEvent], int]:
    """The test's latest triage actions (newest first) and how many there are in all. One
    query (the total is a window count over the test's rows)."""
    rows: list[Any] = list(
        TriageEvent.objects.filter(test_case_id=test.pk)
        .select_related("by")
        .annotate(total=Window(Count("id")))
        .order_by("-at", "-id")[:limit]
    )
    return rows, (rows[0].total if rows else 0)


def triage_events(*, test_case_id: Any = None) -> QuerySet[TriageEvent]:
    """Every triage action (the API's list), or one test's; test and user joined."""
    rows = TriageEvent.objects.select_related("test_case", "by")
    return rows if test_case_id is None else rows.filter(test_case_id=test_case_id)
