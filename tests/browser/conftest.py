"""Browser tests: Playwright driving the system Chromium (Debian's package; Playwright
cannot download a browser here) against a live server with demo data.

Without /usr/bin/chromium these tests skip with a reason, except when
FLAKYBOARD_REQUIRE_BROWSER is set (CI sets it), where they fail instead.
Screenshots go to artifacts/screenshots/ (git-ignored).
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("FLAKYBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "browser-pw"

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# around it are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    if os.environ.get("FLAKYBOARD_REQUIRE_BROWSER"):
        return  # the browser fixture fails loudly instead
    skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"FLAKYBOARD_REQUIRE_BROWSER is set but Chromium is missing at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems:
    """Console errors (CSP violations included) and failed requests seen by a page."""

    def __init__(self, page, base_url: str):
        self.errors: list[str] = []
        page.on(
            "console",
            lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on(
            "requestfailed",
            lambda r: (
                self.errors.append(f"request failed: {r.url} {r.failure}")
                if r.url.startswith(base_url) and "net::ERR_ABORTED" not in (r.failure or "")
                else None
            ),
        )
        page.on(
            "response",
            lambda r: self.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )

    def assert_none(self):
        assert not self.errors, "\n".join(self.errors)


@pytest.fixture
def demo_site(live_server, load_demo, django_user_model):
    load_demo(tests=40, days=60, repositories=3)
    django_user_model.objects.create_user("viewer", password=PASSWORD, is_staff=True, is_superuser=True)
    return live_server.url


@pytest.fixture
def logged_in(browser, demo_site):
    """(page, problems, base_url) for a staff user logged in through the login form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = PageProblems(page, demo_site)
    page.goto(f"{demo_site}/accounts/login/")
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{demo_site}/")
    yield page, problems, demo_site
    context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
