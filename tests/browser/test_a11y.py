"""Every page at a desktop (1280 px) and a phone (390 px) width: axe-core finds no
serious or critical violation, nothing overflows the page sideways, the key columns of a
list are on screen, the navigation is collapsed on the phone, no console error; a
full-page screenshot of each (artifacts/screenshots/<page>-<width>.png) and the
overview's first screen kept as docs/overview.png."""

import json
from pathlib import Path

import pytest

from tests.browser.axe import report, serious_violations
from tests.browser.conftest import SCREENSHOTS, PageProblems, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {1280: 900, 390: 844}
AXE_RESULTS = SCREENSHOTS.parent / "axe"
DOCS_OVERVIEW = Path(__file__).resolve().parents[2] / "docs" / "overview.png"


def _first_link(page, base, path, selector):
    page.goto(f"{base}{path}")
    return page.locator(selector).first.get_attribute("href")


def _test_page(page, base):
    from events.models import TestCase

    test = (
        TestCase.objects.filter(status="FLAKY", investigations__isnull=False, monitor_events__isnull=False)
        .order_by("name", "id")
        .first()
    )
    return f"/tests/{test.pk}/"


def _admin_test_page(page, base):
    return _test_page(page, base).replace("/tests/", "/admin/events/testcase/") + "change/"


# page name -> path, or a function (page, base url) giving the path
PAGES = {
    "overview": "/?period=all",
    "tests": "/tests/",
    "test": _test_page,
    "codeowners": "/codeowners/?period=all",
    "codeowner": lambda p, b: _first_link(p, b, "/codeowners/?period=all", "table a[href^='/codeowners/']"),
    "monitors": "/monitors/?period=all",
    "investigations": "/investigations/?period=all",
    "deliveries": "/deliveries/",
    "quarantine": "/quarantine/",
    "digest": "/digest/",
    "delivery": lambda p, b: _first_link(p, b, "/deliveries/", "#table tbody a[href^='/deliveries/']"),
    "api-docs": "/api/docs/",
    "login": "/accounts/login/",
    "admin": "/admin/",
    "admin-tests": "/admin/events/testcase/",
    "admin-test": _admin_test_page,
    "admin-deliveries": "/admin/events/delivery/",
}
# On a phone, these column headers must be on screen without scrolling sideways.
KEY_COLUMNS = {
    "tests": ["Test", "Status", "Since"],
    "codeowners": ["Owner", "Flaky", "Broken"],
    "codeowner": ["Test", "Status", "Since"],
    "deliveries": ["Delivery", "Outcome"],
    "admin-tests": ["Test", "Status", "Since"],
    "admin-deliveries": ["Svix id", "Outcome"],
    "investigations": ["Test"],
    "monitors": ["Test", "Status"],
}


def _settle(page, name):
    page.wait_for_load_state("networkidle")
    if name == "api-docs":
        page.wait_for_selector(".opblock", timeout=15_000)
    page.wait_for_function(
        "[...document.querySelectorAll('[data-chart]')].every(el => el.dataset.drawn)", timeout=15_000
    )


def _columns_off_screen(page, headers, width):
    off = []
    for text in headers:
        header = page.locator("table thead th", has_text=text).first
        box = header.bounding_box()
        if box is None or box["x"] < 0 or box["x"] + min(box["width"], 40) > width:
            off.append(f"{text} at {box}")
    return off


def _nav_open(page):
    """Whether the main navigation's links show at once (not folded behind a toggle)."""
    links = page.locator("nav[aria-label=Main] a")
    return links.count() > 0 and all(links.nth(i).is_visible() for i in range(links.count()))


@pytest.mark.parametrize("name", list(PAGES))
def test_page_is_accessible_at_both_widths(browser, demo_site, name):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = PageProblems(page, demo_site)
    if name != "login":
        page.goto(f"{demo_site}/accounts/login/")
        page.fill("input[name=username]", "viewer")
        page.fill("input[name=password]", "browser-pw")
        page.click("button[type=submit]")
        page.wait_for_url(f"{demo_site}/")
    target = PAGES[name]
    path = target if isinstance(target, str) else target(page, demo_site)
    failures, measured = [], {}
    for width, height in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{demo_site}{path}")
        _settle(page, name)
        violations = serious_violations(page)
        measured[width] = {v.rule: len(v.nodes) for v in violations}
        if violations:
            failures.append(f"axe at {width} px:\n{report(violations)}")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 1:
            failures.append(f"{overflow} px of horizontal overflow at {width} px")
        if width == 1280 and page.locator("#changelist .results").count():
            cut = page.evaluate(
                "(e => e.scrollWidth - e.clientWidth)(document.querySelector('#changelist .results'))"
            )
            if cut > 1:
                failures.append(f"the admin list is cut off by {cut} px at {width} px")
        if width < 700:
            if name in KEY_COLUMNS and (off := _columns_off_screen(page, KEY_COLUMNS[name], width)):
                failures.append(f"key columns off screen at {width} px: {off}")
            if page.locator("nav[aria-label=Main]").count() and _nav_open(page):
                failures.append(f"navigation not collapsed at {width} px")
        screenshot(page, f"{name}-{width}")
        if name == "overview" and width == 1280:
            page.screenshot(path=str(DOCS_OVERVIEW))
    AXE_RESULTS.mkdir(parents=True, exist_ok=True)
    (AXE_RESULTS / f"{name}.json").write_text(json.dumps(measured, indent=1))
    context.close()
    assert not failures, "\n".join(failures)
    problems.assert_none()
