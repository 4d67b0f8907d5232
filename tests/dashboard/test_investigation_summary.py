"""investigation_summary over all history reads the day rollups (InvestigationDay,
FactDayCount) and must give what the investigations and facts themselves give: the same
histogram, total, series and facts by type (means up to float rounding), on every path
(all repositories and all history: the rollups; a repository, a shorter period, or an
investigation dated after now: the rows), in three queries."""

import uuid
from collections import defaultdict
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.selectors import investigations as investigations_selectors
from events.demo import payloads
from events.metrics import HISTOGRAM_BINS, PERIODS, Period
from events.models import FactDayCount, Investigation, InvestigationDay, InvestigationFact, Repository
from tests.conftest import DEMO_NOW
from tests.events.factories import at, deliver, fake_test

pytestmark = pytest.mark.django_db

NOWS = [DEMO_NOW, DEMO_NOW - timedelta(hours=7, minutes=13), DEMO_NOW - timedelta(days=9, hours=5)]


def reference(period: Period, repository: int | None = None) -> dict:
    """METRICS "Investigations" over the period, in Python from every row."""
    inside = {}
    for pk, occurred_at, confidence, repo in Investigation.objects.values_list(
        "id", "occurred_at", "confidence", "test_case__repository"
    ):
        in_period = occurred_at <= period.now and (period.start is None or occurred_at > period.start)
        if in_period and (repository is None or repo == repository):
            inside[pk] = (occurred_at.astimezone(UTC).date(), confidence)
    histogram = [
        sum(1 for _, c in inside.values() if c >= lo and (hi is None or c < hi)) for lo, hi in HISTOGRAM_BINS
    ]
    days: dict = defaultdict(list)
    for day, confidence in inside.values():
        days[day].append(confidence)
    facts: dict = defaultdict(list)
    for investigation_id, fact_type, confidence in InvestigationFact.objects.values_list(
        "investigation_id", "fact_type", "confidence"
    ):
        if investigation_id in inside:
            facts[fact_type].append(confidence)
    rated = {t: [c for c in cs if c is not None] for t, cs in facts.items()}
    return {
        "histogram": histogram,
        "total": len(inside),
        "over_time": [
            {"day": day, "count": len(cs), "mean_confidence": pytest.approx(sum(cs) / len(cs))}
            for day, cs in sorted(days.items())
        ],
        "facts_by_type": sorted(
            (
                {
                    "fact_type": t,
                    "count": len(cs),
                    "mean_confidence": pytest.approx(sum(rated[t]) / len(rated[t])) if rated[t] else None,
                }
                for t, cs in facts.items()
            ),
            key=lambda row: (-row["count"], row["fact_type"]),
        ),
    }


def reads_rollups(period: Period, repository: int | None = None) -> bool:
    with CaptureQueriesContext(connection) as captured:
        investigations_selectors.investigation_summary(period=period, repository=repository)
    return any(InvestigationDay._meta.db_table in q["sql"] for q in captured)


def test_every_path_equals_the_rows(load_demo):
    load_demo(tests=40, days=60)
    repositories = list(Repository.objects.values_list("pk", flat=True))
    assert InvestigationDay.objects.count() > 10 and len(repositories) > 1
    for now in NOWS:
        for name in PERIODS:
            period = Period(name, now)
            assert investigations_selectors.investigation_summary(period=period) == reference(period), (
                name,
                now,
            )
            for repository in repositories:
                summary = investigations_selectors.investigation_summary(period=period, repository=repository)
                assert summary == reference(period, repository), (name, now, repository)
    # Only "all" at the demo's end (no investigation after now) reads the rollups.
    assert reads_rollups(Period("all", DEMO_NOW))
    assert not reads_rollups(Period("all", NOWS[2]))
    assert not reads_rollups(Period("all", DEMO_NOW), repositories[0])
    assert not reads_rollups(Period("90d", DEMO_NOW))
    assert reference(Period("all", DEMO_NOW))["facts_by_type"]


def investigation(n: int, when, confidence: float, facts) -> None:
    deliver(
        payloads.investigation_completed(
            fake_test(n % 3),
            at=when,
            investigation_id=uuid.UUID(int=900 + n),
            confidence=confidence,
            markdown_summary="",
            failure_message="",
            facts=[{"fact_type": t, "content": "", "confidence": c} for t, c in facts],
        )
    )


def test_all_history_from_the_rollups_and_the_fallback_for_a_future_investigation():
    investigation(1, at(3, 1), 0.0, [("CI_LOGS", 0.5), ("GIT_BLAME", None)])
    investigation(2, at(3, 23), 0.1, [("CI_LOGS", 1.0)])
    investigation(3, at(4), 1.0, [])
    investigation(4, at(4, 5), 0.9, [("GIT_BLAME", None)])
    now = at(10)
    expected = {
        "histogram": [1, 1, 0, 0, 0, 0, 0, 0, 0, 2],
        "total": 4,
        "over_time": [
            {"day": at(3).date(), "count": 2, "mean_confidence": pytest.approx(0.05)},
            {"day": at(4).date(), "count": 2, "mean_confidence": pytest.approx(0.95)},
        ],
        "facts_by_type": [
            {"fact_type": "CI_LOGS", "count": 2, "mean_confidence": 0.75},
            {"fact_type": "GIT_BLAME", "count": 2, "mean_confidence": None},
        ],
    }
    assert reads_rollups(Period("all", now))
    assert (
        investigations_selectors.investigation_summary(period=Period("all", now))
        == expected
        == reference(Period("all", now))
    )
    # An investigation dated after now (clock skew, or a `now` in the past): the rollups
    # hold its day, so the summary reads the rows, which leave it out.
    investigation(5, at(12), 0.55, [("CI_LOGS", 0.0), ("FUTURE", 0.3)])
    assert not reads_rollups(Period("all", now))
    assert investigations_selectors.investigation_summary(period=Period("all", now)) == expected
    later = Period("all", at(13))
    assert reads_rollups(later)
    assert investigations_selectors.investigation_summary(period=later) == reference(later)
    assert investigations_selectors.investigation_summary(period=later)["total"] == 5


def test_no_investigations():
    period = Period("all", DEMO_NOW)
    empty = {"histogram": [0] * 10, "total": 0, "over_time": [], "facts_by_type": []}
    assert investigations_selectors.investigation_summary(period=period) == empty
    assert not FactDayCount.objects.exists()


def test_all_history_runs_three_queries_whatever_the_size(load_demo, django_assert_num_queries):
    # The probe for investigations after now, the days, the facts by type.
    load_demo(tests=8, days=10)
    with django_assert_num_queries(3):
        investigations_selectors.investigation_summary(period=Period("all", DEMO_NOW))
    load_demo(tests=30, days=60, seed=8)
    with django_assert_num_queries(3):
        summary = investigations_selectors.investigation_summary(period=Period("all", DEMO_NOW))
    assert summary == reference(Period("all", DEMO_NOW))
