"""With no data yet, the pages tell how to connect Trunk: the webhook URL built from the
request, the secret's environment variable and Trunk's webhook docs (issue 14)."""

import pytest

from events.models import TestCase

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/tests/",
    "/codeowners/",
    "/monitors/",
    "/investigations/",
    "/deliveries/",
    "/quarantine/",
    "/digest/",
]
DOCS = "https://docs.trunk.io/flaky-tests/webhooks"


@pytest.mark.parametrize("page", PAGES)
def test_empty_page_shows_how_to_connect_trunk(staff_client, page):
    body = staff_client.get(page).content.decode()
    assert "Connect Trunk" in body
    assert '<code class="webhook-url">http://testserver/webhooks/trunk/</code>' in body
    assert "<code>TRUNK_WEBHOOK_SECRET</code>" in body
    assert f'href="{DOCS}"' in body
    assert body.count("Connect Trunk") == 1


def test_the_webhook_url_follows_the_request(staff_client, settings):
    settings.ALLOWED_HOSTS = ["flaky.example.com", "testserver"]
    body = staff_client.get("/", secure=True, headers={"host": "flaky.example.com"}).content.decode()
    assert '<code class="webhook-url">https://flaky.example.com/webhooks/trunk/</code>' in body


def test_the_webhook_url_is_the_receivers(client):
    """The address shown is the one the receiver answers on."""
    response = client.post("/webhooks/trunk/", data=b"{}", content_type="application/json")
    assert response.status_code == 400  # reached the receiver: no signature headers


@pytest.mark.parametrize("page", PAGES)
def test_pages_with_data_show_no_set_up_hint(staff_client, load_demo, page):
    load_demo(tests=5, days=10)
    assert TestCase.objects.exists()
    body = staff_client.get(page, {"period": "7d"}).content.decode()
    assert "Connect Trunk" not in body and DOCS not in body
