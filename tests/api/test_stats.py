"""The stats endpoints give the dashboard's numbers: the same dashboard.selectors functions,
checked once more end to end (HTTP, parameters, serialization) on the same data."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from dashboard.selectors import investigations as investigations_selectors
from dashboard.selectors import monitors as monitors_selectors
from dashboard.selectors import owners as owners_selectors
from dashboard.selectors import status as status_selectors
from events.metrics import Period
from events.models import Repository
from tests.events.factories import fake_test

from .conftest import change, investigation, monitor, quarantine

pytestmark = pytest.mark.django_db


@pytest.fixture
def recent():
    """The dashboard tests' history, moved to the last 40 days so that periods matter."""
    now = timezone.now().replace(microsecond=0)

    def ago(days: float):
        return now - timedelta(days=days)

    t1 = fake_test(1, codeowners=["@acme/web"])
    t2 = fake_test(2, codeowners=["@acme/web", "@acme/api"])
    t3 = fake_test(3, codeowners=[], quarantined=True)
    t4 = fake_test(4, codeowners=["@Acme/Web"])
    monitor(t1, ago(40), "resolved")
    change(t1, ago(38), "HEALTHY", "FLAKY")
    change(t1, ago(36), "FLAKY", "BROKEN")
    change(t1, ago(34), "BROKEN", "HEALTHY")
    change(t1, ago(5), "HEALTHY", "FLAKY")
    change(t2, ago(20), "HEALTHY", "FLAKY")
    change(t2, ago(3), "FLAKY", "HEALTHY")
    monitor(t3, ago(40), "resolved")
    quarantine(t3, ago(2))
    monitor(t4, ago(39), "resolved")
    change(t4, ago(10), "FLAKY", "HEALTHY")
    for day, status in [(38, "active"), (34, "resolved"), (6, "active"), (4, "resolved"), (2, "active")]:
        monitor(t1, ago(day), status)
    for n, (day, confidence) in enumerate([(30, 0.95), (12, 0.55), (4, 0.2), (1, 1.0)]):
        investigation(
            t1 if n % 2 else t2, ago(day), confidence, n, facts=("CI_LOGS", "GIT_BLAME")[: 1 + n % 2]
        )
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4}


def period_of(body) -> Period:
    return Period(name=body["period"], now=datetime.fromisoformat(body["now"]))


def seconds(delta):
    return None if delta is None else delta.total_seconds()


PERIODS = ["7d", "30d", "90d", "all"]


@pytest.mark.parametrize("period", PERIODS)
def test_summary_matches_the_queries(recent, api, period):
    body = api.get("/api/v1/stats/summary/", {"period": period}).json()
    p = period_of(body)
    expected = status_selectors.status_summary(period=p)
    assert body["status"] == expected["status"]
    assert (body["total"], body["quarantined"]) == (expected["total"], expected["quarantined"]) == (4, 1)
    assert body["median_time_to_fix_seconds"] == seconds(status_selectors.median_time_to_fix(period=p))
    assert body["period_start"] == (None if period == "all" else p.start.isoformat().replace("+00:00", "Z"))


def test_summary_numbers_by_hand(recent, api):
    body = api.get("/api/v1/stats/summary/", {"period": "30d"}).json()
    # Now t1 FLAKY, others HEALTHY. 30 days ago: t1 HEALTHY, t2 HEALTHY, t3 HEALTHY, t4 FLAKY.
    assert body["status"]["FLAKY"] == {"now": 1, "change": 0}
    assert body["status"]["HEALTHY"] == {"now": 3, "change": 0}
    # Fixes ending inside 30 days: t2 (17 days) and t4, flaky when first seen 39 days
    # ago and fixed 10 days ago: its start is unknown, so only t2's 17 days count.
    assert body["median_time_to_fix_seconds"] == timedelta(days=17).total_seconds()
    assert api.get("/api/v1/stats/summary/").json()["period"] == "30d"  # the dashboard's default


@pytest.mark.parametrize("period", PERIODS)
def test_status_trend_matches_the_queries(recent, api, period):
    body = api.get("/api/v1/stats/status-trend/", {"period": period}).json()
    p = period_of(body)
    series = status_selectors.status_trend(period=p)
    assert body["series"] == [{**row, "day": row["day"].isoformat()} for row in series]
    transitions = status_selectors.transitions_per_day(period=p)
    assert body["transitions"] == [{**row, "day": row["day"].isoformat()} for row in transitions]
    if period == "7d":
        assert len(body["series"]) == 8 and body["series"][-1] == {
            "day": p.now.date().isoformat(),
            "HEALTHY": 3,
            "FLAKY": 1,
            "BROKEN": 0,
        }


@pytest.mark.parametrize("period", PERIODS)
def test_codeowners_match_the_queries(recent, api, period):
    body = api.get("/api/v1/stats/codeowners/", {"period": period}).json()
    expected = owners_selectors.owner_stats(period=period_of(body))
    assert [r["owner"] for r in body["results"]] == [r["owner"] for r in expected]
    for got, row in zip(body["results"], expected, strict=True):
        assert got["owner_filter"] == (row["owner_key"] or "none")
        for key in ("tests", "flaky", "broken", "quarantined", "relapses"):
            assert got[key] == row[key], (row["owner"], key)
        assert got["median_time_to_fix_seconds"] == seconds(row["median_time_to_fix"])
        oldest = row["oldest_open_since"]
        assert got["oldest_open_since"] == (oldest and oldest.isoformat().replace("+00:00", "Z"))


def test_codeowner_filter_value_lists_the_same_tests(recent, api):
    for row in api.get("/api/v1/stats/codeowners/", {"period": "all"}).json()["results"]:
        tests = api.get("/api/v1/test-cases/", {"owner": row["owner_filter"]}).json()
        assert tests["count"] == row["tests"], row["owner"]
        flaky = api.get("/api/v1/test-cases/", {"owner": row["owner_filter"], "status": "FLAKY"}).json()
        assert flaky["count"] == row["flaky"]


@pytest.mark.parametrize("period", PERIODS)
def test_monitors_match_the_queries(recent, api, period):
    body = api.get("/api/v1/stats/monitors/", {"period": period}).json()
    expected = monitors_selectors.monitor_summary(period=period_of(body))
    assert body["activations"] == [{**row, "day": row["day"].isoformat()} for row in expected["activations"]]
    assert body["active_now_total"] == expected["active_now"].count() == 1
    assert [(a["monitor_id"], a["test_case"]) for a in body["active_now"]] == [
        (str(s.monitor_id), str(s.test_case_id)) for s in expected["active_now"]
    ]
    assert body["median_time_to_resolve"] == [
        {"type": kind, "median_time_to_resolve_seconds": d.total_seconds()}
        for kind, d in sorted(expected["median_time_to_resolve"].items())
    ]
    assert [(f["test_case"], f["activations"]) for f in body["flapping"]] == [
        (str(f["test_case_id"]), f["activations"]) for f in expected["flapping"]
    ]


@pytest.mark.parametrize("period", PERIODS)
def test_confidence_matches_the_queries(recent, api, period):
    body = api.get("/api/v1/stats/confidence/", {"period": period}).json()
    expected = investigations_selectors.investigation_summary(period=period_of(body))
    assert [b["count"] for b in body["histogram"]] == expected["histogram"]
    assert body["total"] == expected["total"]
    assert body["facts_by_type"] == expected["facts_by_type"]
    assert body["over_time"] == [{**row, "day": row["day"].isoformat()} for row in expected["over_time"]]
    assert sum(body["bands"].values()) == body["total"]


def test_confidence_bands_and_bins(recent, api):
    body = api.get("/api/v1/stats/confidence/", {"period": "all"}).json()
    assert body["bands"] == {"high": 2, "medium": 1, "low": 1}  # 0.95 and 1.0; 0.55; 0.2
    assert body["histogram"][9] == {"start": 0.9, "end": 1.0, "count": 2}
    assert body["histogram"][0]["start"] == 0.0


def test_repository_parameter_narrows_every_stat(recent, api):
    other = fake_test(50, codeowners=["@other/team"], repository=None)
    change(other, timezone.now() - timedelta(days=1), "HEALTHY", "BROKEN")
    repository = Repository.objects.get()
    for ref in (repository.pk, repository.trunk_id):
        body = api.get("/api/v1/stats/summary/", {"repository": ref, "period": "all"}).json()
        assert body["repository"] == repository.pk
        assert body["total"] == 4 and body["status"]["BROKEN"]["now"] == 0
    everywhere = api.get("/api/v1/stats/summary/", {"period": "all"}).json()
    assert everywhere["total"] == 5 and everywhere["status"]["BROKEN"]["now"] == 1
    owners = api.get("/api/v1/stats/codeowners/", {"repository": repository.pk}).json()["results"]
    assert "@other/team" not in {r["owner"] for r in owners}
    expected = owners_selectors.owner_stats(period=Period("30d", timezone.now()), repository=repository.pk)
    assert [r["owner"] for r in owners] == [r["owner"] for r in expected]


@pytest.mark.parametrize("endpoint", ["summary", "status-trend", "codeowners", "monitors", "confidence"])
@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"period": "1y"}, "period"),
        ({"period": ""}, None),
        ({"repository": "abc"}, "repository"),
        ({"repository": "77"}, "repository"),
    ],
)
def test_stats_parameters_are_validated(recent, api, endpoint, params, parameter):
    response = api.get(f"/api/v1/stats/{endpoint}/", params)
    if parameter is None:  # empty means the default, like an absent parameter
        assert response.status_code == 200 and response.json()["period"] == "30d"
    else:
        assert response.status_code == 400 and list(response.json()) == [parameter]


def test_period_is_case_insensitive(recent, api):
    assert api.get("/api/v1/stats/summary/", {"period": "ALL"}).json()["period"] == "all"


def test_stats_on_an_empty_database(db, api):
    for endpoint in ("summary", "status-trend", "codeowners", "monitors", "confidence"):
        assert api.get(f"/api/v1/stats/{endpoint}/", {"period": "all"}).status_code == 200
    body = api.get("/api/v1/stats/summary/").json()
    assert body["total"] == 0 and body["median_time_to_fix_seconds"] is None


def test_per_day_rows_are_what_their_fields_give(recent):
    """The per-day rows are built directly (api/serializers/stats.py): the same as field by field."""
    from rest_framework import serializers as drf

    from api import serializers

    p = Period("all", timezone.now())
    for serializer, rows in (
        (serializers.TrendDaySerializer, status_selectors.status_trend(period=p)),
        (serializers.TransitionDaySerializer, status_selectors.transitions_per_day(period=p)),
        (serializers.ActivationDaySerializer, monitors_selectors.monitor_summary(period=p)["activations"]),
        (
            serializers.ConfidenceDaySerializer,
            investigations_selectors.investigation_summary(period=p)["over_time"],
        ),
    ):
        assert rows
        fast = serializer(rows, many=True).data
        by_field = [drf.Serializer.to_representation(serializer(), row) for row in rows]
        assert fast == by_field and list(by_field[0]) == list(serializer().fields)
