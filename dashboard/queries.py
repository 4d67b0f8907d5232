"""Read side: every number the dashboard, the admin and the API show, defined once.

Each function is a noun (what it returns), takes keyword-only filters, aggregates in
SQL and runs a fixed number of queries whatever the data size. Definitions follow
../shared/METRICS.md; the docstrings cite the rule they implement.

Figures that come from a test's whole history (status at a time, episodes, time to
resolve) read rollup tables that the projections keep (events/rollups.py), so their cost
stays nearly flat as history grows. Medians are raw SQL on purpose (PostgreSQL has
percentile_cont, SQLite has nothing): the portable form is the average of the middle one
or two rows by ROW_NUMBER() over COUNT(). It runs unchanged on SQLite (>= 3.25, window
functions) and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.db.models import (
    Avg,
    Count,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from events import rollups
from events.admin_helpers import distinct_values, related_count
from events.models import (
    Delivery,
    FactDayCount,
    Investigation,
    InvestigationDay,
    InvestigationFact,
    MonitorDayCount,
    MonitorEvent,
    MonitorState,
    Owner,
    OwnerCount,
    OwnerDayDelta,
    OwnerEpisode,
    ResolutionBucket,
    Status,
    StatusChange,
    StatusDayDelta,
    StatusInterval,
    TestCase,
    TestCaseOwner,
    TransitionDayCount,
)
from events.sql import seconds_between

NO_OWNER = "(no owner)"
# Severity order, Trunk's priority: BROKEN over FLAKY over HEALTHY, which is also the
# alphabetical order of the values, so "most severe first" is `status` A to Z (and the
# (status, name, id) index gives it in order). tests/dashboard/test_queries.py checks it.
MOST_SEVERE_FIRST = sorted(Status.values)
RELAPSE_WINDOW = timedelta(days=30)
CONFIDENCE_BANDS = {"high": (0.8, None), "medium": (0.5, 0.8), "low": (None, 0.5)}


# ---------------------------------------------------------------- periods and filters


PERIODS = {"7d": 7, "30d": 30, "90d": 90, "all": None}
DEFAULT_PERIOD = "30d"


@dataclass(frozen=True)
class Period:
    """`period` = 7d, 30d, 90d or all: events whose event time is within the last N days."""

    name: str
    now: datetime

    @property
    def start(self) -> datetime | None:
        days = PERIODS[self.name]
        return None if days is None else self.now - timedelta(days=days)

    @classmethod
    def parse(cls, value: str | None, *, now: datetime | None = None) -> Period:
        name = value if value in PERIODS else DEFAULT_PERIOD
        return cls(name=name, now=now or timezone.now())

    def filter(self, field: str) -> Q:
        q = Q(**{f"{field}__lte": self.now})
        return q & Q(**{f"{field}__gt": self.start}) if self.start else q


def _in_repository(field: str, repository: int | None) -> Q:
    return Q(**{field: repository}) if repository else Q()


def _sql(query: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _median_sql(inner: str, group: str, value: str) -> str:
    """Median of `value` per `group` over the rows of `inner` (see module doc): the middle
    row, or the mean of the two middle rows for an even count."""
    if connection.vendor == "postgresql":
        # The same definition, as one ordered-set aggregate: about 3x faster than the
        # two window passes on a large group.
        return f"""
            SELECT {group}, percentile_cont(0.5) WITHIN GROUP (ORDER BY {value})
              FROM ({inner}) AS median_input GROUP BY {group}
        """
    return f"""
        SELECT {group}, AVG({value}) FROM (
            SELECT {group}, {value},
                   ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY {value}) AS rn,
                   COUNT(*) OVER (PARTITION BY {group}) AS cnt
            FROM ({inner}) AS median_input
        ) AS ranked
        WHERE rn IN ((cnt + 1) / 2, (cnt + 2) / 2)
        GROUP BY {group}
    """


# ---------------------------------------------------------------- status at a time


def status_counts_at(at: datetime, *, repository: int | None = None) -> dict[str, int]:
    """Tests by status at time `at`, counting only tests known by then (METRICS "Status at
    time t"): the status intervals (events.rollups) covering `at`.

    Unfiltered, in two small index range reads whatever the history: the running sum
    of day deltas up to the end of the day before, plus the intervals that started and
    minus those that ended between that midnight and `at`. Two queries; with a repository,
    one query over the intervals of its tests.
    """
    counts = {s.value: 0 for s in Status}
    if repository is not None:
        for status, n in (
            StatusInterval.objects.filter(
                Q(ended_at__isnull=True) | Q(ended_at__gt=at),
                started_at__lte=at,
                test_case__repository=repository,
            )
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        ):
            counts[status] = n
        return counts
    midnight = datetime.combine(at.astimezone(UTC).date(), time.min, tzinfo=UTC)
    for status, n in (
        StatusDayDelta.objects.filter(day__lt=midnight.date())
        .values_list("status")
        .annotate(n=Sum("delta"))
        .order_by()
    ):
        counts[status] += n
    started = Q(started_at__gte=midnight, started_at__lte=at)
    ended = Q(ended_at__gte=midnight, ended_at__lte=at)
    for row in (
        StatusInterval.objects.filter(started | ended)
        .values("status")
        .annotate(started=Count("id", filter=started), ended=Count("id", filter=ended))
        .order_by()
    ):
        counts[row["status"]] += row["started"] - row["ended"]
    return counts


def status_summary(*, period: Period, repository: int | None = None) -> dict:
    """Current counts by status and quarantined, with the change over the period.

    Current state is "now" (TestCase.status is the status at now: the latest change by
    event time); "change" is count now minus count at the start of the period. For all
    repositories the counts now are the sums of the day deltas (events.rollups: each test
    adds +1 to the status of its current interval, and its ended intervals cancel out), a
    few rows a day instead of every test.
    """
    tests = TestCase.objects.filter(_in_repository("repository", repository))
    if repository is None:
        now = dict(StatusDayDelta.objects.values_list("status").annotate(n=Sum("delta")).order_by())
    else:
        now = dict(tests.values_list("status").annotate(n=Count("id")).order_by())
    current = {s.value: now.get(s.value, 0) for s in Status}
    if period.start is None:
        before = {s.value: 0 for s in Status}
    else:
        before = status_counts_at(period.start, repository=repository)
    return {
        "status": {s: {"now": current[s], "change": current[s] - before[s]} for s in current},
        "total": sum(current.values()),
        "quarantined": tests.filter(quarantined=True).count(),
    }


def status_trend(
    *, period: Period, repository: int | None = None, owner_key: str | None = None
) -> list[dict]:
    """Tests by status at the end of each day of the period (METRICS: "Tests by status on
    day D"), optionally only one owner's tests (`owner_key`; "" = tests without owners).

    Each status interval of a test (events.rollups) adds +1 to its status on the day it
    starts and -1 on the day it ends; a running sum over days gives the counts. For all
    tests, and for one owner's tests, these day deltas are kept as rollups (StatusDayDelta,
    OwnerDayDelta: a few rows a day, whatever the number of tests or events); for one
    repository they are summed from the intervals of its tests. Python only adds up days.
    One query.
    """
    if repository is None and owner_key is None:
        rows = StatusDayDelta.objects.exclude(delta=0).values_list("day", "status", "delta")
        return _running_daily_counts(list(rows), period)
    if repository is None:
        rows = (
            OwnerDayDelta.objects.filter(owner_key=owner_key)
            .exclude(delta=0)
            .values_list("day", "status", "delta")
        )
        return _running_daily_counts(list(rows), period)
    conditions, params = ["(%s IS NULL OR tc.repository_id = %s)"], [repository, repository]
    if owner_key is not None:
        owned, owned_params = _owner_condition(owner_key)
        conditions.append(owned)
        params += owned_params
    rows = _sql(
        f"""
        WITH intervals AS (
            SELECT si.status, si.started_at, si.ended_at
              FROM events_statusinterval si JOIN events_testcase tc ON tc.id = si.test_case_id
             WHERE {" AND ".join(conditions)}
        ),
        deltas AS (
            SELECT {_day("started_at")} AS day, status, 1 AS delta FROM intervals
            UNION ALL
            SELECT {_day("ended_at")}, status, -1 FROM intervals WHERE ended_at IS NOT NULL
        )
        SELECT day, status, SUM(delta) FROM deltas GROUP BY day, status ORDER BY day
        """,
        params,
    )
    return _running_daily_counts(rows, period)


def _running_daily_counts(rows: list[tuple], period: Period) -> list[dict]:
    """(day, status, net change) rows -> one row per day of the period with running counts."""
    by_day: dict[date, dict[str, int]] = {}
    for day, status, delta in rows:
        by_day.setdefault(_as_date(day), {})[status] = int(delta)
    if not by_day:
        return []
    running = {s.value: 0 for s in Status}
    day = period.start.date() if period.start else min(by_day)
    for d in sorted(k for k in by_day if k < day):  # days before the period feed the sum only
        for status, delta in by_day[d].items():
            running[status] += delta
    series = []
    while day <= period.now.date():
        for status, delta in by_day.get(day, {}).items():
            running[status] += delta
        series.append({"day": day, **running})
        day += timedelta(days=1)
    return series


def _owner_condition(owner_key: str, alias: str = "tc") -> tuple[str, list]:
    """SQL (and params) for "the test `alias` belongs to owner `owner_key`" ("" = no owner)."""
    if owner_key == "":
        return f"NOT EXISTS (SELECT 1 FROM events_testcaseowner ol WHERE ol.test_case_id = {alias}.id)", []
    return (
        f"""EXISTS (SELECT 1 FROM events_testcaseowner ol JOIN events_owner oo ON oo.id = ol.owner_id
                     WHERE ol.test_case_id = {alias}.id AND oo.key = %s)""",
        [owner_key],
    )


def _day(expr: str) -> str:
    if connection.vendor == "postgresql":
        return f"(({expr}) AT TIME ZONE 'UTC')::date"
    return f"date({expr})"


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def transitions_per_day(*, period: Period, repository: int | None = None) -> list[dict]:
    """Status change events by day of event time, grouped by new_status (METRICS
    "Transitions on day D"). One query.

    For all repositories, the days wholly inside the period come from TransitionDayCount
    (events/rollups.py: a few rows a day, whatever the number of changes) and only the
    period's first and last days, which it covers in part (after its start, up to now),
    from the changes themselves (occurred_at index); changes dated after now are never
    counted. For one repository (a test may move between repositories, so no rollup),
    the changes of its tests. tests/dashboard/test_transition_rollups.py proves both equal.
    """
    changes = StatusChange.objects.filter(
        period.filter("occurred_at"), _in_repository("test_case__repository", repository)
    )
    if repository is None:
        today = period.now.astimezone(UTC).date()
        whole_days = TransitionDayCount.objects.filter(day__lt=today, count__gt=0)
        partial = Q(occurred_at__gte=end_of_day(today - timedelta(days=1)))
        if period.start is not None:
            first_whole_day = period.start.astimezone(UTC).date() + timedelta(days=1)
            whole_days = whole_days.filter(day__gte=first_whole_day)
            partial |= Q(occurred_at__lt=end_of_day(first_whole_day - timedelta(days=1)))
        rows = (
            whole_days.values_list("day", "new_status", "count")
            .order_by()
            .union(_changes_by_day(changes.filter(partial)), all=True)
        )
    else:
        rows = _changes_by_day(changes)
    return [{"day": _as_date(day), "new_status": status, "count": n} for day, status, n in sorted(rows)]


def _changes_by_day(changes: QuerySet[StatusChange]) -> QuerySet:
    """(day, new_status, count) of these changes (UTC days of event time), unordered."""
    return (
        changes.annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .values_list("day", "new_status")
        .annotate(count=Count("id"))
        .order_by()
    )


# ---------------------------------------------------------------- episodes and owners


@dataclass(frozen=True)
class Episode:
    started_at: datetime
    ended_at: datetime | None
    relapse: bool


def episodes(test_case: TestCase) -> list[Episode]:
    """A test's episodes, oldest first (one query; kept by events.rollups)."""
    return [
        Episode(
            started_at=e.started_at,
            ended_at=e.ended_at,
            relapse=e.previous_end is not None and e.started_at - e.previous_end <= RELAPSE_WINDOW,
        )
        for e in test_case.episodes.order_by("started_at")
    ]


def _as_datetime(value) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def owner_stats(*, period: Period, repository: int | None = None, owner_key: str | None = None) -> list[dict]:
    """Per owner (case-insensitive; "(no owner)" for tests without): tests, flaky, broken,
    quarantined, median time to fix over episodes that ended inside the period, age of
    the oldest open episode of a test now FLAKY or BROKEN, and relapses (episodes
    starting inside the period within 30 days of the same test's previous episode's end).
    `owner_key`: only that owner ("" for tests without owners).

    A test with several owners counts once for each owner. Read from the owner rollups
    (events/rollups.py): OwnerCount (one row per owner: tests, FLAKY, BROKEN and
    quarantined now, fixes and relapses over all history) and OwnerEpisode (each episode
    once per owner of its test, with its time to fix), so the cost follows the number of
    owners and of the episodes inside the period, not the number of tests or all history.
    Three queries (two when no owner has a fix). In one repository:
    _owner_stats_in_repository.
    """
    if repository is not None:
        return _owner_stats_in_repository(period=period, repository=repository, owner_key=owner_key)
    one = Q() if owner_key is None else Q(owner_key=owner_key)
    counts = (
        OwnerCount.objects.filter(one, tests__gt=0)
        .annotate(
            owner=Subquery(Owner.objects.filter(key=OuterRef("owner_key")).values("name")[:1]),
            # The owner's page is linked by id: a name may hold anything (newlines, "..").
            owner_id=Subquery(Owner.objects.filter(key=OuterRef("owner_key")).values("id")[:1]),
            # The first entry of the owner's range in the open-episodes index.
            oldest_open_since=Subquery(
                OwnerEpisode.objects.filter(owner_key=OuterRef("owner_key"), ended_at__isnull=True)
                .order_by("started_at")
                .values("started_at")[:1]
            ),
        )
        .values(
            "owner_key",
            "owner",
            "owner_id",
            "tests",
            "flaky",
            "broken",
            "quarantined",
            "fixes",
            "relapses",
            "oldest_open_since",
        )
    )
    rows: dict[str, dict] = {}
    for row in counts:
        row["owner"] = row["owner"] or NO_OWNER
        row["oldest_open_since"] = row["oldest_open_since"] and _as_datetime(row["oldest_open_since"])
        rows[row["owner_key"]] = row | {"median_time_to_fix": None}
    if not rows:
        return []
    # All history from the counts, unless some episode ended or relapsed after `now` (an
    # event time ahead of our clock), which one index probe checks.
    whole_history = (
        period.start is None
        and not OwnerEpisode.objects.filter(
            Q(ended_at__gt=period.now) | Q(relapse=True, started_at__gt=period.now)
        ).exists()
    )
    if whole_history:
        medians = _all_owner_medians({key: row["fixes"] for key, row in rows.items()})
    else:
        medians = _owner_medians(period, owner_key)
        relapses = dict(
            OwnerEpisode.objects.filter(one, period.filter("started_at"), relapse=True)
            .values_list("owner_key")
            .annotate(n=Count("id"))
            .order_by()
        )
    for key, row in rows.items():
        if key in medians:
            row["median_time_to_fix"] = timedelta(seconds=float(medians[key]))
        if not whole_history:
            row["relapses"] = relapses.get(key, 0)
        del row["fixes"]
    return _by_severity(rows)


def _by_severity(rows: dict[str, dict]) -> list[dict]:
    return sorted(rows.values(), key=lambda r: (-r["flaky"] - r["broken"], r["owner"].casefold()))


def _owner_medians(period: Period, owner_key: str | None) -> dict[str, float]:
    """Median time to fix per owner over the fixes that ended inside the period (a range
    of the (ended_at, owner_key, seconds) index)."""
    inner = """
        SELECT owner_key, seconds FROM events_ownerepisode
         WHERE ended_at <= %s AND (%s IS NULL OR ended_at > %s) AND (%s IS NULL OR owner_key = %s)
    """
    params = [period.now, period.start, period.start, owner_key, owner_key]
    return dict(_sql(_median_sql(inner, "owner_key", "seconds"), params))


def _all_owner_medians(fixes: dict[str, int]) -> dict[str, float]:
    """Every fix (the caller checked that none ended after now): per owner, the middle one
    or two fixes (the mean of both for an even count, as _median_sql) read at their offset
    in the (owner_key, seconds) index, instead of ranking every fix. One query."""
    return _medians_at_offset(
        "events_ownerepisode", "owner_key", sorted((k, n) for k, n in fixes.items() if n)
    )


def _owner_stats_in_repository(*, period: Period, repository: int, owner_key: str | None) -> list[dict]:
    """owner_stats for the tests of one repository: from the tests, their owner links and
    their episodes (bounded by the repository's size). Four queries in all (three for one
    owner)."""
    tests = TestCase.objects.filter(_in_repository("repository", repository))
    # No DISTINCT: a (test, owner) link is unique, so the join yields each test once per owner.
    counts = {
        "tests": Count("id"),
        "flaky": Count("id", filter=Q(status=Status.FLAKY)),
        "broken": Count("id", filter=Q(status=Status.BROKEN)),
        "quarantined": Count("id", filter=Q(quarantined=True)),
    }
    rows: dict[str, dict] = {}
    # One filter() call: a second one on the links would join them again (rows x owners).
    owned = (
        tests.filter(owner_links__owner__key=owner_key)
        if owner_key
        else tests.filter(owner_links__isnull=False)
    )
    if owner_key != "":
        for row in (
            owned.values(
                owner_key=F("owner_links__owner__key"),
                owner=F("owner_links__owner__name"),
                owner_id=F("owner_links__owner_id"),
            )
            .annotate(**counts)
            .order_by()
        ):
            rows[row["owner_key"]] = row
    if not owner_key:
        unowned = tests.filter(~Exists(TestCaseOwner.objects.filter(test_case=OuterRef("pk")))).aggregate(
            **counts
        )
        if unowned["tests"]:
            rows[""] = {"owner_key": "", "owner": NO_OWNER, "owner_id": None, **unowned}
    for row in rows.values():
        row.update(median_time_to_fix=None, oldest_open_since=None, relapses=0)

    # Episodes joined to owners ("" for none), in SQL.
    owner_of = """
        SELECT tc.id AS test_case_id, COALESCE(o.key, '') AS owner_key
          FROM events_testcase tc
          LEFT JOIN events_testcaseowner l ON l.test_case_id = tc.id
          LEFT JOIN events_owner o ON o.id = l.owner_id
         WHERE (%s IS NULL OR tc.repository_id = %s) AND (%s IS NULL OR COALESCE(o.key, '') = %s)
    """
    scope = [repository, repository, owner_key, owner_key]
    base = f"SELECT ow.owner_key, e.* FROM events_episode e JOIN ({owner_of}) AS ow ON ow.test_case_id = e.test_case_id"
    start, now = period.start, period.now
    fixed = f"""
        SELECT owner_key, {seconds_between("started_at", "ended_at")} AS seconds FROM ({base}) AS b
         WHERE ended_at IS NOT NULL AND ended_at <= %s AND (%s IS NULL OR ended_at > %s)
    """
    for key, median in _sql(_median_sql(fixed, "owner_key", "seconds"), [*scope, now, start, start]):
        if key in rows:
            rows[key]["median_time_to_fix"] = timedelta(seconds=float(median))
    relapse_window = f"{seconds_between('previous_end', 'started_at')} <= %s"
    for key, oldest, relapses in _sql(
        f"""
        SELECT owner_key,
               MIN(CASE WHEN ended_at IS NULL THEN started_at END),
               SUM(CASE WHEN previous_end IS NOT NULL AND {relapse_window}
                         AND started_at <= %s AND (%s IS NULL OR started_at > %s) THEN 1 ELSE 0 END)
          FROM ({base}) AS b
         -- only open episodes and those starting inside the period matter (indexes)
         WHERE ended_at IS NULL OR (started_at <= %s AND (%s IS NULL OR started_at > %s))
         GROUP BY owner_key
        """,
        [RELAPSE_WINDOW.total_seconds(), now, start, start, *scope, now, start, start],
    ):
        if key in rows:
            rows[key]["oldest_open_since"] = _as_datetime(oldest) if oldest else None
            rows[key]["relapses"] = int(relapses or 0)
    return _by_severity(rows)


def flaky_tests_by_owner(*, repository: int | None = None) -> list[dict]:
    """Tests FLAKY now per owner, "(no owner)" included (the overview's top owners):
    the counts of owner_stats without its episode figures. For all repositories one query
    (OwnerCount, a row per owner); in one repository two, over its FLAKY tests."""
    if repository is None:
        name = Owner.objects.filter(key=OuterRef("owner_key")).values("name")[:1]
        rows = list(
            OwnerCount.objects.filter(flaky__gt=0)
            .annotate(owner=Subquery(name))
            .values("owner_key", "owner", "flaky")
        )
        for row in rows:
            row["owner"] = row["owner"] or NO_OWNER
        return rows
    flaky = TestCase.objects.filter(_in_repository("repository", repository), status=Status.FLAKY)
    rows = list(
        flaky.filter(owner_links__isnull=False)
        .values(owner_key=F("owner_links__owner__key"), owner=F("owner_links__owner__name"))
        .annotate(flaky=Count("id"))
        .order_by()
    )
    unowned = flaky.filter(~Exists(TestCaseOwner.objects.filter(test_case=OuterRef("pk")))).count()
    if unowned:
        rows.append({"owner_key": "", "owner": NO_OWNER, "flaky": unowned})
    return rows


def median_time_to_fix(*, period: Period, repository: int | None = None) -> timedelta | None:
    """Median time to fix over all closed episodes that ended inside the period (METRICS
    "Episodes"), from Episode.seconds (kept by events/rollups.py).

    All history in all repositories: one query reading a few rows a day and two index
    entries (_all_median_time_to_fix). Otherwise (or when some episode ended after now,
    an event time ahead of our clock), the episodes that ended inside the period (the
    ended_at index; with a repository, its tests' episodes). One query either way (two
    in the rare second case).
    """
    if period.start is None and repository is None:
        future, median = _all_median_time_to_fix(period.now)
        if not future:
            return None if median is None else timedelta(seconds=float(median))
    inner = """
        SELECT 1 AS everyone, seconds
          FROM events_episode e JOIN events_testcase tc ON tc.id = e.test_case_id
         WHERE ended_at IS NOT NULL AND ended_at <= %s AND (%s IS NULL OR ended_at > %s)
           AND (%s IS NULL OR tc.repository_id = %s)
    """
    rows = _sql(
        _median_sql(inner, "everyone", "seconds"),
        [period.now, period.start, period.start, repository, repository],
    )
    return timedelta(seconds=float(rows[0][1])) if rows else None


def _all_median_time_to_fix(now: datetime) -> tuple[bool, float | None]:
    """(whether some episode ended after `now`, median time to fix over every closed
    episode): the number of fixes n from TransitionDayCount (a few rows a day), then the
    middle one or two fixes (the mean of both for an even count, as _median_sql) read at
    their offset in the (seconds) index, instead of ranking every episode. One query."""
    return _sql(
        """
        WITH fixes AS (SELECT COALESCE(SUM(fixes), 0) AS n FROM events_transitiondaycount)
        SELECT EXISTS (SELECT 1 FROM events_episode WHERE ended_at > %s),
               (SELECT AVG(seconds) FROM (
                    SELECT seconds FROM events_episode WHERE seconds IS NOT NULL ORDER BY seconds
                     LIMIT (SELECT 2 - n %% 2 FROM fixes) OFFSET (SELECT (n - 1) / 2 FROM fixes)
                ) AS middle
                 WHERE (SELECT n FROM fixes) > 0)
        """,
        [now],
    )[0]


# ---------------------------------------------------------------- a test's timelines


@dataclass(frozen=True)
class Interval:
    state: str
    start: datetime
    end: datetime | None  # None: still current


def status_timeline(test_case: TestCase, *, now: datetime | None = None) -> list[Interval]:
    """The test's status intervals from first seen to now (one query; kept by
    events.rollups: before its first change the test had that change's previous_status,
    or HEALTHY)."""
    return [
        Interval(status, start, end)
        for status, start, end in test_case.status_intervals.order_by("started_at", "id").values_list(
            "status", "started_at", "ended_at"
        )
    ]


def monitor_timeline(test_case: TestCase) -> list[dict]:
    """Each monitor's active intervals for the test (one query): an `active` event opens
    an interval, the next `resolved` event of the same monitor closes it."""
    events = test_case.monitor_events.order_by("monitor_id", "occurred_at", "id").values_list(
        "monitor_id", "monitor__type", "occurred_at", "status"
    )
    by_monitor: dict = {}
    for monitor_id, monitor_type, at, status in events:
        entry = by_monitor.setdefault(
            monitor_id, {"monitor_id": monitor_id, "type": monitor_type, "intervals": []}
        )
        intervals = entry["intervals"]
        open_ = intervals and intervals[-1]["end"] is None
        if status == MonitorEvent.MonitorStatus.ACTIVE and not open_:
            intervals.append({"start": at, "end": None})
        elif status == MonitorEvent.MonitorStatus.RESOLVED and open_:
            intervals[-1]["end"] = at
    # A monitor that only ever reported `resolved` was never active for this test.
    return [entry for entry in by_monitor.values() if entry["intervals"]]


# ---------------------------------------------------------------- monitors


def monitor_summary(*, period: Period, repository: int | None = None) -> dict:
    """Activations per day by monitor type, active pairs now, median time to resolve per
    type (resolutions inside the period) and the pairs that flap most.

    A bounded period reads the events and intervals inside it (indexed on event time).
    Period `all` reads the rollups instead (events/rollups.py), which count all history:
    that is the period only when no event is dated after `now` (an event time ahead of
    our clock), which one index probe checks; otherwise, the bounded queries."""
    whole_history = (
        period.start is None and not MonitorEvent.objects.filter(occurred_at__gt=period.now).exists()
    )
    if whole_history and not repository:
        activations = _activations_from_day_counts()
    else:
        activations = _activations_from_events(period, repository)
    flapping = (
        _flapping_from_pairs(repository) if whole_history else _flapping_from_events(period, repository)
    )
    names = dict(
        TestCase.objects.filter(pk__in={row["test_case_id"] for row in flapping}).values_list("pk", "name")
    )
    for row in flapping:
        row["test_case__name"] = names.get(row["test_case_id"], "")
    flapping.sort(key=lambda row: (-row["activations"], row["test_case__name"]))
    if whole_history and not repository:
        medians = _all_resolve_medians()
    else:
        medians = _resolve_medians(period, repository)
    return {
        "activations": activations,
        "active_now": active_monitor_pairs(repository=repository),
        "median_time_to_resolve": {t: timedelta(seconds=float(s)) for t, s in medians.items()},
        "flapping": flapping,
    }


def _activations_from_events(period: Period, repository: int | None) -> list[dict]:
    return list(
        MonitorEvent.objects.filter(
            period.filter("occurred_at"),
            _in_repository("test_case__repository", repository),
            status=MonitorEvent.MonitorStatus.ACTIVE,
        )
        .annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .values("day", type=F("monitor__type"))
        .annotate(count=Count("id"))
        .order_by("day", "type")
    )


def _activations_from_day_counts() -> list[dict]:
    """All history from MonitorDayCount (a day whose events were removed may be kept at 0)."""
    return list(
        MonitorDayCount.objects.filter(status=MonitorEvent.MonitorStatus.ACTIVE)
        .values("day", type=F("monitor__type"))
        .annotate(count=Sum("count"))
        .filter(count__gt=0)
        .order_by("day", "type")
    )


# Aggregate on ids first and name only the top 20 (grouping by the name text costs a
# join and a wide sort over every activation); the caller adds the names.
def _flapping_from_events(period: Period, repository: int | None) -> list[dict]:
    return list(
        MonitorEvent.objects.filter(
            period.filter("occurred_at"),
            _in_repository("test_case__repository", repository),
            status=MonitorEvent.MonitorStatus.ACTIVE,
        )
        .values("monitor_id", "test_case_id", type=F("monitor__type"))
        .annotate(activations=Count("id"))
        .filter(activations__gt=1)
        .order_by("-activations", "test_case_id", "monitor_id")[:20]
    )


def _flapping_from_pairs(repository: int | None) -> list[dict]:
    """All history: each pair's `active` events are MonitorState.activations, whose index
    (-activations, test_case, monitor) gives the top 20 in order."""
    return list(
        MonitorState.objects.filter(_in_repository("test_case__repository", repository), activations__gt=1)
        .values("monitor_id", "test_case_id", "activations", type=F("monitor__type"))
        .order_by("-activations", "test_case_id", "monitor_id")[:20]
    )


def _resolve_medians(period: Period, repository: int | None) -> dict[str, float]:
    """Median seconds to resolve per monitor type over the intervals (events/rollups.py:
    from the first `active` after a `resolved` to the next `resolved` of the pair)
    resolved inside the period, through the (resolved_at, monitor_type) index."""
    in_repository = (
        "AND test_case_id IN (SELECT id FROM events_testcase WHERE repository_id = %s)" if repository else ""
    )
    inner = f"""
        SELECT monitor_type AS type, seconds FROM events_monitorinterval
         WHERE resolved_at <= %s AND (%s IS NULL OR resolved_at > %s) {in_repository}
    """
    params = [period.now, period.start, period.start, *([repository] if repository else [])]
    return dict(_sql(_median_sql(inner, "type", "seconds"), params))


def _all_resolve_medians() -> dict[str, float]:
    """Every resolved interval (the caller checked none is resolved after now): per type,
    the middle one or two resolutions (the mean of both for an even count, as
    _median_sql). The resolution buckets (events/rollups.py) say which bucket holds each
    middle position and its offset there; it is read at that offset inside the bucket's
    range of the (monitor_type, seconds) index, instead of walking half of every
    resolution of the type. Two queries."""
    buckets: dict[str, list[tuple[int, int]]] = {}
    for kind, bucket, n in (
        ResolutionBucket.objects.filter(count__gt=0)
        .order_by("monitor_type", "bucket")
        .values_list("monitor_type", "bucket", "count")
    ):
        buckets.setdefault(kind, []).append((bucket, n))
    # Per type, each middle position as (bucket, offset inside it).
    positions: list[tuple[str, int, int]] = []
    for kind, rows in buckets.items():
        total = sum(n for _, n in rows)
        for position in sorted({(total - 1) // 2, total // 2}):
            for bucket, n in rows:
                if position < n:
                    positions.append((kind, bucket, position))
                    break
                position -= n
    reads = [
        (kind, *rollups.resolution_bucket_range(bucket), 1, offset) for kind, bucket, offset in positions
    ]
    return _mean_of_rows_at("events_monitorinterval", "monitor_type", reads)


def _medians_at_offset(table: str, key: str, counts: list[tuple[str, int]]) -> dict[str, float]:
    """Per key, the median of `seconds` over its `n` rows (`counts`: (key, n), n > 0): the
    middle one or two rows (the mean of both for an even count, as _median_sql) read at
    their offset in the table's (key, seconds) index, instead of ranking every row. One
    query, none without counts."""
    return _mean_of_rows_at(table, key, [(k, None, None, 2 - n % 2, (n - 1) // 2) for k, n in counts])


def _mean_of_rows_at(table: str, key: str, reads: list[tuple]) -> dict[str, float]:
    """Per key, the mean `seconds` of the rows read at an offset in the table's (key,
    seconds) index: each read is (key, low, high, limit, offset), its rows `limit` rows
    from `offset` among the key's rows with low <= seconds < high (None: unbounded). One
    query, none without reads."""
    if not reads:
        return {}
    parts, params = [], []
    for i, (value, low, high, limit, offset) in enumerate(reads):
        # LIMIT inside a UNION member needs the wrapping on SQLite.
        parts.append(
            f"""SELECT * FROM (
                SELECT {key}, seconds FROM {table}
                 WHERE {key} = %s AND seconds IS NOT NULL
                   {"AND seconds >= %s" if low is not None else ""}
                   {"AND seconds < %s" if high is not None else ""}
                 ORDER BY seconds LIMIT %s OFFSET %s) AS middle_{i}"""
        )
        params += [value, *(bound for bound in (low, high) if bound is not None), limit, offset]
    middle = " UNION ALL ".join(parts)
    return dict(_sql(f"SELECT {key}, AVG(seconds) FROM ({middle}) AS m GROUP BY {key}", params))


def active_monitor_pairs(*, repository: int | None = None) -> QuerySet[MonitorState]:
    """(monitor, test) pairs whose latest monitor event is `active`, newest first."""
    return (
        MonitorState.objects.filter(status=MonitorEvent.MonitorStatus.ACTIVE)
        .filter(_in_repository("test_case__repository", repository))
        .select_related("monitor", "test_case")
        .order_by("-since")
    )


# ---------------------------------------------------------------- investigations


def confidence_band(confidence: float | None) -> str:
    """high >= 0.8, medium >= 0.5 and < 0.8, low < 0.5 ("" without a confidence)."""
    if confidence is None:
        return ""
    if confidence >= 0.8:
        return "high"
    return "medium" if confidence >= 0.5 else "low"


def band_filter(band: str, field: str = "confidence") -> Q:
    lo, hi = CONFIDENCE_BANDS[band]
    q = Q()
    if lo is not None:
        q &= Q(**{f"{field}__gte": lo})
    if hi is not None:
        q &= Q(**{f"{field}__lt": hi})
    return q


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
        period.filter("occurred_at"), _in_repository("test_case__repository", repository)
    )
    # Counted on confidence (never null), not id: the histogram and the series then read
    # only the (occurred_at, confidence) index, not the wide rows with their summaries.
    bins = {
        f"b{i}": Count(
            "confidence",
            filter=Q(confidence__gte=lo) & (Q(confidence__lt=hi) if hi is not None else Q()),
        )
        for i, (lo, hi) in enumerate(rollups.confidence_bins())
    }
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
        "histogram": [histogram[f"b{i}"] for i in range(10)],
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


# ---------------------------------------------------------------- deliveries


def delivery_health(*, now: datetime | None = None) -> dict:
    """Deliveries received in the last 24 h, and how many were invalid, failed, or are
    still waiting for the projector (FLAKYBOARD_DEFERRED_PROJECTION)."""
    now = now or timezone.now()
    return Delivery.objects.filter(received_at__gt=now - timedelta(hours=24), received_at__lte=now).aggregate(
        total=Count("id"),
        invalid=Count("id", filter=Q(outcome=Delivery.Outcome.INVALID)),
        failed=Count("id", filter=Q(outcome=Delivery.Outcome.FAILED)),
        pending=Count("id", filter=Q(outcome=Delivery.Outcome.PENDING)),
    )


# ---------------------------------------------------------------- test lists


def test_cases() -> QuerySet[TestCase]:
    """Tests with what a list row shows, in a fixed number of queries."""
    return TestCase.objects.select_related("repository", "assignee").prefetch_related(
        Prefetch("owners", queryset=Owner.objects.order_by("key"))
    )


NO_OWNER_PARAM = "none"  # `owner=none`: tests without owners
# `sort` values and the field each orders by ("-" in front: descending).
SORTS = {
    "name": "name",
    "status": "status",
    "status_since": "status_since",
    "failure_rate": "failure_rate_last_7d",
    "prs_impacted": "pull_requests_impacted_last_7d",
}
DEFAULT_SORT = "-status_since"


def filter_test_cases(
    tests: QuerySet[TestCase],
    *,
    repository: int | None = None,
    status: str | None = None,
    owner: str | None = None,
    quarantined: bool | None = None,
    variant: str | None = None,
    triage: str | None = None,
    q: str | None = None,
    sort: str | None = None,
) -> QuerySet[TestCase]:
    """The one implementation of the test filters shared by the tests page, its CSV and
    the API (parameters `repository`, `status`, `owner`, `quarantined`, `variant`,
    `triage`, `q`, `sort`). Values must be validated by the caller (a form or a
    filterset): `status` upper case, `owner` an owner name in any case or "none"."""
    if repository:
        tests = tests.filter(repository=repository)
    if status:
        tests = tests.filter(status=status.upper())
    if owner:
        if owner.casefold() == NO_OWNER_PARAM:
            tests = tests.filter(~Exists(TestCaseOwner.objects.filter(test_case=OuterRef("pk"))))
        else:
            # Owners compare case-insensitively: filter on the normalised key (indexed).
            tests = tests.filter(
                Exists(TestCaseOwner.objects.filter(test_case=OuterRef("pk"), owner__key=owner.casefold()))
            )
    if quarantined is not None:
        tests = tests.filter(quarantined=quarantined)
    if variant is not None and variant != "":
        tests = tests.filter(variant=variant)
    if triage:
        tests = tests.filter(triage_state=triage)
    if q:
        tests = tests.filter(Q(name__icontains=q) | Q(classname__icontains=q) | Q(file_path__icontains=q))
    return sort_test_cases(tests, sort)


def sort_test_cases(tests: QuerySet[TestCase], sort: str | None) -> QuerySet[TestCase]:
    """`sort` is one of SORTS, "-" in front for descending; status sorts by severity.
    Empty values (never changed, no failure rate) come last when descending."""
    sort = sort or DEFAULT_SORT
    key = sort.removeprefix("-")
    if key not in SORTS:
        return sort_test_cases(tests, DEFAULT_SORT)
    field = F(SORTS[key])
    if key == "status":
        # Descending severity is ascending values (MOST_SEVERE_FIRST): the index order.
        return tests.order_by(field.asc() if sort.startswith("-") else field.desc(), "name", "id")
    primary = field.desc(nulls_last=True) if sort.startswith("-") else field.asc(nulls_first=True)
    return tests.order_by(primary, "name", "id")


def status_history(test_case: TestCase, *, limit: int = 200) -> QuerySet[StatusChange]:
    return test_case.status_changes.order_by("-occurred_at", "-id")[:limit]


def end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


# ---- added for the insight pages


def owner_test_count(owner_key: str, *, status: str | None = None) -> int:
    """How many tests the owner ("" = tests without owners) has, optionally only those in
    `status` now: from its OwnerCount row (events/rollups.py), not by counting its tests.
    All repositories only. One query."""
    row = OwnerCount.objects.filter(owner_key=owner_key).values_list("tests", "flaky", "broken").first()
    tests, flaky, broken = row or (0, 0, 0)
    by_status = {Status.FLAKY: flaky, Status.BROKEN: broken, Status.HEALTHY: tests - flaky - broken}
    return by_status[status] if status else tests


def owner_by_param(value: str) -> Owner | None:
    """The owner a URL names: by its id (the links: any name fits in a URL that way),
    else by its name in any case (older links), or None. `none` is not an owner (see
    NO_OWNER_PARAM). An id wins over a name made of digits (not a valid codeowner)."""
    if value.isascii() and value.isdigit() and len(value) <= 18:  # fits a bigint
        found = Owner.objects.filter(pk=int(value)).first()
        if found is not None:
            return found
    return Owner.objects.filter(key=value.casefold()).first()


def active_monitors_by_type(*, repository: int | None = None) -> dict[str, int]:
    """Active (monitor, test) pairs now, per monitor type (one query)."""
    return dict(
        MonitorState.objects.filter(status=MonitorEvent.MonitorStatus.ACTIVE)
        .filter(_in_repository("test_case__repository", repository))
        .values_list("monitor__type")
        .annotate(n=Count("id"))
        .order_by()
    )


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
        period.filter("occurred_at"), _in_repository("test_case__repository", repository)
    )
    if band in CONFIDENCE_BANDS:
        investigations = investigations.filter(band_filter(band))
    if owner:
        if owner.casefold() == NO_OWNER_PARAM:
            investigations = investigations.filter(
                ~Exists(TestCaseOwner.objects.filter(test_case=OuterRef("test_case")))
            )
        else:
            investigations = investigations.filter(
                Exists(
                    TestCaseOwner.objects.filter(test_case=OuterRef("test_case"), owner__key=owner.casefold())
                )
            )
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


def delivery_event_types() -> list[str]:
    """Every stored delivery type ("" for none). One query that jumps through the
    event_type index (a plain DISTINCT reads the whole index: ~100 ms at 1M deliveries)."""
    return distinct_values(Delivery, "event_type", limit=None)


PROJECTIONS = ("status_change", "monitor_event", "investigation", "quarantine_change")


def delivery_list(
    *,
    period: Period,
    repository: int | None = None,
    outcome: str | None = None,
    event_type: str | None = None,
) -> QuerySet[Delivery]:
    """Stored deliveries received inside the period (our clock: an invalid delivery has
    no event time), newest first, without their bodies. With a repository: the
    deliveries whose projected row belongs to a test of that repository."""
    deliveries = Delivery.objects.filter(period.filter("received_at"))
    if outcome:
        deliveries = deliveries.filter(outcome=outcome)
    if event_type is not None:
        deliveries = deliveries.filter(event_type=event_type)
    if repository:
        in_repository = Q()
        for relation in PROJECTIONS:
            model = Delivery._meta.get_field(relation).related_model
            in_repository |= Q(
                Exists(model.objects.filter(delivery=OuterRef("pk"), test_case__repository=repository))
            )
        deliveries = deliveries.filter(in_repository)
    return deliveries.defer("body", "headers", "error").order_by("-received_at", "-id")


def delivery_with_projections(delivery_id: int) -> QuerySet[Delivery]:
    """The delivery and whatever it projected (each with its test), in one query."""
    return Delivery.objects.filter(pk=delivery_id).select_related(
        *(f"{relation}__test_case" for relation in PROJECTIONS), "monitor_event__monitor"
    )
