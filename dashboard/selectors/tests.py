"""Tests: the list with its filters and sort orders (the tests page, its CSV, the API),
and one test's timelines, episodes and history (the test detail page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from django.core.paginator import Page, Paginator
from django.db.models import Count, Expression, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import cached_property

from events.metrics import (
    IMPACT_STATUS_POINTS,
    RELAPSE_WINDOW,
    days_open,
    impact_expression,
    is_relapse,
)
from events.models import (
    Delivery,
    Investigation,
    MonitorEvent,
    Owner,
    QuarantineChange,
    Status,
    StatusChange,
    TestCase,
)
from events.models import Episode as EpisodeRow
from events.orm import related_count

from .common import in_repository, owned_by

# Severity order, Trunk's priority: BROKEN over FLAKY over HEALTHY, which is also the
# alphabetical order of the values, so "most severe first" is `status` A to Z (and the
# (status, name, id) index gives it in order). tests/dashboard/test_selectors.py checks it.
MOST_SEVERE_FIRST = sorted(Status.values)


def test_cases() -> QuerySet[TestCase]:
    """Tests with what a list row shows, in a fixed number of queries."""
    return TestCase.objects.select_related("repository", "assignee").prefetch_related(
        Prefetch("owners", queryset=Owner.objects.order_by("key"))
    )


# `sort` values and the field each orders by ("-" in front: descending).
SORTS = {
    "name": "name",
    "status": "status",
    "status_since": "status_since",
    "failure_rate": "failure_rate_last_7d",
    "prs_impacted": "pull_requests_impacted_last_7d",
    "impact": "impact",  # an annotation: with_impact
}


DEFAULT_SORT = "-status_since"

# `sort=-impact`: the highest score first (never empty: the expression's default is 0),
# ties by name, then id. TestPaginator recognises a list in this order.
IMPACT_FIRST = (F("impact").desc(nulls_last=True), "name", "id")
# The statuses that score: every other test's impact is exactly 0, and each of these
# tests scores more than 0 (at least its status points times the quarantine factor).
_SCORING = list(IMPACT_STATUS_POINTS)
_NOT_SCORING = [status for status in Status.values if status not in IMPACT_STATUS_POINTS]


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
        tests = tests.filter(owned_by(owner))
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
    if key == "impact":
        tests = with_impact(tests)  # kept if the caller annotated it already
    field = F(SORTS[key])
    if key == "status":
        # Descending severity is ascending values (MOST_SEVERE_FIRST): the index order.
        return tests.order_by(field.asc() if sort.startswith("-") else field.desc(), "name", "id")
    if sort == "-impact":
        return tests.order_by(*IMPACT_FIRST)
    primary = field.desc(nulls_last=True) if sort.startswith("-") else field.asc(nulls_first=True)
    return tests.order_by(primary, "name", "id")


class TestPaginator(Paginator):
    """Django's Paginator over a test list (the tests page, the API), the same pages
    and counts. A list sorted by `-impact` is paged without sorting every row by its
    score (which computes it, two subqueries, for every FLAKY or BROKEN test and sorts
    every row with all its columns): its order is the scoring (FLAKY and BROKEN) tests
    by impact, then every other test (impact 0) by name and id, the order of the
    (status, name, id) index. So the count query also counts the scoring tests, and a
    page selects its ids from the part(s) it falls in, narrow (ids only), then reads the
    rows of those ids, in the list's order, with every annotation: the same number of
    queries."""

    __test__ = False

    _scoring: int

    def _impact_first(self) -> bool:
        tests = self.object_list
        return (
            isinstance(tests, QuerySet)
            and tests.model is TestCase
            and not tests.query.is_sliced
            and tuple(tests.query.order_by) == IMPACT_FIRST
        )

    @property
    def _tests(self) -> QuerySet[TestCase]:
        return cast("QuerySet[TestCase]", self.object_list)

    @cached_property
    def count(self) -> int:
        if not self._impact_first():
            return super().count
        counts = self._tests.order_by().aggregate(
            total=Count("pk"), scoring=Count("pk", filter=Q(status__in=_SCORING))
        )
        self._scoring = counts["scoring"]
        return counts["total"]

    def page(self, number) -> Page:
        if not self._impact_first():
            return super().page(number)
        number = self.validate_number(number)  # counts
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return Page(self._rows(bottom, top), number, self)

    def _rows(self, bottom: int, top: int) -> QuerySet[TestCase]:
        tests, scoring = self._tests, self._scoring
        ids = Q()
        if bottom < scoring:
            ids |= Q(pk__in=tests.filter(status__in=_SCORING).values("pk")[bottom : min(top, scoring)])
        if top > scoring:
            rest = tests.filter(status__in=_NOT_SCORING).order_by("name", "id").values("pk")
            ids |= Q(pk__in=rest[max(bottom - scoring, 0) : top - scoring])
        return tests.filter(ids) if ids else tests.none()


def _open_episode_start() -> Subquery:
    """The start of the test's open episode (episode_open_idx: an index-only read)."""
    return Subquery(
        EpisodeRow.objects.filter(test_case=OuterRef("pk"), ended_at__isnull=True)
        .order_by("-started_at")
        .values("started_at")[:1]
    )


def _relapse_count() -> Coalesce:
    """The test's relapses over all history: its episodes that started within the relapse
    window after the end of the previous one (events.metrics.is_relapse)."""
    return related_count(
        EpisodeRow,
        "test_case",
        previous_end__isnull=False,
        started_at__lte=F("previous_end") + RELAPSE_WINDOW,
    )


def impact(*, now: datetime | None = None) -> Expression:
    """The impact score of each test (events.metrics.impact_expression) as of `now`: its
    open episode's start and its relapse count read from its Episode rows, only for
    FLAKY and BROKEN tests."""
    return impact_expression(
        now=now or timezone.now(), episode_start=_open_episode_start(), relapses=_relapse_count()
    )


def with_impact(
    tests: QuerySet[TestCase], *, now: datetime | None = None, inputs: bool = False
) -> QuerySet[TestCase]:
    """`tests` with their impact score as `impact` (sortable: `sort=-impact`; an existing
    `impact` annotation is kept, so that the sort and the column agree); with
    `inputs`, also what it is computed from that the row does not hold: `episode_start`,
    `days_open` and `relapse_count`."""
    now = now or timezone.now()
    if "impact" not in tests.query.annotations:
        tests = tests.annotate(impact=impact(now=now))
    if inputs:
        tests = tests.annotate(
            episode_start=_open_episode_start(),
            days_open=days_open(now=now, episode_start=_open_episode_start()),
            relapse_count=_relapse_count(),
        )
    return tests


FIX_FIRST_SHOWN = 10


def fix_first(
    *, repository: int | None = None, limit: int = FIX_FIRST_SHOWN, now: datetime | None = None
) -> list[TestCase]:
    """The FLAKY and BROKEN tests with the highest impact, as `sort=-impact` orders them
    (ties by name, then id), with their score's inputs, owners and repository: two
    queries."""
    now = now or timezone.now()
    tests = sort_test_cases(
        with_impact(
            test_cases().filter(in_repository("repository", repository), status__in=_SCORING), now=now
        ),
        "-impact",
    )
    # Ranked narrow (ids only), then the rows of the first ones, with their inputs.
    return list(with_impact(tests.filter(pk__in=tests.values("pk")[:limit]), now=now, inputs=True))


def status_history(test_case: TestCase, *, limit: int = 200) -> QuerySet[StatusChange]:
    return test_case.status_changes.order_by("-occurred_at", "-id")[:limit]


@dataclass(frozen=True)
class Episode:
    started_at: datetime
    ended_at: datetime | None
    relapse: bool
    # False: first seen already FLAKY or BROKEN, so it started at `started_at` or earlier
    # (docs/metrics.md): shown "since at least", its duration a lower bound.
    start_known: bool = True


def episodes(test_case: TestCase) -> list[Episode]:
    """A test's episodes, oldest first (one query; kept by events.rollups)."""
    return [
        Episode(
            started_at=e.started_at,
            ended_at=e.ended_at,
            relapse=is_relapse(e.started_at, previous_end=e.previous_end),
            start_known=e.start_known,
        )
        for e in test_case.episodes.order_by("started_at")
    ]


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


# ---- one test's page


def test_case_for_page() -> QuerySet[TestCase]:
    """Tests with what the detail page's header shows (look one up by pk)."""
    return TestCase.objects.select_related("repository", "assignee")


def test_case_ids() -> QuerySet[TestCase]:
    """Tests, their pk only: to check that one exists."""
    return TestCase.objects.only("pk")


def owners_of(test_case: TestCase) -> list[Owner]:
    return list(test_case.owners.order_by("key"))


def monitor_events_of(test_case: TestCase, *, limit: int) -> list[MonitorEvent]:
    """The test's newest monitor events, with their monitor."""
    return list(test_case.monitor_events.select_related("monitor").order_by("-occurred_at", "-id")[:limit])


def investigations_of(test_case: TestCase, *, limit: int) -> list[Investigation]:
    """The test's newest investigations, with their facts and verdict (and its author)."""
    return list(
        test_case.investigations.select_related("verdict__by")
        .prefetch_related("facts")
        .order_by("-occurred_at", "id")[:limit]
    )


def quarantine_changes_of(test_case: TestCase, *, limit: int) -> QuerySet[QuarantineChange]:
    return test_case.quarantine_changes.order_by("-occurred_at", "-id")[:limit]


def deliveries_of(test_case: TestCase) -> QuerySet[Delivery]:
    """The deliveries whose projection touched this test, newest received first.

    One IN over a UNION of the four history tables' delivery ids for this test (each an
    index read): an OR of four IN subqueries made PostgreSQL scan every delivery."""
    touched = (
        StatusChange.objects.filter(test_case=test_case)
        .values("delivery_id")
        .order_by()
        .union(
            *(
                model.objects.filter(test_case=test_case).values("delivery_id").order_by()
                for model in (MonitorEvent, Investigation, QuarantineChange)
            ),
            all=True,
        )
    )
    return (
        Delivery.objects.filter(id__in=touched)
        .only("svix_id", "event_type", "outcome", "occurred_at", "received_at")
        .order_by("-received_at", "-id")
    )


def history_counts(test_case: TestCase, *, deliveries: QuerySet[Delivery]) -> dict[str, int]:
    """How many of each kind of history row the test has (the page shows the newest)."""
    return {
        "monitor_events": test_case.monitor_events.count(),
        "investigations": test_case.investigations.count(),
        "quarantine_changes": test_case.quarantine_changes.count(),
        "status_changes": test_case.status_changes.count(),
        "deliveries": deliveries.count(),
    }


def no_test_yet() -> bool:
    """Whether no test is known at all (no delivery from Trunk was applied yet): pages
    then show how to connect Trunk. One cheap query; templates call it only when empty."""
    return not TestCase.objects.exists()
