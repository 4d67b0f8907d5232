"""Fixes that held (METRICS "Fixes that held"): verified, relapsed and pending fixes, the
fix verification rate and the relapse curve, on a history delivered through the receiver."""

import json
import re
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go
import pytest
from django.urls import reverse

from dashboard.charts.fixes import relapse_curve as relapse_curve_chart
from dashboard.selectors import fixes
from dashboard.views import fixes as views_fixes
from events.demo import payloads
from events.metrics import (
    LABELS,
    RELAPSE_CURVE_DAYS,
    RELAPSE_CURVE_MARKS,
    Period,
    fix_outcome,
    kaplan_meier,
)
from events.models import Episode, Owner, TestCase
from tests.conftest import DEMO_NOW
from tests.events.factories import MONITOR, deliver, fake_test

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=100)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def change(test, when, previous, new):
    return deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


def episode(test, start, end=None):
    change(test, start, "HEALTHY", "FLAKY")
    if end is not None:
        change(test, end, "FLAKY", "HEALTHY")


@pytest.fixture
def history():
    """Seven fixes (closed episodes), NOW = day 100:

    - tA (@acme/web): day 0-10, next at 24 (exactly 14 days: relapsed); 24-30, next at 80
      (verified); 80-90, none (pending: 10 days).
    - tB (@acme/web and @acme/api): 20-40, next 14 days and 1 hour later (verified);
      54-86, none, ended exactly 14 days before NOW (verified).
    - tC (@acme/api): 60-75, next at 80 (relapsed); 80- open.
    - tD (no owner): 1-2, none (verified; observed 98 days).
    - tE (no owner): 99- open (no fix).
    """
    tests = {
        "tA": fake_test(1, codeowners=["@acme/web"]),
        "tB": fake_test(2, codeowners=["@acme/web", "@Acme/API"]),
        "tC": fake_test(3, codeowners=["@acme/api"]),
        "tD": fake_test(4, codeowners=[]),
        "tE": fake_test(5, codeowners=[]),
    }
    tA, tB, tC, tD, tE = tests.values()
    episode(tA, day(0), day(10))
    episode(tA, day(24), day(30))
    episode(tA, day(80), day(90))
    episode(tB, day(20), day(40))
    episode(tB, day(54 + 1 / 24), day(86))
    episode(tC, day(60), day(75))
    episode(tC, day(80))
    episode(tD, day(1), day(2))
    episode(tE, day(99))
    return {name: TestCase.objects.get(pk=test.id) for name, test in tests.items()}


def counts(verified, relapsed, pending):
    rate = verified / (verified + relapsed) if verified + relapsed else None
    return {"verified": verified, "relapsed": relapsed, "pending": pending, "verification_rate": rate}


def test_the_history_is_what_the_fixture_says(history):
    closed = Episode.objects.filter(ended_at__isnull=False)
    outcomes = sorted(
        (
            e.test_case.name,
            e.ended_at,
            fix_outcome(ended_at=e.ended_at, next_started_at=e.next_started_at, now=NOW),
        )
        for e in closed.select_related("test_case")
    )
    assert [(name, (end - T0).days, outcome) for name, end, outcome in outcomes] == [
        ("test_case_1", 10, "relapsed"),
        ("test_case_1", 30, "verified"),
        ("test_case_1", 90, "pending"),
        ("test_case_2", 40, "verified"),
        ("test_case_2", 86, "verified"),
        ("test_case_3", 75, "relapsed"),
        ("test_case_4", 2, "verified"),
    ]


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("all", counts(4, 2, 1)),
        # (day 10, day 100]: tA's first fix (ended day 10, the start excluded) and tD's are out.
        ("90d", counts(3, 1, 1)),
        # (day 70, day 100]: tA's pending fix, tB's second (exactly 14 days: verified), tC's.
        ("30d", counts(1, 1, 1)),
        ("7d", counts(0, 0, 0)),
    ],
)
def test_fix_counts_over_a_period(history, period, expected):
    assert fixes.fix_counts(period=Period(period, NOW)) == expected


def test_fix_counts_match_fix_outcome_one_by_one(history):
    """The SQL says what events.metrics.fix_outcome says, for every fix and several nows
    (around each 14-day boundary)."""
    closed = list(Episode.objects.filter(ended_at__isnull=False))
    for now in (NOW, day(24), day(54), day(54 + 1 / 24), day(86), day(100) - timedelta(seconds=1)):
        outcomes = [
            fix_outcome(ended_at=e.ended_at, next_started_at=e.next_started_at, now=now)
            for e in closed
            if e.ended_at <= now
        ]
        got = fixes.fix_counts(period=Period("all", now))
        assert (got["verified"], got["relapsed"], got["pending"]) == (
            outcomes.count("verified"),
            outcomes.count("relapsed"),
            outcomes.count("pending"),
        ), now


def test_fix_counts_per_test_owner_and_repository(history):
    period = Period("all", NOW)
    assert fixes.fix_counts(period=period, test_case=history["tA"]) == counts(1, 1, 1)
    assert fixes.fix_counts(period=period, test_case=history["tE"]) == counts(0, 0, 0)
    assert fixes.fix_counts(period=period, owner_key="@acme/web") == counts(3, 1, 1)
    assert fixes.fix_counts(period=period, owner_key="@acme/api") == counts(2, 1, 0)
    assert fixes.fix_counts(period=period, owner_key="") == counts(1, 0, 0)
    assert fixes.fix_counts(period=period, repository=history["tA"].repository_id) == counts(4, 2, 1)
    assert fixes.fix_counts(period=period, repository=10_000) == counts(0, 0, 0)


def test_fix_counts_by_owner_count_a_test_for_each_owner(history):
    by_owner = fixes.fix_counts_by_owner(period=Period("all", NOW))
    assert by_owner == {
        "@acme/web": counts(3, 1, 1),
        "@acme/api": counts(2, 1, 0),
        "": counts(1, 0, 0),
    }
    assert fixes.fix_counts_by_owner(period=Period("30d", NOW)) == {
        "@acme/web": counts(1, 0, 1),
        "@acme/api": counts(1, 1, 0),
    }
    rows = [{"owner_key": "@acme/web"}, {"owner_key": "@nobody"}]
    fixes.attach_fix_counts(rows, by_owner)
    assert rows[0]["fixes"] == counts(3, 1, 1) and rows[1]["fixes"] == counts(0, 0, 0)


def test_fix_counts_take_one_query_from_the_episodes_two_from_the_tally(history, django_assert_num_queries):
    repository = history["tA"].repository_id
    with django_assert_num_queries(1):
        fixes.fix_counts(period=Period("30d", NOW), repository=repository, owner_key="")
    with django_assert_num_queries(1):
        fixes.fix_counts_by_owner(period=Period("all", NOW), repository=repository)
    with django_assert_num_queries(1):
        fixes.relapse_curve(now=NOW, repository=repository, owner_key="@acme/web")
    # All history and every repository: the tally and the recent episodes.
    with django_assert_num_queries(2):
        fixes.fix_counts(period=Period("all", NOW), owner_key="@acme/web")
    with django_assert_num_queries(2):
        fixes.fix_counts_by_owner(period=Period("all", NOW))
    with django_assert_num_queries(2):
        fixes.relapse_curve(now=NOW, owner_key="@acme/web")
    # An episode of the scope after `now` (tE started on day 99): the recent episodes
    # say so, and the episodes answer.
    with django_assert_num_queries(2):
        fixes.relapse_curve(now=day(98.5))


SCOPES = [None, "@acme/web", "@acme/api", "", "@nobody", "*"]


def test_the_tally_answers_as_the_episodes_at_every_now(history):
    """Over all history, the tally (every repository) and the episodes (the one
    repository every test of the fixture is in) give the same counts and curves, for
    nows before, during and long after the history (fixes pending, becoming verified,
    censored ones leaving the curve's range), per owner and overall."""
    repository = history["tA"].repository_id
    assert set(TestCase.objects.values_list("repository_id", flat=True)) == {repository}
    for hours in [*range(98 * 24, 102 * 24, 7), *range(102 * 24, 230 * 24, 53)]:
        now = T0 + timedelta(hours=hours)
        period = Period("all", now)
        assert fixes.fix_counts_by_owner(period=period) == fixes.fix_counts_by_owner(
            period=period, repository=repository
        ), now
        for owner_key in SCOPES:
            assert fixes.fix_counts(period=period, owner_key=owner_key) == fixes.fix_counts(
                period=period, repository=repository, owner_key=owner_key
            ), (now, owner_key)
            assert fixes.relapse_curve(now=now, owner_key=owner_key) == fixes.relapse_curve(
                now=now, repository=repository, owner_key=owner_key
            ), (now, owner_key)


def test_an_owner_named_like_a_wildcard_is_one_owner(history):
    """ "*" is an owner like any other (a hostile CODEOWNERS entry), not "every owner"."""
    assert fixes.fix_counts(period=Period("all", NOW), owner_key="*") == counts(0, 0, 0)
    episode(fake_test(9, codeowners=["*"]), day(3), day(5))
    assert fixes.fix_counts(period=Period("all", NOW), owner_key="*") == counts(1, 0, 0)


def test_the_tally_follows_fixes_that_move(history):
    """A late delivery that relapses a verified fix (tB's, ended day 86: a new episode on
    day 95) and an early one that opens tD's history before its fix: the tally is kept
    by the projection, and still answers as the episodes do."""
    now = day(120)
    repository = history["tA"].repository_id
    before = fixes.fix_counts(period=Period("all", now))
    change(fake_test(2, codeowners=["@acme/web", "@Acme/API"]), day(95), "HEALTHY", "BROKEN")
    after = fixes.fix_counts(period=Period("all", now))
    assert (after["verified"], after["relapsed"]) == (before["verified"] - 1, before["relapsed"] + 1)
    change(fake_test(4, codeowners=[]), day(0.5), "HEALTHY", "FLAKY")
    for owner_key in SCOPES:
        period = Period("all", now)
        assert fixes.fix_counts(period=period, owner_key=owner_key) == fixes.fix_counts(
            period=period, repository=repository, owner_key=owner_key
        ), owner_key
        assert fixes.relapse_curve(now=now, owner_key=owner_key) == fixes.relapse_curve(
            now=now, repository=repository, owner_key=owner_key
        ), owner_key


# ---------------------------------------------------------------- the relapse curve


def test_relapse_curve_against_a_hand_computation(history):
    """Seven fixes: events (new episode) after 5 (tC), 14 (tA: exactly 14 days; tB: 14
    days 1 hour) and 50 days (tA); censored after 10 (tA, pending), 14 (tB) and 98 days
    (tD, past the curve's end).

    d=0: 7 at risk, S=1. d=5: 7 at risk, 1 event: S = 6/7. d=10: 6 at risk, 1 censored.
    d=14: 5 at risk, 2 events: S = 6/7 x 3/5 = 18/35; then 2 at risk (2 events, 1
    censored). d=50: 2 at risk, 1 event: S = 9/35. Then 1 at risk (tD) to d=90."""
    curve = fixes.relapse_curve(now=NOW)
    assert len(curve) == RELAPSE_CURVE_DAYS + 1
    expected = {0: (1, 7), 4: (1, 7), 5: (6 / 7, 7), 7: (6 / 7, 6), 10: (6 / 7, 6), 13: (6 / 7, 5)}
    expected |= {14: (18 / 35, 5), 15: (18 / 35, 2), 30: (18 / 35, 2), 50: (9 / 35, 2), 51: (9 / 35, 1)}
    expected |= {60: (9 / 35, 1), 90: (9 / 35, 1)}
    for d, (surviving, at_risk) in expected.items():
        assert curve[d].day == d
        assert curve[d].surviving == pytest.approx(surviving), d
        assert curve[d].at_risk == at_risk, d
    marks = fixes.curve_marks(curve)
    assert [p.day for p in marks] == list(RELAPSE_CURVE_MARKS)
    assert [p.at_risk for p in marks] == [7, 6, 5, 2, 1, 1]


def test_relapse_curve_per_owner_and_empty(history):
    """@acme/web: tA's three fixes and tB's two: events at 14, 14, 50; censored at 10, 14."""
    web = fixes.relapse_curve(now=NOW, owner_key="@acme/web")
    assert [(p.surviving, p.at_risk) for p in (web[0], web[10], web[11], web[14], web[15], web[50])] == [
        (1, 5),
        (1, 5),
        (1, 4),
        (0.5, 4),
        (0.5, 1),
        (0, 1),
    ]
    nobody = fixes.relapse_curve(now=NOW, owner_key="")  # tD only: never relapsed, past day 90
    assert {p.surviving for p in nobody} == {1} and nobody[RELAPSE_CURVE_DAYS].at_risk == 1
    assert fixes.relapse_curve(now=NOW, owner_key="@nobody") == []
    assert fixes.relapse_curve(now=NOW, repository=10_000) == []


def test_relapse_curve_censors_at_now_a_next_start_not_seen_yet(history):
    """As of day 78, tA's second fix (ended day 30, next episode day 80) is censored after
    48 days, not an event; tC's fix (ended 75) is observed 3 days."""
    now = day(78)
    curve = fixes.relapse_curve(now=now)
    closed = Episode.objects.filter(ended_at__lte=now)
    events, censored = {}, {}
    for e in closed:
        if e.next_started_at is not None and e.next_started_at <= now:
            d = (e.next_started_at - e.ended_at).days
            events[d] = events.get(d, 0) + 1
        else:
            d = min((now - e.ended_at).days, RELAPSE_CURVE_DAYS + 1)
            censored[d] = censored.get(d, 0) + 1
    assert curve == kaplan_meier(events, censored)
    assert censored == {48: 1, 3: 1, 76: 1} and events == {14: 2}


def test_fix_counts_of_test_over_the_period_and_all_history(history, django_assert_num_queries):
    with django_assert_num_queries(1):
        inside, all_time = fixes.fix_counts_of_test(history["tA"], period=Period("30d", NOW))
    assert inside == counts(0, 0, 1) and all_time == counts(1, 1, 1)
    assert fixes.fix_counts_of_test(history["tE"], period=Period("all", NOW)) == (counts(0, 0, 0),) * 2


# ---------------------------------------------------------------- the pages
# The pages count as of the real now (months after the history): every fix is past its
# 14 days, so tA's last fix is verified there, not pending.


def curve_island(body: str) -> dict:
    match = re.search(
        r'<script id="relapse-curve-chart-data" type="application/json">(.*?)</script>', body, re.S
    )
    assert match, "no relapse curve"
    return json.loads(match.group(1))


def test_overview_shows_the_fixes_and_the_curve(reader_client, history):
    response = reader_client.get(reverse("dashboard:overview"), {"period": "all"})
    body = response.content.decode()
    assert response.context["fixes"]["counts"] == counts(5, 2, 0)
    assert "Fixes that held" in body and LABELS["verification_rate"] in body and "71%" in body
    figure = curve_island(body)
    assert [trace["name"] for trace in figure["data"]] == ["All tests"]
    trace = figure["data"][0]
    assert trace["line"]["shape"] == "hv" and trace["x"] == list(range(RELAPSE_CURVE_DAYS + 1))
    assert trace["y"][0] == 1 and trace["y"][5] == round(6 / 7, 4) and trace["customdata"][0] == 7
    # The table under the chart: the number observed at each mark.
    table = response.context["fixes"]["curve_table"]
    assert [p.day for p in table[0]["marks"]] == list(RELAPSE_CURVE_MARKS)


def test_owner_page_draws_its_curve_beside_the_overall_one(reader_client, history):
    web = Owner.objects.get(key="@acme/web")
    url = reverse("dashboard:codeowner-detail", args=[web.pk])
    response = reader_client.get(url, {"period": "all"})
    assert response.context["fixes"]["counts"] == counts(4, 1, 0)
    figure = curve_island(response.content.decode())
    assert [trace["name"] for trace in figure["data"]] == ["@acme/web", "All tests"]
    assert figure["data"][1]["line"]["dash"] == "dash"
    # As of now, its five fixes: new episodes after 14, 14 and 50 days, two followed past day 90.
    assert (figure["data"][0]["y"][14], figure["data"][0]["y"][50]) == (0.6, 0.4)

    # An owner whose tests were never fixed: no curve of its own, the overall one only.
    assert reader_client.get(reverse("dashboard:codeowners")).status_code == 200
    nobody = reader_client.get(reverse("dashboard:codeowner-detail", args=["none"]), {"period": "all"})
    assert nobody.context["fixes"]["counts"] == counts(1, 0, 0)
    assert [t["name"] for t in curve_island(nobody.content.decode())["data"]] == ["(no owner)", "All tests"]


def test_codeowners_table_has_the_fix_columns(reader_client, history):
    response = reader_client.get(reverse("dashboard:codeowners"), {"period": "all"})
    rows = {row["owner_key"]: row["fixes"] for row in response.context["owners"]}
    assert rows == {"@acme/web": counts(4, 1, 0), "@acme/api": counts(2, 1, 0), "": counts(1, 0, 0)}
    body = response.content.decode()
    assert LABELS["verification_rate"] in body
    web = re.search(r'<th scope="row"[^>]*><a [^>]*>@acme/web</a></th>(.*?)</tr>', body, re.S)
    assert web and '80%<div class="sub fix-split">4 held · 1 relapsed · 0 pending</div>' in web.group(1)


def test_test_page_shows_its_fixes(reader_client, history):
    url = history["tA"].get_absolute_url()
    response = reader_client.get(url, {"period": "all"})
    assert response.context["test_fixes"]["rows"] == [("All time", counts(2, 1, 0))]
    assert "Fixes that held" in response.content.decode()
    response = reader_client.get(url)  # the default period (30 days): nothing ended in it
    assert response.context["test_fixes"]["rows"] == [
        ("Last 30 days", counts(0, 0, 0)),
        ("All time", counts(2, 1, 0)),
    ]


def test_without_any_fix_the_pages_say_so(reader_client):
    fresh = fake_test(9)
    episode(fresh, day(1))  # open: no fix
    body = reader_client.get(reverse("dashboard:overview")).content.decode()
    assert "no fix to follow" in body and "relapse-curve-chart-data" not in body
    body = reader_client.get(reverse("dashboard:codeowner-detail", args=["none"])).content.decode()
    assert "no fix to follow" in body


def test_hostile_owner_name_is_escaped_in_the_curve(reader_client):
    hostile = fake_test(8, codeowners=["<b>x</b>%{y}"])
    episode(hostile, day(1), day(2))
    owner = Owner.objects.get(key="<b>x</b>%{y}")
    body = reader_client.get(reverse("dashboard:codeowner-detail", args=[owner.pk])).content.decode()
    assert "<b>x</b>" not in body
    assert curve_island(body)["data"][0]["name"] == "&lt;b&gt;x&lt;/b&gt;%{y}"


@pytest.mark.parametrize("size", [10, 40])
def test_fixes_sections_use_a_constant_number_of_queries(load_demo, django_assert_num_queries, size):
    load_demo(tests=size, days=60)
    period = Period("all", DEMO_NOW)
    test = TestCase.objects.order_by("pk").first()
    owner_key = Owner.objects.order_by("pk").values_list("key", flat=True).first()
    with django_assert_num_queries(4):  # the counts and the curve: the tally, recent episodes
        overall = views_fixes.fixes_section(period=period, repository=None)
    assert overall["curve_chart"] is not None
    with django_assert_num_queries(3):
        views_fixes.fixes_section(
            period=period, repository=test.repository_id, owner_key=owner_key, owner_name="x"
        )
    with django_assert_num_queries(1):
        views_fixes.fixes_of_test(test, period=period)
    with django_assert_num_queries(2):
        views_fixes.owners_fixes([{"owner_key": owner_key}], period=period, repository=None)


def test_relapse_curve_chart_is_what_plotly_gives_and_skips_empty_curves():
    curve = kaplan_meier({5: 1, 14: 2}, {10: 1, 91: 1})
    figure = relapse_curve_chart([("<i>team</i>", curve), ("All tests", curve), ("empty", [])])
    assert json.loads(go.Figure(figure).to_json()) == figure
    assert [t["name"] for t in figure["data"]] == ["&lt;i&gt;team&lt;/i&gt;", "All tests"]
    assert figure["layout"]["yaxis"]["tickformat"] == ".0%"
    assert figure["layout"]["xaxis"]["tickvals"] == list(RELAPSE_CURVE_MARKS)
    assert relapse_curve_chart([("empty", [])]) is None
