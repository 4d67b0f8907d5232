"""Each dashboard page in a real browser: it renders, its charts draw (plotly's SVG),
no console error (CSP violations included), no failed request; screenshots saved."""

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_page_and_redirect(browser, live_server):
    page = browser.new_page()
    page.goto(f"{live_server.url}/tests/")
    assert "/accounts/login/" in page.url
    assert page.locator("form.login").is_visible()
    screenshot(page, "login")
    page.close()


def test_overview_draws_its_charts(logged_in):
    page, problems, base = logged_in
    page.goto(f"{base}/?period=all")
    page.wait_for_selector("#trend-chart .main-svg")
    for chart in ("#trend-chart", "#transitions-chart", "#owners-chart"):
        assert page.locator(f"{chart} .main-svg").count() >= 1, chart
    assert page.locator("#recent-changes li").count() > 0
    screenshot(page, "overview")
    problems.assert_none()


def test_overview_period_selector_reloads_with_the_query_string(logged_in):
    page, problems, base = logged_in
    page.goto(f"{base}/")
    page.select_option("select[name=period]", "7d")
    page.wait_for_url("**period=7d**")
    assert page.locator("select[name=period]").input_value() == "7d"
    problems.assert_none()


@pytest.mark.parametrize("line, other", [("Flaky", "Broken"), ("Broken", "Flaky")])
def test_trend_chart_click_on_a_line_opens_its_status_list(logged_in, line, other):
    """The trend's hover is unified (both lines at a day): a click gives both points, in
    an order of Plotly's; the list opened is the one of the line under the pointer."""
    page, problems, base = logged_in
    page.goto(f"{base}/?period=7d")
    page.wait_for_selector("#trend-chart .main-svg")
    page.locator("#trend-chart").scroll_into_view_if_needed()
    # The day (not the last) where the two lines are furthest apart, the line's point there.
    point = page.evaluate(
        """([line, other]) => {
          const gd = document.getElementById("trend-chart"), layout = gd._fullLayout;
          const mine = gd.data.find((t) => t.name === line), theirs = gd.data.find((t) => t.name === other);
          let i = 0;
          mine.y.slice(0, -1).forEach((y, j) => {
            if (Math.abs(y - theirs.y[j]) > Math.abs(mine.y[i] - theirs.y[i])) i = j;
          });
          const box = gd.getBoundingClientRect();
          const px = (axis, value) => axis._offset + axis.d2p(value);
          return {
            x: box.left + px(layout.xaxis, mine.x[i]),
            y: box.top + px(layout.yaxis, mine.y[i]),
            apart: Math.abs(px(layout.yaxis, mine.y[i]) - px(layout.yaxis, theirs.y[i])),
          };
        }""",
        [line, other],
    )
    assert point["apart"] > 20, "the demo's lines should part somewhere"
    # Just right of the day, on the line's step (there Plotly listed Broken first).
    page.mouse.move(point["x"] + 10, point["y"])
    page.wait_for_selector("#trend-chart .hoverlayer .legend")
    screenshot(page, f"trend-hover-{line.lower()}")
    page.mouse.click(point["x"] + 10, point["y"])
    page.wait_for_url("**/tests/**")
    assert parse_qs(urlsplit(page.url).query) == {"status": [line.upper()], "period": ["7d"]}
    problems.assert_none()


def test_overview_is_usable_on_a_phone(logged_in):
    page, problems, base = logged_in
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/?period=all")
    page.wait_for_selector("#trend-chart .main-svg")
    # Nothing wider than the screen but scrollable tables.
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1
    screenshot(page, "overview-390")
    problems.assert_none()


@pytest.mark.parametrize(
    ("path", "charts", "name"),
    [
        ("/codeowners/?period=all", ["#owners-status-chart"], "codeowners"),
        ("/monitors/?period=all", ["#activations-chart", "#resolve-chart"], "monitors"),
        (
            "/investigations/?period=all",
            ["#confidence-histogram-chart", "#confidence-over-time-chart", "#facts-chart"],
            "investigations",
        ),
    ],
)
def test_insight_pages_draw_their_charts(logged_in, path, charts, name):
    page, problems, base = logged_in
    page.goto(f"{base}{path}")
    for chart in charts:
        page.wait_for_selector(f"{chart} .main-svg")
    screenshot(page, name)
    problems.assert_none()


def test_codeowner_page_from_the_table(logged_in):
    page, problems, base = logged_in
    page.goto(f"{base}/codeowners/?period=all")
    page.locator("table a[href^='/codeowners/']").first.click()
    page.wait_for_url("**/codeowners/**/**")
    page.wait_for_selector(".main-svg")
    screenshot(page, "codeowner-detail")
    problems.assert_none()


def test_investigation_filter_swaps_only_the_list(logged_in):
    page, problems, base = logged_in
    page.goto(f"{base}/investigations/?period=all")
    page.evaluate("window.__marker = 'still here'")  # lost on a full page load
    page.select_option("#list-filters select[name=band], select[name=band]", "high")
    page.wait_for_url("**band=high**")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__marker") == "still here"
    problems.assert_none()


def test_deliveries_and_a_delivery_page(logged_in):
    page, problems, base = logged_in
    page.goto(f"{base}/deliveries/")
    page.locator("#table tbody a").first.click()
    page.wait_for_url("**/deliveries/*/")
    assert page.locator("pre").first.is_visible()
    screenshot(page, "delivery-detail")
    page.goto(f"{base}/deliveries/")
    screenshot(page, "deliveries")
    problems.assert_none()


def test_tests_filter_swaps_only_the_table_then_open_a_test(logged_in):
    page, problems, base = logged_in
    page.goto(f"{base}/tests/")
    all_rows = page.locator("#table tbody tr").count()
    page.evaluate("window.__marker = 'still here'")  # lost on a full page load
    page.select_option("#filters select[name=status]", "FLAKY")
    page.wait_for_url("**status=FLAKY**")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__marker") == "still here"
    flaky_rows = page.locator("#table tbody tr")
    assert 0 < flaky_rows.count() < all_rows
    assert page.locator("#table .badge.status-flaky").count() == flaky_rows.count()
    screenshot(page, "tests-filtered")
    page.locator("#table tbody a[href^='/tests/']").first.click()
    page.wait_for_url("**/tests/*-*/")
    page.wait_for_selector("#status-chart .main-svg")
    assert page.locator("#monitor-chart .main-svg, #monitor-chart p").count() >= 1
    screenshot(page, "test-detail")
    problems.assert_none()


def test_tests_repository_selector_keeps_the_period(logged_in):
    """/tests/ has no period selector, only a hidden period in the scope form: choosing a
    repository keeps it (app.js dropped it), and the other filters, each once."""
    page, problems, base = logged_in
    page.goto(f"{base}/tests/?period=7d&status=FLAKY")
    repository = page.locator("form.scope select[name=repository] option[value]:not([value=''])").first
    value = repository.get_attribute("value")
    page.select_option("form.scope select[name=repository]", value)
    page.wait_for_url(f"**repository={value}**")
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"period": ["7d"], "repository": [value], "status": ["FLAKY"]}
    overview = page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview")
    assert parse_qs(urlsplit(overview.get_attribute("href")).query)["period"] == ["7d"]
    problems.assert_none()


def test_tests_page_without_filters(logged_in):
    page, problems, base = logged_in
    page.goto(f"{base}/tests/")
    assert page.locator("#table tbody tr").count() > 0
    screenshot(page, "tests")
    problems.assert_none()


def test_staff_edits_triage_in_place(logged_in):
    page, problems, base = logged_in
    page.goto(f"{base}/tests/?status=FLAKY")
    page.locator("#table tbody a[href^='/tests/']").first.click()
    page.wait_for_url("**/tests/*-*/")
    page.evaluate("window.__marker = 'still here'")
    page.select_option("#triage select[name=triage_state]", "investigating")
    page.fill("#triage textarea[name=triage_note]", "Races the refund worker")
    page.locator("#triage button[type=submit]").click()
    page.wait_for_selector("#triage :text('Races the refund worker')")
    assert page.evaluate("window.__marker") == "still here"
    problems.assert_none()


def test_api_docs_draw_every_operation_under_the_content_security_policy(logged_in):
    """Swagger UI starts from a script file (drf-spectacular's split view): an inline
    start-up script is refused by the CSP, which left /api/docs/ blank."""
    page, problems, base = logged_in
    page.goto(f"{base}/api/docs/")
    page.wait_for_selector(".opblock", timeout=15_000)
    assert page.locator(".opblock").count() >= 10
    assert page.locator(".opblock-summary-path", has_text="/api/v1/test-cases/").count() >= 1
    screenshot(page, "api-docs")
    problems.assert_none()


def test_fix_first_lists_the_tests_page_sorted_by_impact(logged_in):
    """The overview's Fix first rows are the first rows of /tests/?sort=-impact, in the
    same order, and a row opens its test's page."""
    page, problems, base = logged_in
    page.goto(f"{base}/?period=all")
    fix_first = page.locator("table.fix-first tbody th a").all_inner_texts()
    assert fix_first, "no test to fix first in the demo data"
    page.get_by_role("link", name="See all tests by impact").click()
    page.wait_for_url("**sort=-impact**")
    assert "period=all" in page.url
    listed = page.locator("#table tbody td.test-cell > a").all_inner_texts()
    assert listed[: len(fix_first)] == fix_first
    page.goto(f"{base}/?period=all")
    page.locator("table.fix-first tbody th a").first.click()
    page.wait_for_url("**/tests/*-*/**")
    assert page.locator("h1").inner_text().startswith(fix_first[0])
    problems.assert_none()
