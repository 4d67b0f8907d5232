"""No query per row: every endpoint runs the same, fixed number of queries on 3 tests and
on 30 tests (with several events each), with every row on one page.

The budgets include the token lookup (one query). They are exact today; a change that
adds a query per row would make the two sizes differ, and one that adds a fixed query
must raise the budget here on purpose.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import Delivery, TestCase

from .conftest import build_tests

pytestmark = pytest.mark.django_db

ALL = {"page_size": 200}
# (url, params, budget). {test} is replaced by a test id, {repo} by a repository id.
ENDPOINTS = [
    ("/api/v1/repositories/", ALL, 3),
    ("/api/v1/repositories/{repo}/", {}, 2),
    ("/api/v1/test-cases/", ALL, 4),
    (
        "/api/v1/test-cases/",
        {**ALL, "repository": "{repo}", "status": "flaky", "owner": "@acme/team1", "quarantined": "false"},
        5,
    ),
    (
        "/api/v1/test-cases/",
        {**ALL, "owner": "none", "sort": "-status", "q": "test", "changed_since": "2026-01-01"},
        4,
    ),
    ("/api/v1/test-cases/", {**ALL, "assignee": "me", "triage": "new"}, 4),
    ("/api/v1/test-cases/{test}/", {}, 3),
    ("/api/v1/test-cases/{test}/timeline/", {}, 4),
    ("/api/v1/test-cases/{test}/status-changes/", ALL, 3),
    ("/api/v1/test-cases/{test}/monitor-events/", ALL, 3),
    ("/api/v1/test-cases/{test}/investigations/", ALL, 4),
    ("/api/v1/test-cases/{test}/quarantine-changes/", ALL, 3),
    ("/api/v1/status-changes/", ALL, 2),
    ("/api/v1/status-changes/", {**ALL, "repository": "{repo}", "owner": "@acme/team2", "period": "all"}, 3),
    ("/api/v1/monitor-events/", ALL, 2),
    ("/api/v1/monitors/", ALL, 3),
    ("/api/v1/investigations/", ALL, 3),
    ("/api/v1/investigations/", {**ALL, "band": "low", "fact_type": "GIT_BLAME", "confidence_min": "0.1"}, 3),
    ("/api/v1/quarantine-changes/", ALL, 2),
    ("/api/v1/deliveries/", ALL, 2),
    ("/api/v1/deliveries/", {**ALL, "outcome": "processed", "type": "test_case.investigation_completed"}, 2),
    ("/api/v1/stats/summary/", {"period": "all"}, 4),
    ("/api/v1/stats/summary/", {"period": "30d", "repository": "{repo}"}, 6),
    ("/api/v1/stats/status-trend/", {"period": "90d"}, 3),
    # "all": the owners' counts (quarantined included), the probe for episodes dated after
    # now; +1 when some owner has a fix (the middle rows). Bounded: 3 (counts, fixes,
    # relapses).
    ("/api/v1/stats/codeowners/", {"period": "all"}, 3),
    ("/api/v1/stats/codeowners/", {"period": "30d"}, 4),
    # "all": the probe for events dated after now, then the rollups. +1 when some pair
    # flaps (names of the top 20), +1 when some interval is resolved (the middle rows).
    ("/api/v1/stats/monitors/", {"period": "all"}, 7),
    ("/api/v1/stats/confidence/", {"period": "all"}, 4),
    # over all history: the probe for a judged investigation after now, the calibration
    # tally, the outcome tally and the last 14 days' outcomes (and the token); for a
    # period: verdicts per bin, per fact type and bin, the automatic outcome
    ("/api/v1/stats/calibration/", {"period": "all"}, 5),
    ("/api/v1/stats/calibration/", {"period": "30d", "repository": "{repo}"}, 5),  # + the repository
    # the counts (1 for a period; 2 over all history: the fix tally and the recent
    # episodes), the overall curve (2, the same; + the owner's curve), and the token
    ("/api/v1/stats/fixes/", {"period": "30d"}, 4),
    ("/api/v1/stats/fixes/", {"period": "all", "owner": "@acme/team1"}, 7),
    ("/api/v1/stats/fixes/", {"period": "all", "repository": "{repo}", "owner": "@acme/team1"}, 5),
]


def measure(client, test_id, repo_id) -> dict[int, int]:
    counts = {}
    for i, (url, params, _budget) in enumerate(ENDPOINTS):
        url = url.format(test=test_id, repo=repo_id)
        params = {k: str(v).format(test=test_id, repo=repo_id) for k, v in params.items()}
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, params)
        assert response.status_code == 200, (url, response.content)
        counts[i] = len(queries)
    return counts


def test_every_endpoint_runs_a_fixed_number_of_queries(staff, staff_api, django_assert_max_num_queries):
    tests = build_tests(3)
    TestCase.objects.update(assignee=staff)
    test_id, repo_id = tests[0].id, TestCase.objects.get(pk=tests[1].id).repository_id
    small = measure(staff_api, test_id, repo_id)
    build_tests(27, start=500)
    TestCase.objects.update(assignee=staff)
    assert TestCase.objects.count() == 30
    large = measure(staff_api, test_id, repo_id)
    report = {ENDPOINTS[i][0] + str(ENDPOINTS[i][1]): (small[i], large[i]) for i in small}
    assert all(small[i] == large[i] for i in small), {k: v for k, v in report.items() if v[0] != v[1]}
    for i, (url, params, budget) in enumerate(ENDPOINTS):
        with django_assert_max_num_queries(budget):
            staff_api.get(
                url.format(test=test_id, repo=repo_id),
                {k: str(v).format(test=test_id, repo=repo_id) for k, v in params.items()},
            )
        assert large[i] == budget, (url, params, large[i], budget)


def test_pages_really_hold_every_row(staff_api):
    build_tests(30)
    assert staff_api.get("/api/v1/test-cases/", ALL).json()["count"] == 30
    assert len(staff_api.get("/api/v1/investigations/", ALL).json()["results"]) == 30
    assert len(staff_api.get("/api/v1/deliveries/", ALL).json()["results"]) == Delivery.objects.count() == 130
