"""The scope (period and repository) follows you: every pager, chart drill-down and table
link that opens another page keeps it, each key once; a page shows the period selector
only where the period changes a figure (issue 14)."""

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from dashboard.views import deliveries as delivery_views
from dashboard.views import investigations as investigation_views
from dashboard.views import monitors as monitor_views
from dashboard.views import owners as owner_views
from dashboard.views import tests as test_views
from events.models import Delivery, Owner, Repository, TestCase
from tests.dashboard.test_owners_page import island

pytestmark = pytest.mark.django_db

DASHBOARD_PAGES = (
    "/",
    "/tests/",
    "/codeowners/",
    "/monitors/",
    "/investigations/",
    "/deliveries/",
    "/quarantine/",
)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.selects: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs)
        if tag == "select" and attrs.get("name"):
            self.selects.add(attrs["name"])


def parsed(body: str) -> _Links:
    parser = _Links()
    parser.feed(body)
    return parser


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def assert_scoped(url: str, period: str, repository: int, **filters: str) -> None:
    """`url` carries the period and repository, each once, and its own `filters`."""
    query = query_of(url)
    assert query.get("period") == [period], url
    assert query.get("repository") == [str(repository)], url
    for key, value in filters.items():
        assert query.get(key) == [value], url
    assert all(len(values) == 1 for values in query.values()), f"a key twice in {url}"


def internal_links(body: str, prefix: str) -> list[str]:
    """hrefs of the page's links to `prefix` pages (not the navigation's)."""
    main = body.split("<main>", 1)[1]
    hrefs = [a["href"] for a in parsed(main).links]
    # "?owner=..." links (the `query` tag) stay on the page: the tests table's own.
    hrefs = [prefix + h if h.startswith("?") and prefix == "/tests/" else h for h in hrefs]
    return [h for h in hrefs if urlsplit(h).path.startswith(prefix)]


@pytest.fixture
def scoped_data(load_demo, monkeypatch):
    load_demo(tests=40, days=60)
    for module, name in (
        (test_views, "PAGE_SIZE"),
        (monitor_views, "PAIRS_PER_PAGE"),
        (investigation_views, "PER_PAGE"),
        (delivery_views, "PER_PAGE"),
        (owner_views, "TESTS_PER_PAGE"),
    ):
        monkeypatch.setattr(module, name, 1)
    repository = Repository.objects.order_by("pk").first()
    assert repository is not None
    return repository.pk


def pager_links(body: str) -> list[str]:
    return [a["href"] for a in parsed(body).links if a.get("rel") in ("next", "prev")]


@pytest.mark.parametrize(
    ("url", "period", "extra"),
    [
        ("/tests/", "7d", {"sort": "name"}),
        ("/monitors/", "7d", {}),
        ("/investigations/", "90d", {"fact_type": "CI_LOGS"}),
        ("/deliveries/", "7d", {"outcome": "processed"}),
        ("codeowner", "7d", {}),
    ],
)
def test_pagers_keep_the_scope_and_the_filters_once(staff_client, scoped_data, url, period, extra):
    repository = scoped_data
    if url == "codeowner":
        owner = Owner.objects.filter(test_cases__repository=repository).order_by("pk").first()
        url = reverse("dashboard:codeowner-detail", args=[owner.pk])
        extra = {}
    params = {"period": period, "repository": repository, **extra, "page": 2}
    links = pager_links(staff_client.get(url, params).content.decode())
    assert links, f"no pager on {url}"
    for link in links:
        assert_scoped(link, period, repository, **extra)
    # The htmx-swapped list answers with the same pager.
    target = {"/tests/": "table", "/monitors/": "active-pairs", "/investigations/": "list"}.get(url)
    target = target or ("table" if url == "/deliveries/" else "owner-tests")
    partial = staff_client.get(url, params, headers={"HX-Request": "true", "HX-Target": target})
    body = partial.content.decode()
    assert "<html" not in body
    for link in pager_links(body):
        assert_scoped(link, period, repository, **extra)


def chart_urls(figure: dict) -> list[str]:
    urls = []
    for trace in figure["data"]:
        for point in trace.get("customdata") or []:
            target = point[0] if isinstance(point, list) else point
            if isinstance(target, str) and target.startswith("/"):
                urls.append(target)
    return urls


@pytest.mark.parametrize(
    ("page", "period", "charts"),
    [
        ("/", "7d", ["trend-chart", "owners-chart"]),
        ("/codeowners/", "7d", ["owners-status-chart"]),
        ("codeowner", "7d", ["owner-trend-chart"]),
        ("/investigations/", "90d", ["confidence-histogram-chart", "facts-chart"]),
    ],
)
def test_chart_drill_downs_keep_the_scope(reader_client, scoped_data, page, period, charts):
    repository = scoped_data
    if page == "codeowner":
        owner = Owner.objects.filter(test_cases__repository=repository).order_by("pk").first()
        page = reverse("dashboard:codeowner-detail", args=[owner.pk])
    body = reader_client.get(page, {"period": period, "repository": repository}).content.decode()
    for chart_id in charts:
        urls = chart_urls(island(body, chart_id))
        assert urls, f"{chart_id} links nowhere"
        for url in urls:
            assert_scoped(url, period, repository)


def test_table_links_keep_the_scope(staff_client, scoped_data, monkeypatch):
    repository = scoped_data
    monkeypatch.setattr(test_views, "PAGE_SIZE", 50)
    scope = {"period": "7d", "repository": repository}
    # Codeowners: each owner's page and its tests by status.
    body = staff_client.get("/codeowners/", scope).content.decode()
    links = internal_links(body, "/codeowners/") + internal_links(body, "/tests/")
    assert any(urlsplit(u).path == "/tests/" for u in links) and any("/codeowners/" in u for u in links)
    for url in links:
        assert_scoped(url, "7d", repository)
    # The tests table: a test's page, an owner's tests, Reset.
    body = staff_client.get("/tests/", scope).content.decode()
    owner_links = [u for u in internal_links(body, "/tests/") if "owner" in query_of(u)]
    assert owner_links
    for url in internal_links(body, "/tests/"):
        assert_scoped(url, "7d", repository)
    # A test's page: its breadcrumbs and owners keep the period (the repository crumb is
    # the test's repository).
    test = TestCase.objects.filter(repository=repository).exclude(owners=None).first()
    body = staff_client.get(test.get_absolute_url(), scope).content.decode()
    links = internal_links(body, "/tests/")
    assert len(links) >= 3
    for url in links:
        assert_scoped(url, "7d", test.repository_id)
    # ... and its deliveries (staff) keep the scope chosen.
    deliveries = internal_links(body, "/deliveries/")
    assert deliveries
    for url in deliveries:
        assert_scoped(url, "7d", repository)
    # Lists to a test's page, and the delivery log to a delivery.
    for page in ("/", "/monitors/", "/investigations/", "/deliveries/"):
        body = staff_client.get(page, {"period": "90d", "repository": repository}).content.decode()
        prefix = "/deliveries/" if page == "/deliveries/" else "/tests/"
        links = [u for u in internal_links(body, prefix) if urlsplit(u).path != prefix]
        assert links, f"no link to a detail page on {page}"
        for url in links:
            assert_scoped(url, "90d", repository)


def test_overview_cards_keep_the_scope(staff_client, scoped_data):
    body = staff_client.get("/", {"period": "7d", "repository": scoped_data}).content.decode()
    cards = [a["href"] for a in parsed(body).links if "card" in a.get("class", "")]
    assert len(cards) == 9  # the deliveries card too (staff), and the 2 quarantine figures
    for url in cards:
        assert_scoped(url, "7d", scoped_data)


# ---------------------------------------------------------------- where the period applies

PERIOD_PAGES = ["/", "/codeowners/", "/monitors/", "/investigations/", "/deliveries/"]


@pytest.mark.parametrize("page", PERIOD_PAGES)
def test_pages_whose_figures_depend_on_the_period_have_its_selector(staff_client, page):
    selectors = parsed(staff_client.get(page).content.decode()).selects
    assert {"period", "repository"} <= selectors


def test_period_selector_shown_on_a_codeowner_page(staff_client, scoped_data):
    owner = Owner.objects.order_by("pk").first()
    selectors = parsed(staff_client.get(f"/codeowners/{owner.pk}/").content.decode()).selects
    assert {"period", "repository"} <= selectors


def test_tests_page_has_no_period_selector_but_passes_the_period_on(staff_client, scoped_data):
    body = staff_client.get("/tests/", {"period": "7d", "repository": scoped_data}).content.decode()
    page = parsed(body)
    assert "period" not in page.selects and "repository" in page.selects
    # Applying another repository keeps the period (a hidden field of the scope form).
    assert '<input type="hidden" name="period" value="7d">' in body
    # The period changes nothing there: the same rows either way.
    other = staff_client.get("/tests/", {"period": "all", "repository": scoped_data})
    assert [t.pk for t in other.context["page"]] == [
        t.pk for t in staff_client.get("/tests/", {"period": "7d", "repository": scoped_data}).context["page"]
    ]
    nav = [a["href"] for a in page.links if a.get("href", "").startswith("/codeowners/")]
    assert nav
    for url in nav:
        assert_scoped(url, "7d", scoped_data)


def test_detail_pages_have_no_scope_selectors_but_keep_the_scope(staff_client, scoped_data):
    test = TestCase.objects.order_by("pk").first()
    delivery = Delivery.objects.order_by("pk").first()
    for url in (test.get_absolute_url(), reverse("dashboard:delivery-detail", args=[delivery.pk])):
        body = staff_client.get(url, {"period": "7d", "repository": scoped_data}).content.decode()
        page = parsed(body)
        assert not {"period", "repository"} & page.selects, url
        for href in (a["href"] for a in page.links if a["href"].startswith("/monitors/")):
            assert_scoped(href, "7d", scoped_data)


@pytest.mark.parametrize("page", ["/tests/", "/investigations/", "/deliveries/", "/quarantine/"])
def test_filter_and_sort_links_carry_the_scope_once(staff_client, scoped_data, page):
    """Links built from the current query string (sort headers, CSV, Clear, filters) keep
    the last well-formed period and repository, once; a hostile value is not copied on."""
    query = f"period=7d&period=all&repository=999&repository={scoped_data}"
    body = staff_client.get(f"{page}?{query}").content.decode()
    links = [u for u in parsed(body).links if u.get("href", "").startswith("?") or page in u.get("href", "")]
    assert links
    for link in links:
        params = parse_qs(urlsplit(link["href"]).query)
        assert params.get("period", ["all"]) == ["all"], link["href"]
        assert params.get("repository", [str(scoped_data)]) == [str(scoped_data)], link["href"]
    hostile = staff_client.get(page, {"period": '"><b>x', "repository": "٣"}).content.decode()
    assert "%3Cb%3Ex" not in hostile and "%D9%A3" not in hostile
