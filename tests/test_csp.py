"""The Content-Security-Policy header (django-csp, CONTENT_SECURITY_POLICY in settings): the
same directives on a dashboard page, the admin, the API docs and the error pages."""

import re

import pytest
from django.test import Client
from django.urls import path

# Directive -> sources. django-csp writes the directives in no fixed order.
EXPECTED = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def directives(response) -> dict[str, list[str]]:
    assert "Content-Security-Policy" in response, f"no CSP header on {response.status_code} response"
    parts = [part.split() for part in response["Content-Security-Policy"].split(";") if part.strip()]
    policy = {name: sources for name, *sources in parts}
    assert len(policy) == len(parts), "a directive is repeated"
    return policy


def boom(request):
    raise RuntimeError("an error page must carry the policy too")


urlpatterns = [path("boom/", boom)]

# admin_client: pytest-django's logged-in superuser.


@pytest.mark.parametrize("url", ["/", "/tests/", "/admin/", "/admin/events/testcase/", "/api/docs/"])
def test_pages_carry_the_policy(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 200
    assert directives(response) == EXPECTED


def test_api_docs_work_under_the_policy(admin_client):
    """Swagger UI's page runs no inline script: its start-up code is the split view's
    script file (?script), from this origin like its bundle; its <style> is allowed."""
    page = admin_client.get("/api/docs/")
    html = page.content.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all('src="/' in attributes for attributes in scripts), scripts
    start_up = re.search(r'<script src="(/api/docs/\?script[^"]*)"', html)
    assert start_up, html
    script = admin_client.get(start_up.group(1).replace("&amp;", "&"))
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()
    assert directives(script) == EXPECTED


@pytest.mark.django_db
def test_login_page_and_error_pages_carry_the_policy(settings):
    client = Client(raise_request_exception=False)
    assert directives(client.get("/accounts/login/")) == EXPECTED
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    assert directives(missing) == EXPECTED
    api_missing = client.get("/api/no-such-endpoint/")
    assert api_missing.status_code == 404
    assert directives(api_missing) == EXPECTED
    settings.ROOT_URLCONF = __name__
    error = client.get("/boom/")
    assert error.status_code == 500
    assert directives(error) == EXPECTED
