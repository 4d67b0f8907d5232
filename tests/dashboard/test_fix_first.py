"""The overview's "Fix first" section and `sort=-impact` on the tests page (issue 14):
the same order everywhere, links to the tests and owners, the page's repository scope."""

import re
import uuid
from html import unescape

import pytest
from django.urls import reverse

from events.demo import payloads
from events.models import Owner, Repository, TestCase
from tests.events.factories import fake_test
from tests.events.impact_data import EXPECTED, FIX_FIRST_ORDER, build, change

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("dashboard:overview")
TESTS = reverse("dashboard:tests")
OTHER_REPO = payloads.FakeRepository(uuid.UUID(int=78), "https://github.com/acme/other")


def section(body: str) -> str:
    return body.split('id="fix-first-heading"')[1].split("</section>")[0]


def rows(html: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[1].split("</tbody>")[0], re.S)


def test_fix_first_lists_the_tests_by_impact_with_links(reader_client):
    data = build()
    response = reader_client.get(OVERVIEW)
    shown = response.context["fix_first"]
    assert [t.name for t in shown] == [data.tests[k].name for k in FIX_FIRST_ORDER]
    assert [t.impact for t in shown] == pytest.approx([EXPECTED[k] for k in FIX_FIRST_ORDER])
    html = section(response.content.decode())
    assert data.tests["healthy"].name not in html
    table = rows(html)
    assert len(table) == 4
    first = table[0]
    broken = TestCase.objects.get(name=data.tests["broken_old"].name)
    assert f'href="{broken.get_absolute_url()}"' in first
    web = Owner.objects.get(key="@acme/web")
    assert f'href="{reverse("dashboard:codeowner-detail", args=[web.pk])}">@acme/web</a>' in first
    assert "status-broken" in first and ">39.4<" in first
    # Its inputs: 7 PRs, 12 %, 10 days open, 1 relapse.
    assert re.findall(r'<td class="num">(?:<span[^>]*>)?([^<]+)', first) == ["7", "12%", "10", "1"]
    quarantined = table[3]
    assert "quarantined" in quarantined and ">9.85<" in quarantined
    assert f'href="{reverse("dashboard:codeowner-detail", args=["none"])}"' in quarantined
    assert "How the impact score is computed" in html
    assert f'href="{TESTS}?sort=-impact&amp;period=30d"' in html


def test_fix_first_keeps_the_repository_scope(reader_client):
    data = build()
    other = fake_test(
        201, name="impact_other_repository", repository=OTHER_REPO, pull_requests_impacted_last_7d=90
    )
    change(other, data.now, "HEALTHY", "BROKEN")
    everywhere = reader_client.get(OVERVIEW).context["fix_first"]
    assert everywhere[0].name == other.name
    repository = Repository.objects.get(html_url=OTHER_REPO.html_url)
    scope = {"period": "7d", "repository": repository.pk}
    response = reader_client.get(OVERVIEW, scope)
    assert [t.name for t in response.context["fix_first"]] == [other.name]
    html = section(response.content.decode())
    assert f'href="{TESTS}?sort=-impact&amp;period=7d&amp;repository={repository.pk}"' in html
    # Owner links carry the scope too.
    assert f"?period=7d&amp;repository={repository.pk}" in rows(html)[0]
    # The "see all" link lists the same tests first.
    page = reader_client.get(unescape(re.search(r'href="([^"]*sort=-impact[^"]*)"', html).group(1)))
    assert [t.name for t in page.context["page"]] == [other.name]


def test_no_problem_no_list(reader_client):
    response = reader_client.get(OVERVIEW)
    assert response.context["fix_first"] == []
    assert "nothing to fix first" in section(response.content.decode())


def test_the_tests_page_sorted_by_impact_matches_the_overview(reader_client):
    data = build()
    fix_first = [t.name for t in reader_client.get(OVERVIEW).context["fix_first"]]
    page = reader_client.get(TESTS, {"sort": "-impact"})
    assert page.context["sort"] == "-impact"
    names = [t.name for t in page.context["page"]]
    assert names[: len(fix_first)] == fix_first
    assert names[len(fix_first) :] == [data.tests["healthy"].name]
    # Ascending: the reverse, ties (none here) by name.
    ascending = [t.name for t in reader_client.get(TESTS, {"sort": "impact"}).context["page"]]
    assert ascending == [data.tests["healthy"].name, *reversed(fix_first)]
    body = page.content.decode()
    assert 'aria-sort="descending"' in body and ">Impact</a>" in body
    assert ">39.4<" in body and ">9.85<" in body


def test_the_impact_sort_is_a_choice_of_the_form(reader_client):
    build()
    body = reader_client.get(TESTS).content.decode()
    assert 'href="?sort=-impact"' in body  # the column header, descending on first click


@pytest.mark.parametrize("size", [10, 40])
def test_sorting_by_impact_keeps_the_page_budget(
    reader_client, load_demo, django_assert_max_num_queries, size
):
    from tests.dashboard.test_tests_page import PAGE_BUDGET

    load_demo(tests=size, days=30)
    with django_assert_max_num_queries(PAGE_BUDGET):
        page = reader_client.get(TESTS, {"sort": "-impact"})
    impacts = [t.impact for t in page.context["page"]]
    assert impacts == sorted(impacts, reverse=True) and impacts[0] > 0


def test_the_csv_sorted_by_impact_has_the_pages_order(reader_client):
    from tests.dashboard.test_tests_page import read_csv

    data = build()
    rows = read_csv(reader_client.get(reverse("dashboard:tests-csv"), {"sort": "-impact"}))
    names = [row[rows[0].index("name")] for row in rows[1:]]
    assert names == [*(data.tests[k].name for k in FIX_FIRST_ORDER), data.tests["healthy"].name]


def _impact_sorted(**filters):
    from dashboard.selectors import tests as selectors

    return selectors.with_impact(
        selectors.filter_test_cases(selectors.test_cases(), sort="-impact", **filters)
    )


@pytest.mark.parametrize("per_page", [1, 3, 7, 50])
@pytest.mark.parametrize("filters", [{}, {"quarantined": False}, {"status": "HEALTHY"}, {"status": "FLAKY"}])
def test_impact_pages_are_the_pages_of_the_full_sort(load_demo, per_page, filters):
    """TestPaginator pages `sort=-impact` in two parts (the scoring tests by impact, then
    the others by name): every page, across the boundary, is the full sort's."""
    from django.core.paginator import Paginator

    from dashboard.selectors.tests import TestPaginator

    load_demo(tests=40, days=30)
    tests = _impact_sorted(**filters)
    scores = list(tests.values_list("pk", "impact"))  # one query: the full sort in SQL
    if not filters:  # the boundary falls inside a page
        scoring = sum(1 for _, score in scores if score > 0)
        assert 0 < scoring < len(scores) and (per_page == 1 or scoring % per_page)
    paginator, plain = TestPaginator(tests, per_page), Paginator(tests, per_page)
    assert paginator.count == plain.count == len(scores)
    pages = [[(t.pk, t.impact) for t in paginator.page(n)] for n in paginator.page_range]
    assert [row for page in pages for row in page] == scores
    assert pages == [[(t.pk, t.impact) for t in plain.page(n)] for n in plain.page_range]


def test_the_tests_page_sorted_by_impact_pages_across_the_boundary(reader_client, monkeypatch):
    from dashboard.views import tests as views

    data = build()
    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    pages = [reader_client.get(TESTS, {"sort": "-impact", "page": n}).context["page"] for n in (1, 2)]
    assert [[t.name for t in page] for page in pages] == [
        [data.tests[k].name for k in FIX_FIRST_ORDER[:3]],
        [*(data.tests[k].name for k in FIX_FIRST_ORDER[3:]), data.tests["healthy"].name],
    ]
    assert pages[1][-1].impact == 0 and pages[0].paginator.count == 5


def test_an_empty_list_sorted_by_impact_has_one_empty_page(db):
    from dashboard.selectors.tests import TestPaginator

    page = TestPaginator(_impact_sorted(), 50).get_page(1)
    assert list(page) == [] and page.paginator.count == 0
