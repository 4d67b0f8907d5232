"""The query functions against a known history (METRICS.md definitions)."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.selectors import investigations as investigations_selectors
from dashboard.selectors import monitors as monitors_selectors
from dashboard.selectors import owners as owners_selectors
from dashboard.selectors import status as status_selectors
from dashboard.selectors import tests as tests_selectors
from dashboard.selectors.tests import Interval
from events import metrics
from events.demo import payloads
from events.metrics import Period
from events.models import TestCase
from tests.events.factories import MONITOR, at, deliver, fake_test

pytestmark = pytest.mark.django_db
MONITOR_B = uuid.UUID(int=999)


def change(test, when, previous, new, msg_id=None, monitor_type="pass_on_retry"):
    return deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type=monitor_type
        ),
        msg_id=msg_id,
    )


def seen(test, when):
    """Any event that makes the test known without a status change."""
    return deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=MONITOR_B, monitor_type="failure_rate", status="resolved"
        )
    )


@pytest.fixture
def history():
    """Test 1 (@acme/web): H->F day 2, F->B day 4, B->H day 6, H->F day 20 (relapse, open).
    Test 2 (@acme/web, @acme/api): H->F day 3, F->H day 13.
    Test 3 (no owner): seen day 1, never changed.
    Test 4 (@Acme/Web): first change F->H on day 5 (was FLAKY before; no start marker)."""
    t1 = fake_test(1, codeowners=["@acme/web"])
    t2 = fake_test(2, codeowners=["@acme/web", "@acme/api"])
    t3 = fake_test(3, codeowners=[])
    t4 = fake_test(4, codeowners=["@Acme/Web"])
    seen(t1, at(1))
    change(t1, at(2), "HEALTHY", "FLAKY")
    change(t1, at(4), "FLAKY", "BROKEN")
    change(t1, at(6), "BROKEN", "HEALTHY")
    change(t1, at(20), "HEALTHY", "FLAKY")
    change(t2, at(3), "HEALTHY", "FLAKY")
    change(t2, at(13), "FLAKY", "HEALTHY")
    seen(t3, at(1))
    seen(t4, at(1, 5))
    change(t4, at(5), "FLAKY", "HEALTHY")
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4}


NOW = datetime(2026, 5, 25, tzinfo=UTC)


def test_status_timeline_intervals(history):
    t1 = TestCase.objects.get(pk=history["t1"].id)
    assert tests_selectors.status_timeline(t1) == [
        Interval("HEALTHY", at(1), at(2)),
        Interval("FLAKY", at(2), at(4)),
        Interval("BROKEN", at(4), at(6)),
        Interval("HEALTHY", at(6), at(20)),
        Interval("FLAKY", at(20), None),
    ]
    t4 = TestCase.objects.get(pk=history["t4"].id)
    assert tests_selectors.status_timeline(t4) == [
        Interval("FLAKY", at(1, 5), at(5)),
        Interval("HEALTHY", at(5), None),
    ]
    t3 = TestCase.objects.get(pk=history["t3"].id)
    assert tests_selectors.status_timeline(t3) == [Interval("HEALTHY", at(1), None)]


def test_episodes_and_relapse(history):
    t1 = TestCase.objects.get(pk=history["t1"].id)
    eps = tests_selectors.episodes(t1)
    assert [(e.started_at, e.ended_at, e.relapse) for e in eps] == [
        (at(2), at(6), False),
        (at(20), None, True),
    ]


def test_status_counts_at_a_time(history):
    # Day 3, 12:00: t1 FLAKY, t2 FLAKY, t3 HEALTHY, t4 FLAKY (before its first change).
    assert status_selectors.status_counts_at(at(3, 12)) == {"HEALTHY": 1, "FLAKY": 3, "BROKEN": 0}
    assert status_selectors.status_counts_at(at(4, 12)) == {"HEALTHY": 1, "FLAKY": 2, "BROKEN": 1}
    # Before anything was known.
    assert status_selectors.status_counts_at(datetime(2026, 4, 1, tzinfo=UTC)) == {
        "HEALTHY": 0,
        "FLAKY": 0,
        "BROKEN": 0,
    }


def status_at_by_definition(moment: datetime) -> dict[str, int]:
    """METRICS "Status at time t", straight from the status changes, test by test."""
    counts = {"HEALTHY": 0, "FLAKY": 0, "BROKEN": 0}
    for test in TestCase.objects.filter(first_event_at__lte=moment):
        changes = list(test.status_changes.order_by("occurred_at", "delivery__svix_id"))
        past = [c for c in changes if c.occurred_at <= moment]
        status = past[-1].new_status if past else (changes[0].previous_status if changes else "HEALTHY")
        counts[status] += 1
    return counts


def test_status_counts_at_any_moment_match_the_definition(history):
    # Midnights, change times, just before them, and hours in between: the day-delta
    # path (unfiltered) and the interval path (one repository) must agree with it.
    moments = {at(1) - timedelta(hours=1)} | {at(day, hour) for day in range(1, 23) for hour in (0, 5, 12)}
    moments |= {m - timedelta(milliseconds=1) for m in list(moments)}
    for moment in sorted(moments):
        expected = status_at_by_definition(moment)
        assert status_selectors.status_counts_at(moment) == expected, moment
        repository = TestCase.objects.values_list("repository", flat=True).first()
        assert status_selectors.status_counts_at(moment, repository=repository) == expected, moment


def test_status_summary_change_over_period(history):
    summary = status_selectors.status_summary(period=Period("7d", NOW))  # start = day 18
    # Now: t1 FLAKY; t2, t3, t4 HEALTHY. At day 18: all four HEALTHY.
    assert summary["status"]["FLAKY"] == {"now": 1, "change": 1}
    assert summary["status"]["HEALTHY"] == {"now": 3, "change": -1}
    assert summary["total"] == 4 and summary["quarantined"] == 0


def test_status_trend_matches_status_at_end_of_each_day(history):
    series = status_selectors.status_trend(period=Period("30d", NOW))
    assert series[0]["day"] == date(2026, 4, 25) and series[-1]["day"] == date(2026, 5, 25)
    by_day = {row["day"]: row for row in series}
    for row in series:
        expected = status_selectors.status_counts_at(
            metrics.end_of_day(row["day"]) - timedelta(microseconds=1)
        )
        assert {k: row[k] for k in expected} == expected, row["day"]
    assert by_day[date(2026, 5, 4)]["BROKEN"] == 1


def test_transitions_per_day(history):
    rows = status_selectors.transitions_per_day(period=Period("all", NOW))
    assert {(r["day"], r["new_status"], r["count"]) for r in rows} >= {
        (date(2026, 5, 2), "FLAKY", 1),
        (date(2026, 5, 4), "BROKEN", 1),
        (date(2026, 5, 6), "HEALTHY", 1),
    }
    assert sum(r["count"] for r in rows) == 7


def test_owner_stats(history):
    rows = {r["owner"]: r for r in owners_selectors.owner_stats(period=Period("all", NOW))}
    assert set(rows) == {"@acme/web", "@acme/api", "(no owner)"}  # @Acme/Web is @acme/web
    web = rows["@acme/web"]
    assert (web["tests"], web["flaky"], web["broken"]) == (3, 1, 0)
    # Closed episodes of @acme/web tests: t1 day 2->6 (4 days), t2 day 3->13 (10 days),
    # t4 flaky when first seen (day 1 05:00) -> day 5: its start is unknown, so it stays out
    # of the median (METRICS.md): the median of 4 and 10 days.
    assert web["median_time_to_fix"] == timedelta(days=7)
    assert web["oldest_open_since"] == at(20)
    assert web["relapses"] == 1
    api = rows["@acme/api"]
    assert (api["tests"], api["median_time_to_fix"], api["relapses"]) == (1, timedelta(days=10), 0)
    assert rows["(no owner)"]["tests"] == 1 and rows["(no owner)"]["median_time_to_fix"] is None


def test_owner_stats_period_limits_fixes_to_those_ending_inside(history):
    rows = {
        r["owner"]: r
        for r in owners_selectors.owner_stats(period=Period("7d", datetime(2026, 5, 15, tzinfo=UTC)))
    }
    # Period day 8..15: only t2's fix (ended day 13) counts.
    assert rows["@acme/web"]["median_time_to_fix"] == timedelta(days=10)
    assert rows["@acme/web"]["relapses"] == 0


def test_median_time_to_fix_overall(history):
    # t1's 4 days and t2's 10; t4's start is unknown (first seen FLAKY), so it is left out.
    assert status_selectors.median_time_to_fix(period=Period("all", NOW)) == timedelta(days=7)
    assert status_selectors.median_time_to_fix(period=Period("7d", NOW)) is None


def test_monitor_summary(history):
    t1 = history["t1"]
    for day, status in [(2, "active"), (6, "resolved"), (19, "active")]:
        deliver(
            payloads.monitor_status_changed(
                t1, at=at(day), monitor_id=MONITOR, monitor_type="pass_on_retry", status=status
            )
        )
    summary = monitors_selectors.monitor_summary(period=Period("all", NOW))
    assert summary["median_time_to_resolve"] == {"pass_on_retry": timedelta(days=4)}
    assert [(s.monitor_id, s.test_case_id) for s in summary["active_now"]] == [(MONITOR, t1.id)]
    assert summary["flapping"][0]["activations"] == 2
    assert sum(a["count"] for a in summary["activations"]) == 2
    # A repeated `active` does not restart the interval: from the first one to the resolve.
    t2 = history["t2"]
    for day, status in [(3, "active"), (8, "active"), (13, "resolved")]:
        deliver(
            payloads.monitor_status_changed(
                t2, at=at(day), monitor_id=MONITOR, monitor_type="pass_on_retry", status=status
            )
        )
    summary = monitors_selectors.monitor_summary(period=Period("all", NOW))
    assert summary["median_time_to_resolve"] == {"pass_on_retry": timedelta(days=7)}  # median of 4 and 10


def test_investigation_summary_bins_and_bands():
    t = fake_test(9)
    for i, confidence in enumerate([0.0, 0.05, 0.5, 0.79, 0.8, 1.0]):
        deliver(
            payloads.investigation_completed(
                t,
                at=at(2 + i),
                investigation_id=uuid.UUID(int=500 + i),
                confidence=confidence,
                markdown_summary="",
                failure_message="",
                facts=[
                    {"fact_type": "CI_LOGS", "content": "", "confidence": 0.5},
                    {"fact_type": "GIT_BLAME", "content": "", "confidence": 1.0},
                ],
            )
        )
    summary = investigations_selectors.investigation_summary(period=Period("all", NOW))
    assert summary["histogram"] == [2, 0, 0, 0, 0, 1, 0, 1, 1, 1]
    assert summary["total"] == 6
    assert {f["fact_type"]: (f["count"], f["mean_confidence"]) for f in summary["facts_by_type"]} == {
        "CI_LOGS": (6, 0.5),
        "GIT_BLAME": (6, 1.0),
    }
    assert [metrics.band_of(c) for c in (0.49, 0.5, 0.79, 0.8, 1.0)] == [
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_filter_and_sort_test_cases(history):
    base = tests_selectors.test_cases()
    names = lambda qs: [t.name for t in qs]  # noqa: E731
    assert names(tests_selectors.filter_test_cases(base, owner="@ACME/WEB", sort="name")) == [
        "test_case_1",
        "test_case_2",
        "test_case_4",
    ]
    assert names(tests_selectors.filter_test_cases(base, owner="none")) == ["test_case_3"]
    assert names(tests_selectors.filter_test_cases(base, status="flaky")) == ["test_case_1"]
    assert names(tests_selectors.filter_test_cases(base, q="SUITE/TEST_2")) == ["test_case_2"]
    assert names(tests_selectors.filter_test_cases(base, sort="-status"))[0] == "test_case_1"
    # Never-changed tests sort last by -status_since, first by status_since.
    assert names(tests_selectors.filter_test_cases(base, sort="-status_since")) == [
        "test_case_1",
        "test_case_2",
        "test_case_4",
        "test_case_3",
    ]
    assert names(tests_selectors.filter_test_cases(base, sort="status_since"))[0] == "test_case_3"
    assert names(tests_selectors.filter_test_cases(base, sort="bogus")) == names(
        tests_selectors.filter_test_cases(base)
    )
    assert tests_selectors.filter_test_cases(base, quarantined=True).count() == 0


def test_problem_tests_by_owner_agrees_with_owner_stats(history):
    def counts(rows):
        return {r["owner"]: (r["flaky"], r["broken"]) for r in rows if r["flaky"] or r["broken"]}

    full = counts(owners_selectors.owner_stats(period=Period("all", NOW)))
    assert counts(owners_selectors.problem_tests_by_owner()) == full == {"@acme/web": (1, 0)}
    # BROKEN counts too (the overview's top owners once counted FLAKY only).
    change(history["t3"], at(22), "HEALTHY", "BROKEN")
    full = counts(owners_selectors.owner_stats(period=Period("all", NOW)))
    assert full == {"@acme/web": (1, 0), "(no owner)": (0, 1)}
    assert counts(owners_selectors.problem_tests_by_owner()) == full
    repository = TestCase.objects.values_list("repository", flat=True).first()
    assert counts(owners_selectors.problem_tests_by_owner(repository=repository)) == full


def test_investigation_facts_over_all_history_leave_out_future_investigations():
    """`all` reads the facts through an anti-join on future investigations (no hash of
    every investigation): the result must equal the period filter's, with and without a
    repository, and an investigation later than `now` must stay out."""
    t = fake_test(9)
    for i, (when, fact_type) in enumerate([(at(3), "CI_LOGS"), (at(4), "GIT_BLAME"), (at(28), "FUTURE")]):
        deliver(
            payloads.investigation_completed(
                t,
                at=when,
                investigation_id=uuid.UUID(int=600 + i),
                confidence=0.9,
                markdown_summary="",
                failure_message="",
                facts=[{"fact_type": fact_type, "content": "", "confidence": 0.25 * (i + 1)}],
            )
        )
    repository = TestCase.objects.get(pk=t.id).repository_id
    expected = [
        {"fact_type": "CI_LOGS", "count": 1, "mean_confidence": 0.25},
        {"fact_type": "GIT_BLAME", "count": 1, "mean_confidence": 0.5},
    ]
    assert (
        investigations_selectors.investigation_summary(period=Period("all", NOW))["facts_by_type"] == expected
    )
    all_in_repository = investigations_selectors.investigation_summary(
        period=Period("all", NOW), repository=repository
    )
    assert all_in_repository["facts_by_type"] == expected
    assert investigations_selectors.investigation_summary(period=Period("all", NOW))["total"] == 2


def test_investigation_list_counts_facts_per_row_without_grouping_the_period():
    """facts_count is a subquery: the paginator's COUNT and the page's SELECT never
    GROUP BY investigations over a join with the facts (that aggregated the whole
    period before the page's LIMIT: 600 ms at L for `all`)."""
    t = fake_test(9)
    for i in range(3):
        deliver(
            payloads.investigation_completed(
                t,
                at=at(2 + i),
                investigation_id=uuid.UUID(int=700 + i),
                confidence=0.5,
                markdown_summary="",
                failure_message="",
                facts=[{"fact_type": "CI_LOGS", "content": "", "confidence": None}] * i,
            )
        )
    items = investigations_selectors.investigation_list(period=Period("all", NOW))
    with CaptureQueriesContext(connection) as ctx:
        page = Paginator(items, 2).get_page(1)
        assert page.paginator.count == 3
        assert [i.facts_count for i in page] == [2, 1]
    count_sql, page_sql = ctx.captured_queries[0]["sql"], ctx.captured_queries[1]["sql"]
    assert "investigationfact" not in count_sql
    assert 'GROUP BY "events_investigation"' not in page_sql


@pytest.mark.parametrize("period", ["7d", "30d", "all"])
def test_owner_stats_for_one_owner_is_that_owners_row_of_all(history, period):
    everyone = owners_selectors.owner_stats(period=Period(period, NOW))
    assert {row["owner_key"] for row in everyone} == {"@acme/web", "@acme/api", ""}
    for row in everyone:
        assert owners_selectors.owner_stats(period=Period(period, NOW), owner_key=row["owner_key"]) == [row]
    assert owners_selectors.owner_stats(period=Period(period, NOW), owner_key="@nobody") == []


def test_status_values_sort_in_severity_order():
    # sort_test_cases orders "most severe first" by the values A to Z (an index order).
    assert tests_selectors.MOST_SEVERE_FIRST == ["BROKEN", "FLAKY", "HEALTHY"]


def test_owner_test_count_from_the_rollups(history):
    assert owners_selectors.owner_test_count("@acme/web") == 3
    assert [
        owners_selectors.owner_test_count("@acme/web", status=s) for s in ("BROKEN", "FLAKY", "HEALTHY")
    ] == [
        0,
        1,
        2,
    ]
    assert owners_selectors.owner_test_count("") == 1 and owners_selectors.owner_test_count("@nobody") == 0
