"""The investigations page: confidence histogram and trend, facts, the filterable list."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.selectors import investigations as investigations_selectors
from events.demo import payloads
from events.metrics import Period
from events.models import Repository
from events.palette import BAND_COLORS, STATUS_COLORS
from tests.events.factories import deliver, fake_test

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
HX = {"HX-Request": "true", "HX-Target": "list"}
URL = "/investigations/"
NOW = datetime.now(UTC).replace(microsecond=0)
OTHER = payloads.FakeRepository(uuid.UUID(int=77), "https://github.com/acme/other")


def investigate(test, days_ago, confidence, facts=("CI_LOGS",), n=None, failure_message="boom"):
    return deliver(
        payloads.investigation_completed(
            test,
            at=NOW - timedelta(days=days_ago),
            investigation_id=uuid.UUID(int=n or uuid.uuid4().int),
            confidence=confidence,
            markdown_summary="**Why** it failed",
            failure_message=failure_message,
            facts=[{"fact_type": f, "content": "...", "confidence": 0.5} for f in facts],
        )
    )


def island(body: str, chart_id: str) -> dict:
    match = re.search(rf'<script id="{chart_id}-data" type="application/json">(.*?)</script>', body, re.S)
    assert match, f"no data island for {chart_id}"
    return json.loads(match.group(1))


@pytest.fixture
def history():
    """Five investigations: high, medium and low confidence, owners @acme/web and none,
    one in another repository, one outside the 7-day period."""
    web = fake_test(1, codeowners=["@acme/web"])
    unowned = fake_test(2, codeowners=[])
    elsewhere = fake_test(3, repository=OTHER, codeowners=["@acme/web"])
    investigate(web, 1, 0.9, facts=("CI_LOGS", "GIT_BLAME"))
    investigate(web, 2, 0.55)
    investigate(unowned, 3, 0.2, facts=("ENVIRONMENT",))
    investigate(elsewhere, 4, 1.0, facts=("GIT_BLAME",))
    investigate(unowned, 20, 0.8)
    return {"web": web, "unowned": unowned, "elsewhere": elsewhere}


def listed(response) -> list[float]:
    return [i.confidence for i in response.context["page"]]


def test_requires_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_public_dashboard_setting(client, settings):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    assert client.get(URL).status_code == 200


def test_empty_states(reader_client):
    body = reader_client.get(URL).content.decode()
    for chart_id in ("confidence-histogram-chart", "confidence-over-time-chart", "facts-chart"):
        assert f'class="chart-empty" id="{chart_id}"' in body
    assert "No investigation fact in this period." in body
    assert "No investigation matches in this period." in body


def test_charts_and_list(reader_client, history):
    response = reader_client.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    histogram = island(body, "confidence-histogram-chart")
    assert [t["name"] for t in histogram["data"]] == ["Low (< 0.5)", "Medium (0.5–0.8)", "High (≥ 0.8)"]
    assert [sum(t["y"]) for t in histogram["data"]] == [1, 1, 3]
    # The confidence palette (a blue scale), not the status colours.
    assert [t["marker"]["color"] for t in histogram["data"]] == [
        BAND_COLORS[b] for b in ("low", "medium", "high")
    ]
    assert not set(BAND_COLORS.values()) & set(STATUS_COLORS.values())
    # A bar links to the list filtered by its band (the click handler follows customdata[0]).
    # (the default period is left out of links, as the navigation's)
    assert histogram["data"][0]["customdata"][0][0] == "/investigations/?band=low#list"
    over_time = island(body, "confidence-over-time-chart")["data"][0]
    assert len(over_time["x"]) == 5 and sorted(over_time["customdata"]) == [1, 1, 1, 1, 1]
    facts = island(body, "facts-chart")
    assert sorted(zip(facts["data"][0]["y"], facts["data"][0]["x"], strict=True)) == [
        ("CI_LOGS", 3), ("ENVIRONMENT", 1), ("GIT_BLAME", 2)
    ]  # fmt: skip
    assert facts["data"][0]["customdata"][0][0].startswith("/investigations/?fact_type=")
    # The list: newest first, with test links, band badges and facts counts.
    assert listed(response) == [0.9, 0.55, 0.2, 1.0, 0.8]
    first = response.context["page"][0]
    assert first.facts_count == 2 and first.band == "high"
    assert f'href="/tests/{history["web"].id}/"' in body
    assert 'class="badge band-low"' in body
    assert body.count("plotly.min.js") == 1


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"band": "high"}, [0.9, 1.0, 0.8]),
        ({"band": "medium"}, [0.55]),
        ({"band": "low"}, [0.2]),
        ({"owner": "@ACME/WEB"}, [0.9, 0.55, 1.0]),
        ({"owner": "none"}, [0.2, 0.8]),
        ({"fact_type": "GIT_BLAME"}, [0.9, 1.0]),
        ({"band": "high", "owner": "@acme/web", "fact_type": "GIT_BLAME"}, [0.9, 1.0]),
        ({"period": "7d"}, [0.9, 0.55, 0.2, 1.0]),
        ({"band": "bogus", "owner": "@nobody", "fact_type": "NOPE"}, [0.9, 0.55, 0.2, 1.0, 0.8]),
    ],
)
def test_list_filters(reader_client, history, params, expected):
    response = reader_client.get(URL, params)
    assert response.status_code == 200
    assert listed(response) == expected


def test_repository_scope(reader_client, history):
    repo = Repository.objects.get(html_url=OTHER.html_url)
    response = reader_client.get(URL, {"repository": repo.pk})
    assert listed(response) == [1.0]
    assert response.context["summary"]["total"] == 1
    histogram = island(response.content.decode(), "confidence-histogram-chart")
    assert f"repository={repo.pk}" in histogram["data"][2]["customdata"][0][0]


def test_list_partial_for_htmx(reader_client, history):
    response = reader_client.get(URL, {"band": "low"}, headers=HX)
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="list"') and "<html" not in body
    assert "1 investigation," in body and "badge band-low" in body and "band-high" not in body
    assert "HX-Request" in response["Vary"]
    empty = reader_client.get(URL, {"band": "medium", "owner": "none"}, headers=HX).content.decode()
    assert "No investigation matches these filters in this period." in empty


def test_filter_form_swaps_the_list(reader_client, history):
    body = reader_client.get(URL).content.decode()
    form = re.search(r'<form class="filterbar".*?</form>', body, re.S).group(0)
    assert 'hx-target="#list"' in form and 'hx-push-url="true"' in form
    assert 'name="period" value="30d"' in form  # the scope survives a filter change
    assert '<option value="none">(no owner)</option>' in form
    assert '<option value="GIT_BLAME">GIT_BLAME</option>' in form


def test_pagination(reader_client):
    test = fake_test(5)
    for n in range(30):
        investigate(test, 1 + n / 100, 0.5, n=1000 + n)
    full = reader_client.get(URL).content.decode()
    assert "Page 1 of 2" in full
    page2 = reader_client.get(URL, {"page": 2}, headers=HX).content.decode()
    assert "Page 2 of 2" in page2 and page2.count("<tr>") == 1 + 5
    assert 'hx-get="/investigations/?page=1"' in page2


def test_hostile_text_escaped(reader_client):
    test = fake_test(7, name=HOSTILE, codeowners=[HOSTILE])
    investigate(test, 1, 0.3, facts=(HOSTILE,), failure_message=HOSTILE)
    body = reader_client.get(URL).content.decode()
    assert ESCAPED in body and "<script>alert" not in body
    assert island(body, "facts-chart")["data"][0]["y"] == [ESCAPED]
    partial = reader_client.get(URL, {"fact_type": HOSTILE}, headers=HX).content.decode()
    assert ESCAPED in partial and "<script>alert" not in partial


def test_investigation_list_query(history):
    period = Period.parse("30d")
    assert investigations_selectors.investigation_list(period=period, band="high", owner="none").count() == 1
    assert (
        investigations_selectors.investigation_list(period=period, fact_type="ENVIRONMENT").get().confidence
        == 0.2
    )


@pytest.mark.parametrize("size", [10, 40])
def test_query_budget_does_not_grow(reader_client, load_demo, django_assert_max_num_queries, size):
    load_demo(tests=size, days=30)
    # session and user (2), repositories (1), owner and fact type choices (2), list count,
    # page and owners (3), histogram, per day, facts (3), calibration (4 over all history:
    # a probe and the calibration tally, the outcome tally and the last 14 days' outcomes)
    with django_assert_max_num_queries(15):
        assert reader_client.get(URL, {"period": "all"}).status_code == 200
    filters = {"period": "all", "band": "high", "owner": "none", "fact_type": "CI_LOGS"}
    with django_assert_max_num_queries(15):
        assert reader_client.get(URL, filters).status_code == 200
    with django_assert_max_num_queries(7):
        assert reader_client.get(URL, {**filters, "band": "low"}, headers=HX).status_code == 200
