"""The monitors page: activations, active pairs, time to resolve, flapping."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from dashboard.selectors import monitors as monitors_selectors
from events.demo import payloads
from events.models import Repository
from tests.events.factories import MONITOR, deliver, fake_test

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
HX = {"HX-Request": "true", "HX-Target": "active-pairs"}
URL = "/monitors/"


def monitor(test, when, status, *, monitor_id=MONITOR, monitor_type="pass_on_retry"):
    return deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=monitor_id, monitor_type=monitor_type, status=status
        )
    )


NOW = datetime.now(UTC).replace(microsecond=0)


def ago(days: float) -> datetime:
    """A time before now (the same now for the whole run: exact durations)."""
    return NOW - timedelta(days=days)


def island(body: str, chart_id: str) -> dict:
    match = re.search(rf'<script id="{chart_id}-data" type="application/json">(.*?)</script>', body, re.S)
    assert match, f"no data island for {chart_id}"
    return json.loads(match.group(1))


@pytest.fixture
def history():
    """t1: pass_on_retry active 10 days ago, resolved 8, active 3 (flaps, active now).
    t2: failure_rate active 2 days ago, resolved 1 day ago."""
    t1, t2 = fake_test(1), fake_test(2)
    rate = uuid.UUID(int=42)
    monitor(t1, ago(10), "active")
    monitor(t1, ago(8), "resolved")
    monitor(t1, ago(3), "active")
    monitor(t2, ago(2), "active", monitor_id=rate, monitor_type="failure_rate")
    monitor(t2, ago(1), "resolved", monitor_id=rate, monitor_type="failure_rate")
    return {"t1": t1, "t2": t2}


def test_requires_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_public_dashboard_setting(client, settings):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    assert client.get(URL).status_code == 200


def test_empty_states(reader_client):
    body = reader_client.get(URL).content.decode()
    assert 'class="chart-empty" id="activations-chart"' in body
    assert 'class="chart-empty" id="resolve-chart"' in body
    for text in ("No monitor event in this period.", "No monitor flapped in this period.",
                 "No monitor is active right now."):  # fmt: skip
        assert text in body


def test_page_with_data(reader_client, history):
    response = reader_client.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    activations = island(body, "activations-chart")
    assert sorted(t["name"] for t in activations["data"]) == ["Failure rate monitor", "Pass on retry monitor"]
    assert sum(sum(t["y"]) for t in activations["data"]) == 3
    assert len(activations["data"][0]["x"]) == 31  # every day of the 30-day period
    assert activations["layout"]["barmode"] == "stack"
    assert activations["layout"]["xaxis"]["title"]["text"] and activations["layout"]["yaxis"]["title"]["text"]
    resolve = island(body, "resolve-chart")
    assert resolve["data"][0]["y"] == ["Failure rate monitor", "Pass on retry monitor"]  # fastest first
    assert resolve["data"][0]["text"] == ["1d 0h", "2d 0h"]
    types = {row["type"]: row for row in response.context["types"]}
    assert types["pass_on_retry"]["activations"] == 2 and types["pass_on_retry"]["active_now"] == 1
    assert types["failure_rate"]["median_time_to_resolve"] == timedelta(days=1)
    # Active now: t1's pass_on_retry, linking to the test, with its age.
    active = list(response.context["active"])
    assert [(p.test_case_id, p.monitor.type) for p in active] == [(history["t1"].id, "pass_on_retry")]
    assert active[0].age >= timedelta(days=3)
    assert f'href="/tests/{history["t1"].id}/"' in body
    assert "3d 0h" in body
    # Flapping: t1 activated twice in the period.
    assert [(r["test_case_id"], r["activations"]) for r in response.context["flapping"]] == [
        (history["t1"].id, 2)
    ]
    assert body.count("plotly.min.js") == 1


def test_period_filter(reader_client, history):
    response = reader_client.get(URL, {"period": "7d"})
    types = {row["type"]: row for row in response.context["types"]}
    assert types["pass_on_retry"]["activations"] == 1  # the one 10 days ago is outside
    assert response.context["flapping"] == []
    assert "No monitor flapped in this period." in response.content.decode()
    # Active pairs are "now", whatever the period.
    assert response.context["active"].paginator.count == 1


def test_repository_filter(reader_client, history):
    other = payloads.FakeRepository(uuid.UUID(int=77), "https://github.com/acme/other")
    count = uuid.UUID(int=43)
    monitor(fake_test(3, repository=other), ago(1), "active", monitor_id=count, monitor_type="failure_count")
    repo = Repository.objects.get(html_url="https://github.com/acme/other")
    response = reader_client.get(URL, {"repository": repo.pk})
    assert [row["type"] for row in response.context["types"]] == ["failure_count"]
    assert response.context["active"].paginator.count == 1


def test_active_pairs_partial_and_pagination(reader_client):
    for n in range(30):
        monitor(fake_test(100 + n), ago(1 + n / 10), "active")
    full = reader_client.get(URL).content.decode()
    assert "Page 1 of 2" in full and 'hx-target="#active-pairs"' in full
    response = reader_client.get(URL, {"page": 2}, headers=HX)
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="active-pairs"') and "<html" not in body
    assert "Page 2 of 2" in body and body.count("<tr>") == 1 + 5
    assert "HX-Request" in response["Vary"]


def test_hostile_text_escaped(reader_client):
    test = fake_test(7, name=HOSTILE)
    hostile = uuid.UUID(int=666)
    monitor(test, ago(5), "active", monitor_id=hostile, monitor_type=HOSTILE)
    monitor(test, ago(4), "resolved", monitor_id=hostile, monitor_type=HOSTILE)
    monitor(test, ago(3), "active", monitor_id=hostile, monitor_type=HOSTILE)
    body = reader_client.get(URL).content.decode()
    assert ESCAPED in body and "<script>alert" not in body
    # Plotly shows it literally
    assert island(body, "resolve-chart")["data"][0]["y"] == [f"{ESCAPED} monitor"]
    partial = reader_client.get(URL, headers=HX).content.decode()
    assert ESCAPED in partial and "<script>alert" not in partial


@pytest.mark.parametrize("size", [10, 40])
def test_query_budget_does_not_grow(reader_client, load_demo, django_assert_max_num_queries, size):
    load_demo(tests=size, days=30)
    # session and user (2), repositories (1), activations, active count and page, flapping,
    # medians (5), active pairs by type (1); for "all", the probe for events dated after
    # now and the medians' second query (count, then the middle rows) (2)
    with django_assert_max_num_queries(12):
        assert reader_client.get(URL, {"period": "all"}).status_code == 200
    with django_assert_max_num_queries(4):
        assert reader_client.get(URL, {"period": "all", "page": 2}, headers=HX).status_code == 200


# ---- active since: the first `active` event of the unbroken run of `active` events


def active_since_on_page(client) -> list[tuple[datetime, timedelta, str]]:
    """(active since, age, the time shown) of each active pair; the partial shows the same."""
    response = client.get(URL, {"period": "all"})
    shown = re.findall(r'<td class="nowrap"><time datetime="([^"]+)">', response.content.decode())
    partial = client.get(URL, {"period": "all"}, headers=HX).content.decode()
    assert re.findall(r'<td class="nowrap"><time datetime="([^"]+)">', partial) == shown
    pairs = list(response.context["active"])
    return [(p.active_since, p.age, s) for p, s in zip(pairs, shown, strict=True)]


@pytest.mark.parametrize(
    "statuses, since",
    [
        (("active", "active", "active"), 5),  # repeated `active` does not move it
        (("active", "resolved", "active"), 1),  # a `resolved` ends the run
    ],
    ids=["repeated", "after-resolved"],
)
@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)], ids=str)
def test_active_since_is_the_first_active_of_the_current_run(reader_client, statuses, since, order):
    test = fake_test(1)
    events = list(zip((ago(5), ago(3), ago(1)), statuses, strict=True))
    for i in order:  # any order of arrival gives the same
        monitor(test, *events[i])
    before = datetime.now(UTC)
    [(active_since, age, shown)] = active_since_on_page(reader_client)
    after = datetime.now(UTC)
    assert active_since == ago(since) and shown == ago(since).isoformat()
    # age = the request's now - active since (NOW is the collection time, minutes earlier in a long run)
    assert before - active_since - timedelta(seconds=1) <= age <= after - active_since


def test_active_since_selector_reads_one_query(django_assert_num_queries):
    for n in range(3):
        test = fake_test(n + 1)
        monitor(test, ago(5), "active")
        monitor(test, ago(2 - n / 2), "active")
    with django_assert_num_queries(1):
        pairs = list(monitors_selectors.active_monitor_pairs())
    assert [p.active_since for p in pairs] == [ago(5)] * 3
    assert [p.since for p in pairs] == [ago(1), ago(1.5), ago(2)]  # the latest event: the order


def test_monitors_shown_by_type_and_short_id(reader_client, load_demo):
    """No hex fragment alone: a monitor is "<Type> monitor · <short id>" (display.monitor_label)."""
    import re

    from dashboard.display import monitor_label

    load_demo(tests=20, days=30)
    response = reader_client.get(reverse("dashboard:monitors"), {"period": "all"})
    body = response.content.decode()
    pairs = list(response.context["active"])
    assert pairs
    for pair in pairs:
        assert monitor_label(pair.monitor.type, pair.monitor_id) in body
    assert not re.search(r'class="monitor-id"', body)
    for row in response.context["types"]:
        assert f">{row['type'].replace('_', ' ').capitalize()} monitor</th>" in body
