"""`impact` on /api/v1/test-cases/ and `sort=-impact` (issue 14, "Fix first"): the score of
docs/metrics.md, the same order as the overview and the tests page, documented, read-only."""

import json

import pytest

from dashboard.selectors.tests import fix_first
from tests.events.impact_data import EXPECTED, FIX_FIRST_ORDER, build

pytestmark = pytest.mark.django_db
URL = "/api/v1/test-cases/"


def test_impact_field_is_the_documented_score(api):
    data = build()
    rows = {row["name"]: row for row in api.get(URL).json()["results"]}
    assert {key: rows[test.name]["impact"] for key, test in data.tests.items()} == EXPECTED
    broken = data.tests["broken_old"]
    assert api.get(f"{URL}{broken.id}/").json()["impact"] == 39.4


@pytest.mark.parametrize("param", ["sort", "ordering"])
def test_sort_by_impact_matches_the_overview(api, param):
    data = build()
    overview = [t.name for t in fix_first()]
    assert overview == [data.tests[key].name for key in FIX_FIRST_ORDER]
    response = api.get(URL, {param: "-impact"})
    assert response.status_code == 200, response.content
    names = [row["name"] for row in response.json()["results"]]
    assert names == [*overview, data.tests["healthy"].name]
    ascending = [row["name"] for row in api.get(URL, {param: "IMPACT"}).json()["results"]]
    assert ascending == list(reversed(names))


def test_impact_can_be_filtered_and_sorted_together(api):
    data = build()
    response = api.get(URL, {"sort": "-impact", "status": "flaky"})
    names = [row["name"] for row in response.json()["results"]]
    assert names == [data.tests["flaky_relapsing"].name, data.tests["flaky_new"].name]


def test_impact_is_read_only(triage_api):
    data = build()
    test = data.tests["flaky_new"]
    response = triage_api.patch(
        f"{URL}{test.id}/", data=json.dumps({"impact": 99}), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["impact"] == ["This field is read-only."]


def test_impact_is_documented_in_the_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    impact = schema["components"]["schemas"]["TestCase"]["properties"]["impact"]
    assert impact["type"] == "number" and impact["readOnly"] is True
    assert "impact = Q x (S + P + 20 x R + 0.5 x min(D, 60) + 5 x N)" in impact["description"]
    sort = next(p for p in schema["paths"][URL]["get"]["parameters"] if p["name"] == "sort")
    assert "-impact" in sort["schema"]["enum"] and "impact score" in sort["description"]
