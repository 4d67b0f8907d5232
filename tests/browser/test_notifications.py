"""The weekly digest page and the subscription admin in a real browser.

The digest needs a history that ends now (the shared demo ends at a fixed date, weeks
ago): the same generated demo, with `now` the real now. With FLAKYBOARD_SCREENSHOTS=1 the
digest's full page is kept as docs/digest.png."""

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import PASSWORD, PageProblems, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS_DIGEST = Path(__file__).resolve().parents[2] / "docs" / "digest.png"
DESTINATION = "json://127.0.0.1:9/x"


@pytest.fixture
def recent_site(live_server, django_user_model):
    """The demo history (40 tests, 60 days, 3 repositories) ending now, and a superuser."""
    from events import demo
    from tests.events.factories import deliver

    messages = demo.generate_history(now=datetime.now(UTC), tests=40, days=60, seed=7, repositories=3)
    for msg_id, payload in demo.plan_deliveries(messages, seed=7, id_prefix="msg_recent_"):
        deliver(json.dumps(payload), msg_id=msg_id)
    django_user_model.objects.create_user("viewer", password=PASSWORD, is_staff=True, is_superuser=True)
    return live_server.url


@pytest.fixture
def session(browser, recent_site):
    """(page, problems, base_url) for the superuser, logged in through the login form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = PageProblems(page, recent_site)
    page.goto(f"{recent_site}/accounts/login/")
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{recent_site}/")
    yield page, problems, recent_site
    context.close()


def test_digest_sections_owner_filter_and_a_test_link(session):
    page, problems, base = session
    page.goto(f"{base}/digest/")
    assert page.locator("h1").inner_text().startswith("Weekly digest")
    assert "every test" in page.locator("h1 small").inner_text()
    assert page.locator(".cards .card.stat").count() == 8
    for heading in ("#digest-new-heading", "#digest-open-heading", "#digest-ready-heading"):
        assert page.locator(heading).is_visible(), heading
    # A real week: tests turned flaky or broken in the last 7 days.
    new_rows = page.locator("section[aria-labelledby=digest-new-heading] tbody tr")
    assert new_rows.count() > 0
    assert int(page.locator(".cards .card.stat .value").first.inner_text().replace(",", "")) > 0
    if os.environ.get("FLAKYBOARD_SCREENSHOTS"):
        page.screenshot(path=str(DOCS_DIGEST), full_page=True)
    screenshot(page, "digest")

    # The owner filter: one owner's digest, chosen in the form.
    options = page.locator("form.filterbar select[name=owner] option:not([value=''])")
    assert options.count() > 0
    owner = options.first.get_attribute("value")
    owner_name = options.first.inner_text().strip()
    page.select_option("form.filterbar select[name=owner]", owner)
    page.locator("form.filterbar button[type=submit]").click()
    page.wait_for_url("**/digest/?*owner=*")
    assert parse_qs(urlsplit(page.url).query)["owner"] == [owner]
    assert page.locator("form.filterbar select[name=owner]").input_value() == owner
    assert owner_name in page.locator("h1 small").inner_text()
    screenshot(page, "digest-owner")

    # An unknown owner: a clear empty state, not an error.
    page.goto(f"{base}/digest/?owner=nobody-at-all")
    assert "No owner named" in page.locator("p.empty").first.inner_text()

    # A test link leads to the test's page.
    page.goto(f"{base}/digest/")
    link = page.locator("section.card.section tbody a[href^='/tests/']").first
    name = link.inner_text().strip()
    link.click()
    page.wait_for_url("**/tests/*-*/**")
    assert name in page.locator("h1").inner_text()
    problems.assert_none()


def test_subscription_admin_hides_the_destination_and_sends_a_test(session):
    from notifications.models import Subscription

    page, problems, base = session
    page.goto(f"{base}/admin/notifications/subscription/add/")
    page.fill("input[name=name]", "Acme team")
    page.fill("input[name=destination_url]", DESTINATION)
    page.fill("textarea[name=owners], input[name=owners]", "@acme/*")
    page.locator("input[name=triggers]").first.check()
    page.click("input[name=_continue]")
    page.wait_for_url("**/admin/notifications/subscription/*/change/**")
    assert page.locator(".messagelist .success").count() == 1
    subscription = Subscription.objects.get(name="Acme team")
    assert subscription.destination == DESTINATION
    assert subscription.owner_patterns() == ["@acme/*"]

    # The change page: only a masked hint of the destination, never the URL itself.
    html = page.content()
    assert DESTINATION not in html
    assert "127.0.0.1:9/x" not in html
    assert page.locator("input[name=destination_url]").input_value() == ""
    help_text = page.locator(".field-destination_url .help, .field-destination_url .helptext").first
    assert "Now: json://" in help_text.inner_text()
    screenshot(page, "subscription-change")

    # A malformed destination: an error, nothing saved.
    page.fill("input[name=destination_url]", "notaurl")
    page.click("input[name=_continue]")
    page.wait_for_load_state()
    error = page.locator(".field-destination_url .errorlist, .errornote").first
    assert error.is_visible()
    field_errors = page.locator(".field-destination_url .errorlist").inner_text()
    assert "Not a destination apprise understands" in field_errors
    assert "notaurl" not in field_errors
    subscription.refresh_from_db()
    assert subscription.destination == DESTINATION
    screenshot(page, "subscription-bad-destination")

    # The admin action "Send a test message".
    page.goto(f"{base}/admin/notifications/subscription/")
    page.locator(f"input.action-select[value='{subscription.pk}']").check()
    page.select_option("select[name=action]", "send_test_message")
    page.click("button[name=index]")
    page.wait_for_load_state()
    # Nothing listens on port 9: the outcome shows at once, without the secret URL.
    failure = page.locator(".messagelist .error")
    assert "the test message did not arrive" in failure.inner_text()
    assert subscription.messages.filter(kind="test").count() == 1
    assert DESTINATION not in page.content()
    problems.assert_none()
