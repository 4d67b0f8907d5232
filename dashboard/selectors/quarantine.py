"""The quarantine ledger (docs/metrics.md, "Quarantine"): the tests quarantined now, how
long each has been, who quarantined it and why, and which are ready to release; the
overview's and the API's quarantine figures.

Quarantined since is kept on the test (TestCase.quarantined_since, events/rollups/
quarantine.py), so every figure here is a read of the quarantined tests (a partial index
holds them in quarantined_since order), never of their history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from events.metrics import READY_TO_RELEASE_HEALTHY
from events.models import MonitorState, MonitorStatus, QuarantineChange, Status, TestCase
from events.orm import related_count

from .common import owned_by
from .tests import test_cases


def _active_monitor() -> Exists:
    return Exists(MonitorState.objects.filter(test_case=OuterRef("pk"), status=MonitorStatus.ACTIVE))


def ready_to_release(*, now: datetime) -> Q:
    """Quarantined now, HEALTHY for at least READY_TO_RELEASE_HEALTHY (a test whose status
    never changed has been HEALTHY since its first event), and no active monitor."""
    cutoff = now - READY_TO_RELEASE_HEALTHY
    healthy_long_enough = Q(status_since__lte=cutoff) | Q(
        status_since__isnull=True, first_event_at__lte=cutoff
    )
    return Q(quarantined=True, status=Status.HEALTHY) & healthy_long_enough & Q(~_active_monitor())


def quarantined(
    tests: QuerySet[TestCase] | None = None,
    *,
    repository: int | None = None,
    owner: str | None = None,
    ready: bool = False,
    now: datetime,
) -> QuerySet[TestCase]:
    """The tests quarantined now, in `repository`, of `owner` (a name in any case, or
    "none"), only the ready to release ones with `ready`."""
    tests = (TestCase.objects.all() if tests is None else tests).filter(quarantined=True)
    if repository:
        tests = tests.filter(repository=repository)
    if owner:
        tests = tests.filter(owned_by(owner))
    if ready:
        tests = tests.filter(ready_to_release(now=now))
    return tests


# `sort` values of the ledger and the field each orders by ("-" in front: descending).
SORTS: dict[str, str | Coalesce] = {
    "since": "quarantined_since",  # ascending: the oldest quarantine (the largest age) first
    "name": "name",
    # A status that never changed has held since the test's first event.
    "status_since": Coalesce("status_since", "first_event_at"),
    "monitors": "active_monitors",
}
DEFAULT_SORT = "since"


def ledger(
    *,
    repository: int | None = None,
    owner: str | None = None,
    ready: bool = False,
    sort: str | None = None,
    now: datetime,
) -> QuerySet[TestCase]:
    """The ledger's rows: quarantined tests with their repository and owners, the count of
    their active monitors (`active_monitors`) and the id of their latest quarantine change
    (`latest_change_id`: read for a page's rows with `latest_changes`). Sorted by `sort`
    (SORTS, "-" for descending; ties by name, then id); by default the oldest quarantine first."""
    tests = quarantined(test_cases(), repository=repository, owner=owner, ready=ready, now=now).annotate(
        active_monitors=related_count(MonitorState, "test_case", status=MonitorStatus.ACTIVE),
        latest_change_id=Subquery(
            QuarantineChange.objects.filter(test_case=OuterRef("pk"))
            .order_by("-occurred_at", "-id")
            .values("id")[:1]
        ),
    )
    sort = sort if sort and sort.removeprefix("-") in SORTS else DEFAULT_SORT
    key = SORTS[sort.removeprefix("-")]
    field = F(key) if isinstance(key, str) else key
    # A quarantined test without a since (none known) sorts as the newest.
    primary = field.desc(nulls_first=True) if sort.startswith("-") else field.asc(nulls_last=True)
    return tests.order_by(primary, "name", "id")


def latest_changes(change_ids: Iterable[int | None]) -> dict[int, QuarantineChange]:
    """The quarantine changes of these ids (a page's `latest_change_id`s): one query."""
    ids = [pk for pk in change_ids if pk is not None]
    if not ids:
        return {}
    return QuarantineChange.objects.order_by().in_bulk(ids)


@dataclass(frozen=True)
class QuarantineSummary:
    quarantined: int
    median_age: timedelta | None  # None: no quarantined test with a known since
    ready_to_release: int

    @property
    def ready_days(self) -> int:
        """The days a test must have been HEALTHY to be ready to release (for the captions)."""
        return READY_TO_RELEASE_HEALTHY.days


def quarantine_summary(
    *, repository: int | None = None, owner: str | None = None, now: datetime
) -> QuarantineSummary:
    """Tests quarantined now, the median of their quarantine ages (now - quarantined
    since: the mean of the two middle ones for an even count) and how many are ready to
    release. Two queries (one when none is quarantined): the counts, then the middle one
    or two since values read at their offset in quarantined_since order (the median age
    is now minus the median since)."""
    tests = quarantined(repository=repository, owner=owner, now=now)
    counts = tests.aggregate(
        n_quarantined=Count("pk"),
        n_dated=Count("quarantined_since"),
        n_ready=Count("pk", filter=ready_to_release(now=now)),
    )
    median_age: timedelta | None = None
    n = counts["n_dated"]
    if n:
        offset = (n - 1) // 2
        middle = [
            since
            for since in tests.filter(quarantined_since__isnull=False)
            .order_by("quarantined_since")
            .values_list("quarantined_since", flat=True)[offset : offset + 2 - n % 2]
            if since is not None  # always (filtered above): for the type checker
        ]
        median_since = middle[0] + (middle[-1] - middle[0]) / 2
        # An event time a little ahead of our clock is quarantined for no time, not less.
        median_age = max(now - median_since, timedelta(0))
    return QuarantineSummary(
        quarantined=counts["n_quarantined"], median_age=median_age, ready_to_release=counts["n_ready"]
    )
