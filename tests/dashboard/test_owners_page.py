"""The codeowners page and a codeowner's page (METRICS.md: owners, episodes)."""

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse

from dashboard.selectors import owners as owners_selectors
from dashboard.selectors import status as status_selectors
from events import metrics
from events.demo import payloads
from events.metrics import Period
from events.models import Owner, Repository
from tests.conftest import DEMO_NOW
from tests.events.factories import MONITOR, at, deliver, fake_test

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
NOW = datetime(2026, 5, 25, tzinfo=UTC)
HX = {"HX-Request": "true", "HX-Target": "owner-tests"}


def change(test, when, previous, new):
    return deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


def seen(test, when):
    return deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=uuid.UUID(int=999), monitor_type="failure_rate", status="resolved"
        )
    )


@pytest.fixture
def owned():
    """t1 (@acme/web): H->F day 2, F->H day 6, H->B day 20 (open). t2 (@Acme/API): seen
    day 1, H->F day 3 (open). t3 (no owner): seen day 1, never changed."""
    t1 = fake_test(1, codeowners=["@acme/web"])
    t2 = fake_test(2, codeowners=["@Acme/API"])
    t3 = fake_test(3, codeowners=[])
    seen(t1, at(1))
    change(t1, at(2), "HEALTHY", "FLAKY")
    change(t1, at(6), "FLAKY", "HEALTHY")
    change(t1, at(20), "HEALTHY", "BROKEN")
    seen(t2, at(1))
    change(t2, at(3), "HEALTHY", "FLAKY")
    seen(t3, at(1))
    return {"t1": t1, "t2": t2, "t3": t3}


def island(body: str, chart_id: str) -> dict:
    match = re.search(rf'<script id="{chart_id}-data" type="application/json">(.*?)</script>', body, re.S)
    assert match, f"no data island for {chart_id}"
    return json.loads(match.group(1))


# ---------------------------------------------------------------- owner_status_trend


def test_owner_status_trend_splits_status_trend_by_owner(owned):
    period = Period("30d", NOW)
    overall = status_selectors.status_trend(period=period)
    parts = [
        status_selectors.status_trend(period=period, owner_key=key) for key in ("@acme/web", "@acme/api", "")
    ]
    # Every test has exactly one owner (or none): the owners' series add up to the whole.
    assert all(len(p) == len(overall) for p in parts)
    for i, row in enumerate(overall):
        for status in ("HEALTHY", "FLAKY", "BROKEN"):
            assert row[status] == sum(p[i][status] for p in parts), (row["day"], status)
    web = {r["day"]: r for r in parts[0]}
    assert (web[date(2026, 5, 3)]["FLAKY"], web[date(2026, 5, 7)]["FLAKY"]) == (1, 0)
    assert web[date(2026, 5, 21)]["BROKEN"] == 1
    none = {r["day"]: r for r in parts[2]}
    assert none[date(2026, 5, 21)] == {"day": date(2026, 5, 21), "HEALTHY": 1, "FLAKY": 0, "BROKEN": 0}


def test_owner_status_trend_unknown_owner_and_repository(owned):
    assert status_selectors.status_trend(owner_key="@nobody", period=Period("30d", NOW)) == []
    assert (
        status_selectors.status_trend(owner_key="@acme/web", period=Period("30d", NOW), repository=10_000)
        == []
    )


def test_owner_status_trend_one_query(owned, django_assert_num_queries):
    with django_assert_num_queries(1):
        status_selectors.status_trend(owner_key="@acme/web", period=Period("all", NOW))


# ---------------------------------------------------------------- access


@pytest.mark.parametrize("url", ["/codeowners/", "/codeowners/none/"])
def test_requires_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_public_dashboard_setting(client, settings, owned):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    assert client.get(reverse("dashboard:codeowners")).status_code == 200
    assert client.get(reverse("dashboard:codeowner-detail", args=["@acme/web"])).status_code == 200


# ---------------------------------------------------------------- the codeowners page


def test_codeowners_empty_state(reader_client):
    response = reader_client.get(reverse("dashboard:codeowners"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="chart-empty" id="owners-status-chart"' in body
    assert "No tests yet, so no owners." in body


def test_codeowners_table_and_chart(reader_client, owned):
    response = reader_client.get(reverse("dashboard:codeowners"), {"period": "all"})
    assert response.status_code == 200
    body = response.content.decode()
    rows = {r["owner"]: r for r in response.context["owners"]}
    assert set(rows) == {"@acme/web", "@Acme/API", "(no owner)"}
    web = rows["@acme/web"]
    assert (web["tests"], web["flaky"], web["broken"], web["relapses"]) == (1, 0, 1, 1)
    assert web["median_time_to_fix"] == timedelta(days=4)
    assert web["oldest_open_since"] == at(20)
    # Links: the owner's page by id ("none" for no owner) and the tests behind each count.
    api = Owner.objects.get(key="@acme/api")
    assert f'href="/codeowners/{api.pk}/?period=all"' in body
    assert 'href="/codeowners/none/?period=all"' in body
    assert 'href="/tests/?owner=%40acme%2Fweb&amp;status=BROKEN&amp;period=all"' in body
    figure = island(body, "owners-status-chart")
    # Flaky and broken are the bars; the healthy tests are context: each bar's label
    # gives the owner's total. Owners with neither (here: no owner) are left out.
    assert [t["name"] for t in figure["data"]] == ["Broken", "Flaky"]
    assert figure["layout"]["title"]["text"] and figure["layout"]["xaxis"]["title"]["text"]
    broken = figure["data"][0]
    urls = {y: custom[0] for y, custom in zip(broken["y"], broken["customdata"], strict=True)}
    assert urls["@acme/web"] == "/tests/?owner=%40acme%2Fweb&status=BROKEN&period=all"
    assert "(no owner)" not in urls
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["of 1", "of 1"]
    assert 'src="/static/vendor/plotly.min.js"' in body and body.count("plotly.min.js") == 1


def test_codeowners_repository_scope(reader_client, owned):
    other = payloads.FakeRepository(uuid.UUID(int=77), "https://github.com/acme/other")
    other_test = fake_test(50, repository=other, codeowners=["@acme/other"])
    seen(other_test, at(2))
    change(other_test, at(3), "HEALTHY", "FLAKY")
    repo = Repository.objects.get(html_url="https://github.com/acme/other")
    response = reader_client.get(reverse("dashboard:codeowners"), {"repository": repo.pk})
    assert [r["owner"] for r in response.context["owners"]] == ["@acme/other"]
    assert (
        f"repository={repo.pk}"
        in island(response.content.decode(), "owners-status-chart")["data"][0]["customdata"][0][0]
    )


def test_codeowners_hostile_owner_escaped(reader_client):
    deliver(
        payloads.status_changed(
            fake_test(7, name=HOSTILE, codeowners=[HOSTILE]),
            at=at(2),
            previous="HEALTHY",
            new="FLAKY",
            monitor_id=MONITOR,
            monitor_type=HOSTILE,
        )
    )
    body = reader_client.get(reverse("dashboard:codeowners"), {"period": "all"}).content.decode()
    assert ESCAPED in body and "<script>alert" not in body
    # Plotly reads some HTML in labels: the label is entity-escaped inside the JSON too.
    assert "&lt;script&gt;" in json.dumps(island(body, "owners-status-chart"))
    detail = reader_client.get(reverse("dashboard:codeowner-detail", args=[HOSTILE]), {"period": "all"})
    assert detail.status_code == 200
    text = detail.content.decode()
    assert ESCAPED in text and "<script>alert" not in text


# Owners are free text: each of these once broke a link or led to the wrong page (a
# newline: reverse() failed and /codeowners/ answered 500; "none": the page of tests
# without owners; dot segments and empty segments: rewritten by browsers and proxies).
ODD_OWNERS = ["a\nb", "none", "..", ".", "../admin", "/", "a//b", "a?b#c", "100%", "123", " ü🚀\t"]


@pytest.mark.parametrize("name", ODD_OWNERS)
def test_any_owner_is_linked_by_id_and_its_page_opens(reader_client, name):
    seen(fake_test(8, codeowners=[name]), at(2))
    owner = Owner.objects.get(key=name.strip().casefold())
    for period in metrics.PERIODS:
        response = reader_client.get(reverse("dashboard:codeowners"), {"period": period})
        assert response.status_code == 200
        (row,) = (r for r in response.context["owners"] if r["owner_key"])
        assert row["url"] == f"/codeowners/{owner.pk}/" + ("" if period == "30d" else f"?period={period}")
    detail = reader_client.get(f"/codeowners/{owner.pk}/")
    assert detail.status_code == 200
    assert detail.context["owner_name"] == owner.name
    assert detail.context["owner_url"] == f"/codeowners/{owner.pk}/"
    # The tests behind the counts: filtered by the owner's key in the query string.
    assert detail.context["stats"]["tests_url"].startswith("/tests/?owner=")


def test_owner_page_by_name_still_opens_any_name(reader_client):
    """Older links name the owner (any case): the path takes any text, newlines too."""
    seen(fake_test(8, codeowners=["@Acme/Multi\nLine"]), at(2))
    url = reverse("dashboard:codeowner-detail", args=["@acme/multi\nline"])
    assert url == "/codeowners/@acme/multi%0Aline/"
    response = reader_client.get(url)
    assert response.status_code == 200 and response.context["owner_name"] == "@Acme/Multi\nLine"


def test_owner_id_wins_over_a_name_of_digits(reader_client):
    seen(fake_test(8, codeowners=["@first"]), at(2))
    first = Owner.objects.get()
    seen(fake_test(9, codeowners=[str(first.pk)]), at(2))
    assert reader_client.get(f"/codeowners/{first.pk}/").context["owner_name"] == "@first"
    assert reader_client.get("/codeowners/99999999999999999999999/").status_code == 404


# ---------------------------------------------------------------- a codeowner's page


def test_codeowner_detail_any_case(reader_client, owned):
    response = reader_client.get(reverse("dashboard:codeowner-detail", args=["@ACME/Api"]), {"period": "all"})
    assert response.status_code == 200
    assert response.context["owner_name"] == "@Acme/API"
    stats = response.context["stats"]
    assert (stats["tests"], stats["flaky"], stats["oldest_open_since"]) == (1, 1, at(3))
    assert [t.name for t in response.context["page"]] == ["test_case_2"]
    body = response.content.decode()
    figure = island(body, "owner-trend-chart")
    assert [t["name"] for t in figure["data"]] == ["Flaky", "Broken"]
    assert figure["data"][0]["customdata"][0] == "/tests/?owner=%40acme%2Fapi&status=FLAKY&period=all"
    assert 'href="/tests/?owner=%40acme%2Fapi&amp;status=FLAKY&amp;period=all"' in body
    # The same label as the overview and the codeowners table.
    assert '<span class="label">Median time to fix</span>' in body


def test_codeowner_detail_no_owner(reader_client, owned):
    response = reader_client.get(reverse("dashboard:codeowner-detail", args=["none"]), {"period": "all"})
    assert response.status_code == 200
    assert response.context["owner_name"] == "(no owner)"
    assert [t.name for t in response.context["page"]] == ["test_case_3"]
    assert response.context["stats"]["tests"] == 1


def test_codeowner_detail_unknown_owner_404(reader_client, owned):
    assert reader_client.get(reverse("dashboard:codeowner-detail", args=["@nobody"])).status_code == 404


@pytest.mark.parametrize("owner", ["%00", "a%00b", "%40acme%00"])
def test_codeowner_detail_with_a_nul_is_404(reader_client, owned, owner):
    """PostgreSQL raised on the NUL in the owner lookup (500); no owner holds one."""
    assert reader_client.get(f"/codeowners/{owner}/").status_code == 404


def test_codeowner_detail_empty_states(reader_client, owned):
    # In a repository without this owner's tests: zeros, no trend, no rows.
    other = payloads.FakeRepository(uuid.UUID(int=77), "https://github.com/acme/other")
    other_test = fake_test(50, repository=other, codeowners=["@acme/other"])
    seen(other_test, at(2))
    change(other_test, at(3), "HEALTHY", "FLAKY")
    repo = Repository.objects.get(html_url="https://github.com/acme/other")
    response = reader_client.get(
        reverse("dashboard:codeowner-detail", args=["@acme/web"]), {"repository": repo.pk}
    )
    assert response.status_code == 200
    stats = response.context["stats"]
    assert (stats["tests"], stats["flaky"], stats["median_time_to_fix"], stats["relapses"]) == (0, 0, None, 0)
    body = response.content.decode()
    assert 'class="chart-empty" id="owner-trend-chart"' in body
    assert "No test of this owner matches." in body
    response = reader_client.get(reverse("dashboard:codeowner-detail", args=["none"]), {"status": "BROKEN"})
    assert "No test of this owner matches." in response.content.decode()


def test_codeowner_detail_status_filter_and_partial(reader_client, load_demo):
    load_demo(tests=30, days=30)
    owner = owners_selectors.owner_stats(period=Period.parse("all"))[0]  # most flaky or broken first
    url = reverse("dashboard:codeowner-detail", args=[owner["owner_key"] or "none"])
    response = reader_client.get(url, {"status": "FLAKY", "period": "all"}, headers=HX)
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="owner-tests"') and "<html" not in body
    # (a partial render does not record its context: read the HTML)
    assert body.count('<span class="badge status-flaky">') == min(owner["flaky"], 25)
    assert "status-healthy" not in body and "status-broken" not in body
    assert f"{owner['flaky']} test" in body
    assert "HX-Request" in response["Vary"]
    # A bad status is ignored, not an error.
    response = reader_client.get(url, {"status": "bogus"})
    assert response.status_code == 200 and response.context["page"].paginator.count == owner["tests"]


def test_codeowner_detail_pagination(reader_client):
    for n in range(30):
        seen(fake_test(100 + n, codeowners=["@many"]), at(2))
    url = reverse("dashboard:codeowner-detail", args=["@many"])
    first = reader_client.get(url).content.decode()
    assert "Page 1 of 2" in first and 'hx-target="#owner-tests"' in first
    second = reader_client.get(url, {"page": 2}, headers=HX).content.decode()
    assert second.lstrip().startswith('<div id="owner-tests"') and "Page 2 of 2" in second
    assert second.count("<tr>") == 1 + 5  # header row and the last five tests


@pytest.mark.parametrize("size", [10, 40])
def test_query_budget_does_not_grow(reader_client, load_demo, django_assert_max_num_queries, size):
    load_demo(tests=size, days=30)
    named = next(r for r in owners_selectors.owner_stats(period=Period.parse("all")) if r["owner_key"])
    # session and user (2), repositories for the selector (1), owner_stats (4), targets (4:
    # the targets, a probe, the unsettled episodes, the target tally), fixes by owner (2:
    # the fix tally and the recent episodes)
    with django_assert_max_num_queries(13):
        assert reader_client.get(reverse("dashboard:codeowners"), {"period": "all"}).status_code == 200
    # + the owner (1), tests count, page and their owners (3), the owner's trend (1),
    # targets (6: targets, attainment over all history in 3, weekly, breaching), the
    # owner's fixes and relapse curves (6: each the fix tally and the recent episodes)
    for owner in (named["owner_key"], "none"):
        detail = reverse("dashboard:codeowner-detail", args=[owner])
        with django_assert_max_num_queries(24):
            assert reader_client.get(detail, {"period": "all"}).status_code == 200
        with django_assert_max_num_queries(6):
            assert reader_client.get(detail, {"period": "all", "page": 2}, headers=HX).status_code == 200


# ---------------------------------------------------------------- rollups vs tests


def _comparable(rows: list[dict]) -> list[dict]:
    # The path over the tests computes seconds in SQL (SQLite: julianday, about 50 µs off).
    return [
        r | {"median_time_to_fix": r["median_time_to_fix"] and round(r["median_time_to_fix"].total_seconds())}
        for r in rows
    ]


@pytest.mark.parametrize("period", ["7d", "30d", "all"])
def test_owner_stats_from_the_rollups_equal_those_from_the_tests(load_demo, period):
    """owner_stats reads the owner rollups; in one repository, it reads the tests, their
    owner links and episodes. With a single repository both must agree, also with a `now`
    before the end of the history (events dated after now)."""
    load_demo(tests=60, days=60, repositories=1)
    repository = Repository.objects.get().pk
    for now in (DEMO_NOW, DEMO_NOW - timedelta(days=20)):
        p = Period(period, now)
        rollups = owners_selectors.owner_stats(period=p)
        assert len(rollups) > 2 and any(r["median_time_to_fix"] for r in rollups)
        assert _comparable(rollups) == _comparable(
            owners_selectors.owner_stats(period=p, repository=repository)
        )
        for row in rollups:
            one = owners_selectors.owner_stats(period=p, owner_key=row["owner_key"])
            assert _comparable(one) == _comparable([row])
            # The owner's trend: OwnerDayDelta, or the intervals of its tests.
            trend = status_selectors.status_trend(period=p, owner_key=row["owner_key"])
            assert trend == status_selectors.status_trend(
                period=p, owner_key=row["owner_key"], repository=repository
            )
            assert trend or now < DEMO_NOW
        # The overview's figures from the rollups, against those from the tests.
        assert status_selectors.status_summary(period=p) == status_selectors.status_summary(
            period=p, repository=repository
        )
    problems = _by_key(owners_selectors.problem_tests_by_owner())
    assert problems and problems == _by_key(owners_selectors.problem_tests_by_owner(repository=repository))


def _by_key(rows: list[dict]) -> list[tuple]:
    return sorted((r["owner_key"], r["owner"], r["flaky"], r["broken"]) for r in rows)


def test_codeowners_chart_orders_ties_as_the_table(reader_client):
    """Owners with the same number of flaky and broken tests: by name in both."""
    for n, owner in enumerate(["@zeta", "@alpha", "@Mid", "@beta"], start=60):
        test = fake_test(n, codeowners=[owner])
        seen(test, at(1))
        change(test, at(2), "HEALTHY", "FLAKY")
    response = reader_client.get(reverse("dashboard:codeowners"), {"period": "all"})
    table = [r["owner"] for r in response.context["owners"]]
    assert table == ["@alpha", "@beta", "@Mid", "@zeta"]
    chart = island(response.content.decode(), "owners-status-chart")["data"][1]["y"]
    assert list(reversed(chart)) == table  # Plotly draws the first category at the bottom
