"""Who may do what: tokens and sessions, the public-dashboard switch, triage and staff
rules, throttling, JSON errors for unknown URLs, page-number pagination."""

import io
import json
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.models import Investigation, TestCase
from events.triage import set_verdict, triage_test

from .conftest import build_tests

pytestmark = pytest.mark.django_db

READ_URLS = [
    "/api/v1/",
    "/api/v1/repositories/",
    "/api/v1/test-cases/",
    "/api/v1/status-changes/",
    "/api/v1/monitor-events/",
    "/api/v1/monitors/",
    "/api/v1/investigations/",
    "/api/v1/quarantine-changes/",
    "/api/v1/stats/summary/",
    "/api/v1/stats/status-trend/",
    "/api/v1/stats/codeowners/",
    "/api/v1/stats/monitors/",
    "/api/v1/stats/confidence/",
    "/api/v1/stats/calibration/",
    "/api/v1/stats/fixes/",
    "/api/v1/stats/targets/",
    "/api/v1/triage-events/",
]


@pytest.mark.parametrize("url", READ_URLS + ["/api/v1/deliveries/"])
def test_anonymous_gets_401_with_a_token_challenge(db, anon, url):
    response = anon.get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("url", READ_URLS)
def test_public_dashboard_opens_reads_to_anonymous(history, anon, settings, url):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    assert anon.get(url).status_code == 200


def test_public_dashboard_names_no_triager_to_anonymous_readers(history, anon, api, settings):
    """Staff account names are internal: the authors of triage changes and verdicts are
    null for anonymous readers of a public dashboard, named for signed-in readers."""
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    zed = User.objects.create_user("zed-the-triager", is_staff=True)
    t1 = TestCase.objects.get(pk=history["t1"].id)
    triage_test(t1, by=zed, state="investigating")
    set_verdict(Investigation.objects.get(test_case=t1), by=zed, verdict="confirmed")
    urls = ("/api/v1/triage-events/", f"/api/v1/test-cases/{t1.pk}/triage-history/")
    for url in urls:
        rows = anon.get(url).json()["results"]
        assert len(rows) == 2 and {row["by_username"] for row in rows} == {None}
        assert "zed-the-triager" not in anon.get(url).content.decode()
        assert {row["by_username"] for row in api.get(url).json()["results"]} == {"zed-the-triager"}
    investigations = f"/api/v1/test-cases/{t1.pk}/investigations/"
    assert [row["verdict_by"] for row in anon.get(investigations).json()["results"]] == [None]
    assert "zed-the-triager" not in anon.get(investigations).content.decode()
    assert [row["verdict_by"] for row in api.get(investigations).json()["results"]] == ["zed-the-triager"]


def test_public_dashboard_opens_neither_writes_nor_deliveries(history, anon, settings):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    response = anon.patch(f"/api/v1/test-cases/{history['t1'].id}/", {"triage_state": "fixed"}, format="json")
    assert response.status_code == 401
    assert anon.get("/api/v1/deliveries/").status_code == 401
    assert TestCase.objects.get(pk=history["t1"].id).triage_state == "new"


@pytest.mark.parametrize("url", READ_URLS)
def test_any_authenticated_user_reads(history, api, url):
    assert api.get(url).status_code == 200


def test_bad_token_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = client.get("/api/v1/test-cases/")
    assert response.status_code == 401 and response.json() == {"detail": "Invalid token."}


def test_inactive_users_token_is_401(db, reader, api):
    reader.is_active = False
    reader.save()
    assert api.get("/api/v1/test-cases/").status_code == 401


def test_token_from_drf_create_token_works(db, reader):
    out = io.StringIO()
    call_command("drf_create_token", "reader", stdout=out)
    key = Token.objects.get(user=reader).key
    assert key in out.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/test-cases/").status_code == 200


def test_session_authentication_for_the_browsable_api(history, client, reader):
    client.force_login(reader)
    assert client.get("/api/v1/test-cases/", HTTP_ACCEPT="application/json").status_code == 200
    page = client.get("/api/v1/test-cases/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"test_case_1" in page.content


def test_session_writes_need_csrf(history, reader):
    reader.is_staff = True
    reader.save()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(reader)
    response = client.patch(
        f"/api/v1/test-cases/{history['t1'].id}/", {"triage_state": "fixed"}, format="json"
    )
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_triage_needs_staff_or_the_change_permission(history, api, triage_api, staff_api):
    url = f"/api/v1/test-cases/{history['t1'].id}/"
    response = api.patch(url, {"triage_state": "fixed"}, format="json")
    assert response.status_code == 403
    assert "permission" in response.json()["detail"]
    assert triage_api.patch(url, {"triage_state": "fixed"}, format="json").status_code == 200
    assert staff_api.patch(url, {"triage_state": "wont_fix"}, format="json").status_code == 200
    superuser = User.objects.create_superuser("root")
    client = APIClient()
    client.force_authenticate(superuser)
    assert client.patch(url, {"triage_note": "ok"}, format="json").status_code == 200
    assert TestCase.objects.get(pk=history["t1"].id).triage_note == "ok"


def test_deliveries_are_staff_only(history, api, triage_api, staff_api):
    assert api.get("/api/v1/deliveries/").status_code == 403
    assert triage_api.get("/api/v1/deliveries/").status_code == 403
    assert api.get("/api/v1/deliveries/1/").status_code == 403
    assert staff_api.get("/api/v1/deliveries/").status_code == 200


def test_throttling_anonymous_and_users(history, settings, reader, anon):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/minute", "user": "5/minute"},
    }
    statuses = [anon.get("/api/v1/repositories/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = anon.get("/api/v1/repositories/")
    assert int(throttled["Retry-After"]) > 0 and "throttled" in throttled.json()["detail"]
    client = APIClient()
    client.force_authenticate(reader)
    assert [client.get("/api/v1/repositories/").status_code for _ in range(6)] == [200] * 5 + [429]


def test_throttle_rate_setting_is_validated(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from flakyboard.settings import _throttle_rate

    assert _throttle_rate("X", "100/minute") == "100/minute"
    assert _throttle_rate("X", " off ") is None
    with pytest.raises(ImproperlyConfigured, match="X="):
        _throttle_rate("X", "lots")


# ---------------------------------------------------------------- unknown URLs and methods


@pytest.mark.parametrize(
    "url",
    [
        "/api/",
        "/api/v1/nothing/",
        "/api/v2/test-cases/",
        "/api/v1/test-cases/x/y/z/",
        "/api/v1/test-cases/%0Ax/status-changes/",
    ],
)
def test_unknown_api_urls_are_json_404(db, api, url):
    response = api.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


def test_api_root_links_every_endpoint(db, api):
    links = api.get("/api/v1/").json()
    assert links["test-cases"] == "http://testserver/api/v1/test-cases/"
    assert links["stats/status-trend"] == "http://testserver/api/v1/stats/status-trend/"
    assert set(links) == {
        "repositories",
        "test-cases",
        "status-changes",
        "monitor-events",
        "monitors",
        "investigations",
        "quarantine-changes",
        "triage-events",
        "deliveries",
        "subscriptions",
        "stats/summary",
        "stats/status-trend",
        "stats/codeowners",
        "stats/monitors",
        "stats/confidence",
        "stats/quarantine",
        "stats/calibration",
        "stats/fixes",
        "stats/targets",
    }
    for url in links.values():
        assert api.get(url).status_code in (200, 403)  # deliveries: staff only


def test_missing_trailing_slash_redirects_with_the_query(db, api):
    response = api.get("/api/v1/test-cases", {"status": "FLAKY"})
    assert response.status_code == 301 and response["Location"] == "/api/v1/test-cases/?status=FLAKY"


def test_unknown_url_patch_is_json_404_not_a_csrf_page(db, reader):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(reader)
    response = client.patch("/api/v1/test-cases/0.5/", {"triage_state": "new"}, format="json")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


def test_writes_to_read_only_endpoints_are_405(history, staff_api):
    assert staff_api.post("/api/v1/status-changes/", {}, format="json").status_code == 405
    assert staff_api.delete(f"/api/v1/investigations/{uuid.UUID(int=501)}/").status_code == 405
    assert staff_api.post("/api/v1/stats/summary/", {}, format="json").status_code == 405


# ---------------------------------------------------------------- page-number pagination


def test_page_number_pagination(db, api):
    build_tests(7)
    body = api.get("/api/v1/test-cases/", {"page_size": 3, "sort": "name"}).json()
    assert body["count"] == 7 and len(body["results"]) == 3 and body["previous"] is None
    walked = [r["name"] for r in body["results"]]
    while body["next"]:
        body = api.get(body["next"]).json()
        walked += [r["name"] for r in body["results"]]
    assert walked == sorted(walked) and len(set(walked)) == 7
    last = api.get("/api/v1/test-cases/", {"page_size": 3, "page": "last"}).json()
    assert len(last["results"]) == 1
    past = api.get("/api/v1/test-cases/", {"page_size": 3, "page": 4})
    assert past.status_code == 404 and past.json() == {"detail": "Invalid page."}


def test_page_size_default_and_maximum(db, api):
    build_tests(3)
    TestCase.objects.bulk_create(
        [
            TestCase(
                id=uuid.UUID(int=10_000 + i),
                name=f"bulk_{i:03}",
                attributes_at="2026-05-01T00:00:00Z",
                first_event_at="2026-05-01T00:00:00Z",
                last_event_at="2026-05-01T00:00:00Z",
            )
            for i in range(250)
        ]
    )
    assert len(api.get("/api/v1/test-cases/").json()["results"]) == 50
    assert len(api.get("/api/v1/test-cases/", {"page_size": 500}).json()["results"]) == 200
    assert len(api.get("/api/v1/test-cases/", {"page_size": 10}).json()["results"]) == 10


def test_every_timestamp_is_iso_8601_utc_with_zone(history, api):
    body = json.dumps(
        [api.get(url).json() for url in READ_URLS]
        + [api.get(f"/api/v1/test-cases/{history['t1'].id}/timeline/").json()]
    )
    import re

    stamps = re.findall(r'"(\d{4}-\d{2}-\d{2}T[^"]*)"', body)
    assert stamps and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", s) for s in stamps), (
        stamps
    )
