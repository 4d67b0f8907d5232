"""GET /api/v1/stats/fixes/: fixes that held (verified, relapsed, pending, the
verification rate) and the relapse curve, overall and for an owner."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.selectors import fixes as fix_selectors
from events.metrics import RELAPSE_CURVE_DAYS, Period
from events.models import TestCase
from tests.events.factories import fake_test

from .conftest import change

pytestmark = pytest.mark.django_db

URL = "/api/v1/stats/fixes/"


@pytest.fixture
def fixed():
    """As of now (days ago):
    - t1 (@acme/web): 60-50, next at 45 (5 days: relapsed); 45-20, none (verified).
    - t2 (@acme/web and @acme/api): 15-5, none (pending).
    - t3 (no owner): 40-35, next at 10 (25 days: verified); 10- open.
    """
    now = timezone.now().replace(microsecond=0)

    def ago(days: float):
        return now - timedelta(days=days)

    t1 = fake_test(1, codeowners=["@acme/web"])
    t2 = fake_test(2, codeowners=["@acme/web", "@acme/api"])
    t3 = fake_test(3, codeowners=[])
    for test, spans in ((t1, [(60, 50), (45, 20)]), (t2, [(15, 5)]), (t3, [(40, 35), (10, None)])):
        for start, end in spans:
            change(test, ago(start), "HEALTHY", "FLAKY")
            if end is not None:
                change(test, ago(end), "FLAKY", "HEALTHY")
    return {"t1": t1, "t2": t2, "t3": t3}


def point(day, surviving, at_risk):
    return {"day": day, "surviving": surviving, "at_risk": at_risk}


def test_counts_over_a_period(fixed, api):
    body = api.get(URL, {"period": "all"}).json()
    assert (body["verified"], body["relapsed"], body["pending"]) == (2, 1, 1)
    assert body["verification_rate"] == pytest.approx(2 / 3)
    assert body["owner"] is None and body["owner_curve"] is None
    assert (body["period"], body["period_start"], body["repository"]) == ("all", None, None)
    # (now - 30 days, now]: t1's second fix (verified) and t2's (pending).
    body = api.get(URL, {"period": "30d"}).json()
    assert (body["verified"], body["relapsed"], body["pending"], body["verification_rate"]) == (1, 0, 1, 1.0)
    body = api.get(URL, {"period": "7d"}).json()
    assert (body["verified"], body["relapsed"], body["pending"], body["verification_rate"]) == (0, 0, 1, None)


def test_curve_by_hand(fixed, api):
    """Four fixes: events after 5 (t1) and 25 days (t3); censored after 20 (t1) and 5
    days (t2). d=5: 4 at risk, 1 event: 3/4; then 2. d=20: 1 censored. d=25: 1 at risk,
    1 event: 0."""
    curve = api.get(URL, {"period": "7d"}).json()["curve"]  # the curve ignores the period
    assert len(curve) == RELAPSE_CURVE_DAYS + 1
    assert [curve[d] for d in (0, 4, 5, 6, 20, 21, 25, 26, 90)] == [
        point(0, 1.0, 4),
        point(4, 1.0, 4),
        point(5, 0.75, 4),
        point(6, 0.75, 2),
        point(20, 0.75, 2),
        point(21, 0.75, 1),
        point(25, 0.0, 1),
        point(26, 0.0, 0),
        point(90, 0.0, 0),
    ]


def test_owner_filter(fixed, api):
    body = api.get(URL, {"period": "all", "owner": "@ACME/Web"}).json()
    assert body["owner"] == "@ACME/Web"
    assert (body["verified"], body["relapsed"], body["pending"]) == (1, 1, 1)
    # Its fixes: an event after 5 days (t1), censored after 20 (t1) and 5 (t2).
    assert body["owner_curve"][5] == {"day": 5, "surviving": pytest.approx(2 / 3), "at_risk": 3}
    assert body["curve"][5] == point(5, 0.75, 4)  # the overall curve beside it
    none = api.get(URL, {"period": "all", "owner": "none"}).json()
    assert (none["verified"], none["relapsed"], none["pending"]) == (1, 0, 0)
    assert none["owner_curve"][25] == point(25, 0.0, 1)
    unknown = api.get(URL, {"period": "all", "owner": "@nobody"}).json()
    assert (unknown["verified"], unknown["relapsed"], unknown["pending"], unknown["owner_curve"]) == (
        0,
        0,
        0,
        [],
    )


def test_matches_the_dashboard_selectors(fixed, api):
    repository = TestCase.objects.get(pk=fixed["t1"].id).repository_id
    for period in ("7d", "30d", "90d", "all"):
        body = api.get(URL, {"period": period, "repository": repository, "owner": "@acme/api"}).json()
        p = Period(period, timezone.now())
        expected = fix_selectors.fix_counts(period=p, repository=repository, owner_key="@acme/api")
        assert {k: body[k] for k in expected} == expected
        assert body["repository"] == repository


def test_empty_and_bad_parameters(api):
    body = api.get(URL).json()
    assert (
        body["verified"],
        body["relapsed"],
        body["pending"],
        body["verification_rate"],
        body["curve"],
    ) == (
        0,
        0,
        0,
        None,
        [],
    )
    assert body["period"] == "30d"
    assert api.get(URL, {"period": "1y"}).status_code == 400
    assert api.get(URL, {"repository": "999999"}).status_code == 400


def test_requires_authentication(anon):
    assert anon.get(URL).status_code == 401


def test_documented_in_the_schema(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"][URL]["get"]
    assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} == {
        "period",
        "repository",
        "owner",
    }
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]
    assert {"verified", "relapsed", "pending", "verification_rate", "curve", "owner_curve"} <= set(fields)
