"""GET /api/v1/stats/quarantine/ and the test cases' quarantine fields: the dashboard's
quarantine figures (dashboard.selectors.quarantine) over HTTP, on the ledger's data."""

from datetime import timedelta

import pytest

from events.models import Repository, TestCase
from tests.dashboard.test_quarantine_page import OTHER_REPO, ledger  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

URL = "/api/v1/stats/quarantine/"


def test_quarantine_stats(api, ledger):  # noqa: F811
    body = api.get(URL).json()
    assert body["quarantined"] == 5 and body["ready_to_release"] == 2
    assert body["ready_to_release_healthy_days"] == 14
    # Ages 40, 30, 25, 20 and 10 days.
    assert abs(body["median_age_seconds"] - timedelta(days=25).total_seconds()) < 60
    assert body["owner"] is None and body["repository"] is None and body["period"] == "30d"


def test_repository_and_owner_filters(api, ledger):  # noqa: F811
    other = Repository.objects.get(html_url=OTHER_REPO.html_url)
    body = api.get(URL, {"repository": other.pk}).json()
    assert (body["quarantined"], body["ready_to_release"], body["repository"]) == (1, 1, other.pk)
    assert api.get(URL, {"repository": str(other.trunk_id)}).json()["quarantined"] == 1
    body = api.get(URL, {"owner": "@ACME/WEB"}).json()
    assert (body["quarantined"], body["ready_to_release"], body["owner"]) == (1, 0, "@acme/web")
    assert abs(body["median_age_seconds"] - timedelta(days=10).total_seconds()) < 60
    body = api.get(URL, {"owner": "none"}).json()
    assert body["quarantined"] == 1
    body = api.get(URL, {"owner": "@nobody"}).json()
    assert (body["quarantined"], body["median_age_seconds"], body["ready_to_release"]) == (0, None, 0)


def test_bad_parameters_are_400(api, ledger):  # noqa: F811
    assert api.get(URL, {"repository": "999999"}).status_code == 400
    assert api.get(URL, {"period": "1y"}).status_code == 400


def test_needs_authentication(client):
    assert client.get(URL).status_code in (401, 403)


def test_listed_on_the_api_root(api):
    assert api.get("/api/v1/").json()["stats/quarantine"].endswith(URL)


def test_query_count(api, ledger, django_assert_max_num_queries):  # noqa: F811
    # token, the counts, the middle since values
    with django_assert_max_num_queries(3):
        assert api.get(URL, {"owner": "@acme/web"}).status_code == 200


def test_test_cases_carry_quarantined_since(api, ledger):  # noqa: F811
    rows = {row["name"]: row for row in api.get("/api/v1/test-cases/", {"sort": "name"}).json()["results"]}
    assert rows["test_case_4"]["quarantined_since"] is None
    since = TestCase.objects.get(name="test_case_1").quarantined_since
    assert since is not None
    assert rows["test_case_1"]["quarantined_since"] == since.isoformat().replace("+00:00", "Z")


def test_quarantined_since_is_read_only(triage_api, ledger):  # noqa: F811
    test = TestCase.objects.get(name="test_case_1")
    response = triage_api.patch(f"/api/v1/test-cases/{test.pk}/", {"quarantined_since": None}, format="json")
    assert response.status_code == 400
    assert "quarantined_since" in response.json()


def test_ready_to_release_filter(api, ledger):  # noqa: F811
    def names(**params):
        rows = api.get("/api/v1/test-cases/", {"sort": "name", **params}).json()["results"]
        return [row["name"] for row in rows]

    assert names(ready_to_release="true") == ["test_case_1", "test_case_6"]
    assert names(ready_to_release="false") == ["test_case_2", "test_case_3", "test_case_4", "test_case_5"]
    other = Repository.objects.get(html_url=OTHER_REPO.html_url)
    assert names(ready_to_release="true", repository=other.pk) == ["test_case_6"]
    assert names(ready_to_release="true", owner="@acme/web") == []
    assert api.get("/api/v1/test-cases/", {"ready_to_release": "maybe"}).status_code == 400
