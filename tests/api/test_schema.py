"""The OpenAPI schema: valid without warnings (as CI runs it), served, every filter and
error documented; Swagger UI served from the app's own static files."""

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command

from api import filters, triage_filters

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_spectacular_validate_fail_on_warn_passes(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    document = yaml.safe_load(out.read_text())
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "flakyboard API" and document["info"]["version"] == "1.0.0"


def test_schema_is_served_without_authentication(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert yaml.safe_load(response.content)["paths"]


EXPECTED_PATHS = {
    "/api/v1/repositories/": ["get"],
    "/api/v1/repositories/{id}/": ["get"],
    "/api/v1/test-cases/": ["get"],
    "/api/v1/test-cases/{id}/": ["get", "patch"],
    "/api/v1/test-cases/{id}/timeline/": ["get"],
    "/api/v1/test-cases/{test_case_id}/status-changes/": ["get"],
    "/api/v1/test-cases/{test_case_id}/monitor-events/": ["get"],
    "/api/v1/test-cases/{test_case_id}/investigations/": ["get"],
    "/api/v1/test-cases/{test_case_id}/quarantine-changes/": ["get"],
    "/api/v1/test-cases/{test_case_id}/triage-history/": ["get"],
    "/api/v1/status-changes/": ["get"],
    "/api/v1/monitor-events/": ["get"],
    "/api/v1/monitors/": ["get"],
    "/api/v1/monitors/{id}/": ["get"],
    "/api/v1/investigations/": ["get"],
    "/api/v1/investigations/{id}/": ["get"],
    "/api/v1/investigations/{id}/verdict/": ["patch", "put"],
    "/api/v1/quarantine-changes/": ["get"],
    "/api/v1/triage-events/": ["get"],
    "/api/v1/deliveries/": ["get"],
    "/api/v1/deliveries/{id}/": ["get"],
    "/api/v1/subscriptions/": ["get"],
    "/api/v1/subscriptions/{id}/": ["get"],
    "/api/v1/stats/summary/": ["get"],
    "/api/v1/stats/status-trend/": ["get"],
    "/api/v1/stats/codeowners/": ["get"],
    "/api/v1/stats/monitors/": ["get"],
    "/api/v1/stats/confidence/": ["get"],
    "/api/v1/stats/quarantine/": ["get"],
    "/api/v1/stats/calibration/": ["get"],
    "/api/v1/stats/fixes/": ["get"],
    "/api/v1/stats/targets/": ["get"],
}


def test_every_endpoint_is_documented(schema):
    assert {path: sorted(ops) for path, ops in schema["paths"].items()} == EXPECTED_PATHS


def query_parameters(schema, path, method="get") -> dict[str, dict]:
    return {p["name"]: p for p in schema["paths"][path][method]["parameters"] if p["in"] == "query"}


@pytest.mark.parametrize(
    ("path", "filterset", "paging"),
    [
        ("/api/v1/test-cases/", filters.TestCaseFilterSet, {"page", "page_size"}),
        ("/api/v1/status-changes/", filters.StatusChangeFilterSet, {"cursor", "page_size"}),
        (
            "/api/v1/test-cases/{test_case_id}/status-changes/",
            filters.StatusChangeFilterSet,
            {"cursor", "page_size"},
        ),
        ("/api/v1/monitor-events/", filters.MonitorEventFilterSet, {"cursor", "page_size"}),
        ("/api/v1/investigations/", filters.InvestigationFilterSet, {"cursor", "page_size"}),
        ("/api/v1/quarantine-changes/", filters.QuarantineChangeFilterSet, {"cursor", "page_size"}),
        ("/api/v1/triage-events/", triage_filters.TriageEventFilterSet, {"cursor", "page_size"}),
        ("/api/v1/deliveries/", filters.DeliveryFilterSet, {"cursor", "page_size"}),
        ("/api/v1/monitors/", filters.MonitorFilterSet, {"page", "page_size"}),
    ],
)
def test_every_filter_is_documented_with_a_description(schema, path, filterset, paging):
    parameters = query_parameters(schema, path)
    assert set(parameters) == set(filterset.base_filters) | paging
    for name in filterset.base_filters:
        assert parameters[name].get("description"), name
        assert parameters[name]["allowEmptyValue"] is True


def test_parameter_types_are_precise(schema):
    tests = query_parameters(schema, "/api/v1/test-cases/")
    assert tests["status"]["schema"]["enum"] == ["BROKEN", "FLAKY", "HEALTHY"]
    assert tests["quarantined"]["schema"] == {"type": "boolean"}
    assert set(tests["triage"]["schema"]["enum"]) == {"new", "investigating", "fixed", "wont_fix"}
    assert set(tests["sort"]["schema"]["enum"]) == {
        "name",
        "-name",
        "status",
        "-status",
        "status_since",
        "-status_since",
        "failure_rate",
        "-failure_rate",
        "prs_impacted",
        "-prs_impacted",
        "impact",
        "-impact",
    }
    assert tests["repository"]["schema"] == filters.REPOSITORY_SCHEMA
    assert tests["changed_since"]["schema"] == filters.MOMENT_SCHEMA
    assert set(query_parameters(schema, "/api/v1/status-changes/")["period"]["schema"]["enum"]) == {
        "7d",
        "30d",
        "90d",
        "all",
    }
    stats = query_parameters(schema, "/api/v1/stats/summary/")
    assert set(stats) == {"period", "repository"}
    assert stats["period"]["schema"]["default"] == "30d"


def test_error_responses_are_documented(schema):
    def codes(path, method="get"):
        return set(schema["paths"][path][method]["responses"])

    assert codes("/api/v1/test-cases/") == {"200", "400", "401", "404", "429"}
    assert codes("/api/v1/test-cases/{id}/", "patch") == {"200", "400", "401", "403", "404", "429"}
    assert codes("/api/v1/status-changes/") == {"200", "400", "401", "429"}
    assert codes("/api/v1/deliveries/") == {"200", "400", "401", "403", "429"}
    assert codes("/api/v1/stats/summary/") == {"200", "400", "401", "429"}
    assert codes("/api/v1/test-cases/{id}/timeline/") == {"200", "401", "404", "429"}
    assert "Error" in schema["components"]["schemas"]


def test_triage_request_documents_only_triage_fields(schema):
    body = schema["components"]["schemas"]["PatchedTriageRequest"]
    assert set(body["properties"]) == {"triage_state", "assignee", "triage_note"}
    assert body["additionalProperties"] is False
    content = schema["paths"]["/api/v1/test-cases/{id}/"]["patch"]["requestBody"]["content"]
    assert list(content) == ["application/json"]


def test_token_and_session_auth_are_documented(schema):
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}


def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/static/") or s.startswith("/api/") for s in sources), sources
    assert "cdn" not in html.lower()
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source


def test_html_urls_are_strings_or_null_and_the_triage_note_is_bounded(schema):
    components = schema["components"]["schemas"]
    for component in ("TestCase", "RepositoryBrief", "Repository"):
        html_url = components[component]["properties"]["html_url"]
        # No `format: uri`: the text is the sender's, unchecked (a test's URL may be anything).
        assert (html_url["type"], html_url.get("format"), html_url.get("nullable")) == ("string", None, True)
    assert components["PatchedTriageRequest"]["properties"]["triage_note"]["maxLength"] == 10_000
