import pytest
from django.urls import reverse

from dashboard.selectors import owners as owners_selectors
from tests.dashboard.test_owners_page import island

pytestmark = pytest.mark.django_db


def test_overview_requires_login(client):
    response = client.get(reverse("dashboard:overview"))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_overview_public_dashboard_setting(client, settings):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    assert client.get(reverse("dashboard:overview")).status_code == 200


def test_overview_empty_state(reader_client):
    response = reader_client.get(reverse("dashboard:overview"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "No test is known in this period yet." in body
    assert "No status change yet." in body


def test_overview_with_data_has_charts_and_numbers(reader_client, load_demo):
    load_demo(tests=20, days=30)
    response = reader_client.get(reverse("dashboard:overview"), {"period": "all"})
    assert response.status_code == 200
    body = response.content.decode()
    for chart_id in ("trend-chart-data", "transitions-chart-data", "owners-chart-data"):
        assert f'id="{chart_id}"' in body
    summary = response.context["summary"]
    assert summary["total"] == 20
    assert summary["status"]["FLAKY"]["now"] + summary["status"]["BROKEN"]["now"] > 0
    # Top owners: flaky and broken stacked, each owner's bars its counts now.
    figure = island(body, "owners-chart")
    assert [trace["name"] for trace in figure["data"]] == ["Broken", "Flaky"]
    counts = {r["owner"]: (r["broken"], r["flaky"]) for r in owners_selectors.problem_tests_by_owner()}
    broken, flaky = figure["data"]
    assert broken["y"] == flaky["y"] and broken["y"]
    for owner, b, f in zip(broken["y"], broken["x"], flaky["x"], strict=True):
        assert counts[owner] == (b, f)
    assert "default-src 'self'" in response["Content-Security-Policy"].split("; ")


def test_overview_recent_changes_partial_for_htmx(reader_client, load_demo):
    load_demo(tests=10, days=20)
    response = reader_client.get(
        reverse("dashboard:overview"), headers={"HX-Request": "true", "HX-Target": "recent-changes"}
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="recent-changes"')
    assert "<html" not in body


@pytest.mark.parametrize("size", [10, 40])
def test_overview_query_budget_does_not_grow(reader_client, load_demo, django_assert_max_num_queries, size):
    load_demo(tests=size, days=30)
    # 22: the cards, charts and lists, the quarantine summary (2) and fixes that held (the
    # counts and the relapse curve: 2); the same whatever the size.
    with django_assert_max_num_queries(22):
        assert reader_client.get(reverse("dashboard:overview"), {"period": "90d"}).status_code == 200


def test_bad_period_and_repository_fall_back(reader_client):
    response = reader_client.get(reverse("dashboard:overview"), {"period": "bogus", "repository": "x"})
    assert response.status_code == 200
    assert response.context["scope"].period.name == "30d"


def test_overview_counts_deliveries_waiting_for_the_projector(reader_client, load_demo, settings):
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    load_demo(tests=3, days=7)
    from events.projection.projector import pending_count, project_pending

    body = reader_client.get(reverse("dashboard:overview")).content.decode()
    assert response_pending(body) == pending_count() > 0

    while project_pending():
        pass
    assert "waiting to be applied" not in reader_client.get(reverse("dashboard:overview")).content.decode()


def response_pending(body: str) -> int:
    import re

    match = re.search(r"· ([\d,]+) waiting to be applied", body)
    return int(match.group(1).replace(",", "")) if match else 0


def test_the_deliveries_card_follows_the_repository(reader_client, load_demo):
    # With a repository chosen, the card counts that repository's deliveries (those whose
    # projected row belongs to one of its tests), as the deliveries page does.
    load_demo(tests=10, days=20)
    from events.models import Repository

    repository = Repository.objects.first()
    scoped = reader_client.get(reverse("dashboard:overview"), {"repository": repository.pk})
    unscoped = reader_client.get(reverse("dashboard:overview"))
    assert 0 < scoped.context["deliveries"]["total"] < unscoped.context["deliveries"]["total"]


def test_the_navigation_carries_the_period_and_repository(reader_client, load_demo):
    load_demo(tests=10, days=20)
    from events.models import Repository

    repository = Repository.objects.first().pk
    body = reader_client.get(
        reverse("dashboard:monitors"), {"period": "7d", "repository": repository}
    ).content
    nav = body.decode().split('<nav aria-label="Main">')[1].split("</nav>")[0]
    for name in ("overview", "tests", "codeowners", "monitors", "investigations", "quarantine"):
        assert f'href="{reverse(f"dashboard:{name}")}?period=7d&amp;repository={repository}"' in nav, name
    # Nothing chosen, or values that are not a scope: bare links.
    for query in ({}, {"period": "1y", "repository": "x<script>"}):
        nav = reader_client.get(reverse("dashboard:tests"), query).content.decode().split("</nav>")[0]
        assert f'href="{reverse("dashboard:codeowners")}"' in nav


@pytest.mark.parametrize("period", ["7d", "all"])
def test_every_card_counts_what_the_page_it_links_to_lists(staff_client, load_demo, period):
    """Each card links with the overview's period and repository, and its number is the
    number of rows on the page it opens (the deliveries card, for staff: the last 24 hours
    of the repository's deliveries, as the deliveries page lists them with received=24h)."""
    reader_client = staff_client
    import re
    from html import unescape

    from events.models import Repository

    load_demo(tests=30, days=30)
    for repository in (None, Repository.objects.first().pk):
        scope = {"period": period} | ({"repository": repository} if repository else {})
        body = reader_client.get(reverse("dashboard:overview"), scope).content.decode()
        cards = re.findall(
            r'<a class="card stat" href="([^"]+)">.*?<span class="value">([^<]+)</span>', body, re.S
        )
        assert len(cards) == 7
        assert any("received=24h" in href for href, _ in cards)
        for href, value in cards:
            href = unescape(href)
            assert f"period={period}" in href and (repository is None or f"repository={repository}" in href)
            page = reader_client.get(href).context
            # The monitors page lists the active pairs; the others their rows.
            shown = (page["active"] if "active" in page else page["page"]).paginator.count
            assert shown == int(value.replace(",", "")), href
