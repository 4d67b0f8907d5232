"""The owners' targets stats and the triage history in the API (METRICS "Time to
triage", "Owner targets", "Attainment")."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import OwnerTarget, TestCase
from events.triage import VIA_API, VIA_DASHBOARD, triage_test
from tests.events.factories import at, fake_test

from .conftest import change

pytestmark = pytest.mark.django_db
TARGETS = "/api/v1/stats/targets/"
EVENTS = "/api/v1/triage-events/"


def triage_at(test, when, by, via=VIA_DASHBOARD, **values):
    """A triage action through the service, stamped `when` (the service's `at`)."""
    test_case = TestCase.objects.get(pk=test.id)
    assert triage_test(test_case, by=by, via=via, at=when, **values)


@pytest.fixture
def history(triager, reader):
    """@acme/web: t1 H->F day 1, triaged day 4 (met), fixed day 10 (met); t2 H->F day 2,
    never triaged, open (both missed, breaching). (no owner): t3 H->F day 3, fixed day 20
    (17 days: met under its own 20-day fix target), triaged by API day 4 (met)."""
    t1, t2 = (fake_test(n, codeowners=["@acme/web"]) for n in (1, 2))
    t3 = fake_test(3, codeowners=[])
    change(t1, at(1), "HEALTHY", "FLAKY")
    change(t1, at(10), "FLAKY", "HEALTHY")
    change(t2, at(2), "HEALTHY", "FLAKY")
    change(t3, at(3), "HEALTHY", "FLAKY")
    change(t3, at(20), "FLAKY", "HEALTHY")
    triage_at(t1, at(4), triager, state="investigating")
    triage_at(t3, at(4), reader, via=VIA_API, assignee=reader)
    OwnerTarget.objects.create(owner_key="", fix_days=20)
    return {"t1": t1, "t2": t2, "t3": t3}


def test_targets_per_owner(api, history):
    body = api.get(TARGETS, {"period": "all"}).json()
    assert body["period"] == "all" and body["default_targets"] == {
        "triage_days": 3,
        "fix_days": 14,
        "own": False,
    }
    assert body["results"] == [
        {
            "owner": "(no owner)",
            "owner_filter": "none",
            "targets": {"triage_days": 3, "fix_days": 20, "own": True},
            "triage": {"met": 1, "missed": 0, "share": 1.0},
            "fix": {"met": 1, "missed": 0, "share": 1.0},
            "breaching_now": 0,
        },
        {
            "owner": "@acme/web",
            "owner_filter": "@acme/web",
            "targets": {"triage_days": 3, "fix_days": 14, "own": False},
            "triage": {"met": 1, "missed": 1, "share": 0.5},
            "fix": {"met": 1, "missed": 1, "share": 0.5},
            "breaching_now": 1,
        },
    ]


def test_targets_filters(api, history):
    assert [r["owner"] for r in api.get(TARGETS, {"period": "all", "owner": "none"}).json()["results"]] == [
        "(no owner)"
    ]
    assert [
        r["owner"] for r in api.get(TARGETS, {"period": "all", "owner": "@ACME/Web"}).json()["results"]
    ] == ["@acme/web"]
    assert api.get(TARGETS, {"period": "all", "owner": "@nobody"}).json()["results"] == []
    # 7d (December): none of these May episodes started inside; the open one still breaches.
    (web,) = api.get(TARGETS, {"period": "7d"}).json()["results"]
    assert web["triage"] == {"met": 0, "missed": 0, "share": None} and web["breaching_now"] == 1
    assert api.get(TARGETS, {"period": "1y"}).status_code == 400
    assert api.get(TARGETS, {"repository": "999999"}).status_code == 400


def test_triage_events_list_and_filters(api, history, triager, reader):
    rows = api.get(EVENTS).json()["results"]
    assert [(r["test_case_name"], r["by_username"], r["via"]) for r in rows] == [
        ("test_case_3", "reader", "API"),  # the same time: the later one first
        ("test_case_1", "triager", "dashboard"),
    ]
    assert rows[1]["state_from"] == "new" and rows[1]["state_to"] == "investigating"
    assert rows[0]["assignee_changed"] and rows[0]["assignee_to"] == "reader"
    assert rows[1]["message"] == "Triage state: New → Investigating. (dashboard)"

    def names(**params):
        return [r["test_case_name"] for r in api.get(EVENTS, params).json()["results"]]

    assert names(test_case=str(history["t3"].id)) == ["test_case_3"]
    assert names(by=triager.pk) == ["test_case_1"]
    assert names(via="API") == ["test_case_3"]
    test = TestCase.objects.get(pk=history["t1"].id)
    triage_test(test, by=triager, note="now")
    assert names(since=(timezone.now() - timedelta(hours=1)).isoformat()) == ["test_case_1"]
    assert names(until="2026-05-04") == ["test_case_3", "test_case_1"]
    assert api.get(EVENTS, {"since": "2026-05-05", "until": "2026-05-01"}).status_code == 400
    assert api.get(EVENTS, {"by": "x"}).status_code == 400


def test_one_tests_triage_history(api, history):
    url = f"/api/v1/test-cases/{history['t1'].id}/triage-history/"
    assert [r["message"] for r in api.get(url).json()["results"]] == [
        "Triage state: New → Investigating. (dashboard)"
    ]
    assert api.get(f"/api/v1/test-cases/{history['t2'].id}/triage-history/").json()["results"] == []
    assert (
        api.get("/api/v1/test-cases/00000000-0000-0000-0000-00000000ffff/triage-history/").status_code == 404
    )


@pytest.mark.parametrize("extra", [0, 5])
def test_query_counts_do_not_grow(api, history, triager, django_assert_num_queries, extra):
    for n in range(10, 10 + extra):
        test = fake_test(n, codeowners=[f"@team{n}"])
        change(test, at(5), "HEALTHY", "FLAKY")
        triage_at(test, at(6), triager, state="investigating")
        OwnerTarget.objects.create(owner_key=f"@team{n}", triage_days=2)
    # token (1), targets (1), counts over all history from the tally (3: a probe for
    # triage actions after now, the unsettled episodes, the tally), owner names (1)
    with django_assert_num_queries(6):
        assert api.get(TARGETS, {"period": "all"}).status_code == 200
    # token (1), page (1, test and user joined)
    with django_assert_num_queries(2):
        assert len(api.get(EVENTS, {"page_size": 200}).json()["results"]) == 2 + extra
    with django_assert_num_queries(3):  # + the test's existence
        assert api.get(f"/api/v1/test-cases/{history['t1'].id}/triage-history/").status_code == 200


def test_bad_parameters_are_400(api, history):
    for params in ({"by": "1.5"}, {"by": "0"}, {"by": str(2**64)}, {"by": "me"}):
        assert api.get(EVENTS, params).status_code == 400, params
    assert api.get(TARGETS, {"owner": "a\x00b"}).status_code == 400
    assert api.get(TARGETS, {"owner": "x" * 256}).status_code == 400
