"""Codeowners: per-owner tests, FLAKY and BROKEN now, time to fix, open age, relapses
(the codeowners pages, the overview's top owners and the API's codeowners stats)."""

# SQL here is assembled from constant fragments only; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, Subquery

from events.metrics import NO_OWNER, RELAPSE_WINDOW, Period
from events.models import Owner, OwnerCount, OwnerEpisode, Status, TestCase, TestCaseOwner
from events.sql import seconds_between

from .common import as_datetime, in_repository, median_sql, medians_at_offset, run_sql


def owner_stats(*, period: Period, repository: int | None = None, owner_key: str | None = None) -> list[dict]:
    """Per owner (case-insensitive; "(no owner)" for tests without): tests, flaky, broken,
    quarantined, median time to fix over episodes that ended inside the period, age of
    the oldest open episode of a test now FLAKY or BROKEN, and relapses (episodes
    starting inside the period within 30 days of the same test's previous episode's end).
    `owner_key`: only that owner ("" for tests without owners).

    A test with several owners counts once for each owner. Read from the owner rollups
    (events/rollups/): OwnerCount (one row per owner: tests, FLAKY, BROKEN and
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
            "timed_fixes",
            "relapses",
            "oldest_open_since",
        )
    )
    rows: dict[str, dict[str, Any]] = {}
    for counted in counts:
        row: dict[str, Any] = {**counted, "median_time_to_fix": None}
        row["owner"] = row["owner"] or NO_OWNER
        row["oldest_open_since"] = row["oldest_open_since"] and as_datetime(row["oldest_open_since"])
        rows[row["owner_key"]] = row
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
    relapses: dict[str, int] = {}  # inside the period (whole history: OwnerCount's)
    if whole_history:
        medians = _all_owner_medians({key: row["timed_fixes"] for key, row in rows.items()})
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
        del row["timed_fixes"]
    return _by_severity(rows)


def severity_order(row: dict[str, Any]) -> tuple:
    """Most flaky and broken tests first; ties by name, then key (two owners may differ only
    in case): the codeowners table's order, and its chart's (charts.owner_statuses)."""
    return (-row["flaky"] - row["broken"], row["owner"].casefold(), row["owner"], row["owner_key"] or "")


def _by_severity(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows.values(), key=severity_order)


def _owner_medians(period: Period, owner_key: str | None) -> dict[str, float]:
    """Median time to fix per owner over the fixes that ended inside the period (a range
    of the (ended_at, owner_key, seconds) index)."""
    inner = """
        SELECT owner_key, seconds FROM events_ownerepisode
         WHERE ended_at <= %s AND (%s IS NULL OR ended_at > %s) AND (%s IS NULL OR owner_key = %s)
           AND seconds IS NOT NULL
    """
    params = [period.now, period.start, period.start, owner_key, owner_key]
    return dict(run_sql(median_sql(inner, "owner_key", "seconds"), params))


def _all_owner_medians(fixes: dict[str, int]) -> dict[str, float]:
    """Every fix with a known start (`fixes`: OwnerCount.timed_fixes; the caller checked
    that none ended after now): per owner, the middle one
    or two fixes (the mean of both for an even count, as median_sql) read at their offset
    in the (owner_key, seconds) index, instead of ranking every fix. One query."""
    return medians_at_offset(
        "events_ownerepisode", "owner_key", sorted((k, n) for k, n in fixes.items() if n)
    )


def _owner_stats_in_repository(*, period: Period, repository: int, owner_key: str | None) -> list[dict]:
    """owner_stats for the tests of one repository: from the tests, their owner links and
    their episodes (bounded by the repository's size). Four queries in all (three for one
    owner)."""
    tests = TestCase.objects.filter(in_repository("repository", repository))
    # No DISTINCT: a (test, owner) link is unique, so the join yields each test once per owner.
    counts = {
        "tests": Count("id"),
        "flaky": Count("id", filter=Q(status=Status.FLAKY)),
        "broken": Count("id", filter=Q(status=Status.BROKEN)),
        "quarantined": Count("id", filter=Q(quarantined=True)),
    }
    rows: dict[str, dict[str, Any]] = {}
    # One filter() call: a second one on the links would join them again (rows x owners).
    owned = (
        tests.filter(owner_links__owner__key=owner_key)
        if owner_key
        else tests.filter(owner_links__isnull=False)
    )
    if owner_key != "":
        for counted in (
            owned.values(
                owner_key=F("owner_links__owner__key"),
                owner=F("owner_links__owner__name"),
                owner_id=F("owner_links__owner_id"),
            )
            .annotate(**counts)
            .order_by()
        ):
            rows[counted["owner_key"]] = {**counted}
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
         WHERE b.seconds IS NOT NULL AND ended_at <= %s AND (%s IS NULL OR ended_at > %s)
    """
    for key, median in run_sql(median_sql(fixed, "owner_key", "seconds"), [*scope, now, start, start]):
        if key in rows:
            rows[key]["median_time_to_fix"] = timedelta(seconds=float(median))
    relapse_window = f"{seconds_between('previous_end', 'started_at')} <= %s"
    for key, oldest, relapses in run_sql(
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
            rows[key]["oldest_open_since"] = as_datetime(oldest) if oldest else None
            rows[key]["relapses"] = int(relapses or 0)
    return _by_severity(rows)


def problem_tests_by_owner(*, repository: int | None = None) -> list[dict]:
    """Tests FLAKY and BROKEN now per owner with any, "(no owner)" included (the
    overview's top owners): the counts of owner_stats without its episode figures. For all
    repositories one query (OwnerCount, a row per owner); in one repository two, over its
    FLAKY and BROKEN tests."""
    if repository is None:
        name = Owner.objects.filter(key=OuterRef("owner_key")).values("name")[:1]
        rows: list[dict[str, Any]] = [
            {**row}
            for row in OwnerCount.objects.filter(Q(flaky__gt=0) | Q(broken__gt=0))
            .annotate(owner=Subquery(name))
            .values("owner_key", "owner", "flaky", "broken")
        ]
        for row in rows:
            row["owner"] = row["owner"] or NO_OWNER
        return rows
    problems = TestCase.objects.filter(
        in_repository("repository", repository), status__in=(Status.FLAKY, Status.BROKEN)
    )
    counts = {
        "flaky": Count("id", filter=Q(status=Status.FLAKY)),
        "broken": Count("id", filter=Q(status=Status.BROKEN)),
    }
    rows = [
        {**row}
        for row in problems.filter(owner_links__isnull=False)
        .values(owner_key=F("owner_links__owner__key"), owner=F("owner_links__owner__name"))
        .annotate(**counts)
        .order_by()
    ]
    unowned = problems.filter(~Exists(TestCaseOwner.objects.filter(test_case=OuterRef("pk")))).aggregate(
        **counts
    )
    if unowned["flaky"] or unowned["broken"]:
        rows.append({"owner_key": "", "owner": NO_OWNER, **unowned})
    return rows


def owner_test_count(owner_key: str, *, status: str | None = None) -> int:
    """How many tests the owner ("" = tests without owners) has, optionally only those in
    `status` now: from its OwnerCount row (events/rollups/), not by counting its tests.
    All repositories only. One query."""
    row = OwnerCount.objects.filter(owner_key=owner_key).values_list("tests", "flaky", "broken").first()
    tests, flaky, broken = row or (0, 0, 0)
    by_status: dict[str, int] = {
        Status.FLAKY: flaky,
        Status.BROKEN: broken,
        Status.HEALTHY: tests - flaky - broken,
    }
    return by_status[status] if status else tests


def owner_by_param(value: str) -> Owner | None:
    """The owner a URL names: by its id (the links: any name fits in a URL that way),
    else by its name in any case (older links), or None. `none` is not an owner (see
    NO_OWNER_PARAM). An id wins over a name made of digits (not a valid codeowner)."""
    if "\x00" in value:
        return None  # no owner has one (the receiver refuses it), and PostgreSQL raises on it
    if value.isascii() and value.isdigit() and len(value) <= 18:  # fits a bigint
        found = Owner.objects.filter(pk=int(value)).first()
        if found is not None:
            return found
    return Owner.objects.filter(key=value.casefold()).first()
