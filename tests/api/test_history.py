"""The history lists (status changes, monitor events, investigations, quarantine changes),
monitors, repositories and the staff-only delivery log: filters, errors, cursors."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Delivery, StatusChange
from tests.events.factories import MONITOR, deliver

from .conftest import MONITOR_B, build_tests, change

pytestmark = pytest.mark.django_db


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def days(rows) -> list[str]:
    return [row["occurred_at"][:10] for row in rows]


# ---------------------------------------------------------------- status changes


def test_status_changes_newest_first_with_trunk_fields(history, api):
    rows = results(api.get("/api/v1/status-changes/"))
    assert len(rows) == StatusChange.objects.count() == 7
    assert days(rows) == sorted(days(rows), reverse=True)
    first = rows[0]
    assert first["test_case"] == str(history["t1"].id) and first["test_case_name"] == "test_case_1"
    assert (first["previous_status"], first["new_status"], first["occurred_at"]) == (
        "HEALTHY",
        "FLAKY",
        "2026-05-20T00:00:00Z",
    )
    assert first["triggered_by"] == {
        "monitor_id": str(MONITOR),
        "monitor_type": "pass_on_retry",
        "monitor_status": "active",
    }


def test_v1_status_change_has_no_triggered_by(db, api):
    from events.demo import payloads
    from tests.events.factories import at, fake_test

    deliver(
        payloads.status_changed_v1(fake_test(1), at=at(3), previous="HEALTHY", new="FLAKY", reason="retry")
    )
    row = results(api.get("/api/v1/status-changes/"))[0]
    assert row["triggered_by"] is None and row["reason"] == "retry" and row["new_status"] == "FLAKY"


@pytest.mark.parametrize(
    ("params", "expected_days"),
    [
        ({"status": "healthy"}, ["2026-05-13", "2026-05-06", "2026-05-05"]),
        ({"previous_status": "BROKEN"}, ["2026-05-06"]),
        ({"since": "2026-05-06", "until": "2026-05-13"}, ["2026-05-13", "2026-05-06"]),
        ({"until": "2026-05-02T23:59:59Z"}, ["2026-05-02"]),
        ({"owner": "@acme/api"}, ["2026-05-13", "2026-05-03"]),
        ({"owner": "none"}, []),
        (
            {"monitor": str(MONITOR), "monitor_type": "pass_on_retry", "previous_status": "FLAKY"},
            ["2026-05-13", "2026-05-05", "2026-05-04"],
        ),
        ({"period": "all", "status": "BROKEN"}, ["2026-05-04"]),
        ({"period": "7d"}, []),  # the history is in May; now is later
    ],
)
def test_status_change_filters(history, api, params, expected_days):
    assert days(results(api.get("/api/v1/status-changes/", params))) == expected_days


def test_event_filters_by_test_and_repository(history, api):
    t2 = history["t2"]
    rows = results(api.get("/api/v1/status-changes/", {"test_case": str(t2.id)}))
    assert {r["test_case"] for r in rows} == {str(t2.id)} and len(rows) == 2
    other = str(history["other_repo"].id)
    assert results(api.get("/api/v1/status-changes/", {"repository": other})) == []
    assert len(results(api.get("/api/v1/monitor-events/", {"repository": other}))) == 1


def test_period_counts_from_now(db, api):
    from events.demo import payloads
    from tests.events.factories import fake_test

    now = timezone.now()
    test = fake_test(1)
    for age in (1, 10, 40, 100):
        deliver(
            payloads.status_changed(
                test,
                at=now - timedelta(days=age),
                previous="HEALTHY",
                new="FLAKY",
                monitor_id=MONITOR,
                monitor_type="x",
            )
        )
    counts = {
        p: len(results(api.get("/api/v1/status-changes/", {"period": p})))
        for p in ("7d", "30d", "90d", "all")
    }
    assert counts == {"7d": 1, "30d": 2, "90d": 3, "all": 4}


@pytest.mark.parametrize(
    ("url", "params", "parameter"),
    [
        ("/api/v1/status-changes/", {"status": "WOBBLY"}, "status"),
        ("/api/v1/status-changes/", {"test_case": "not-a-uuid"}, "test_case"),
        ("/api/v1/status-changes/", {"monitor": "xyz"}, "monitor"),
        ("/api/v1/status-changes/", {"since": "last week"}, "since"),
        ("/api/v1/status-changes/", {"since": "2026-05-10", "until": "2026-05-01"}, "until"),
        ("/api/v1/status-changes/", {"period": "1y"}, "period"),
        ("/api/v1/status-changes/", {"repository": "0"}, "repository"),
        ("/api/v1/monitor-events/", {"status": "open"}, "status"),
        ("/api/v1/investigations/", {"confidence_min": "high"}, "confidence_min"),
        ("/api/v1/investigations/", {"confidence_min": "nan"}, "confidence_min"),
        ("/api/v1/investigations/", {"confidence_min": "0.9", "confidence_max": "0.1"}, "confidence_max"),
        ("/api/v1/investigations/", {"band": "extreme"}, "band"),
        ("/api/v1/quarantine-changes/", {"until": "2026-13-01"}, "until"),
        ("/api/v1/monitor-events/", {"cursor": "garbage"}, "cursor"),
        ("/api/v1/monitor-events/", {"page_size": "lots"}, "page_size"),
    ],
)
def test_bad_event_filters_are_400_naming_the_parameter(history, api, url, params, parameter):
    response = api.get(url, params)
    assert response.status_code == 400, response.content
    assert list(response.json()) == [parameter]


# ---------------------------------------------------------------- monitor events and monitors


def test_monitor_events_follow_trunks_monitor_object(history, api):
    rows = results(api.get("/api/v1/monitor-events/", {"status": "ACTIVE"}))
    assert days(rows) == ["2026-05-19", "2026-05-02"]
    assert rows[0]["monitor"] == {"id": str(MONITOR), "type": "pass_on_retry", "status": "active"}
    assert rows[0]["evidence"] == {"runs": 3}
    assert len(results(api.get("/api/v1/monitor-events/", {"monitor_type": "failure_rate"}))) == 3
    assert len(results(api.get("/api/v1/monitor-events/", {"monitor": str(MONITOR_B)}))) == 3


def test_monitors_list_and_detail(history, api):
    rows = results(api.get("/api/v1/monitors/"))
    assert [(m["type"], m["active_tests"], m["event_count"]) for m in rows] == [
        ("failure_rate", 0, 3),
        ("pass_on_retry", 1, 3),
    ]
    assert rows[1]["last_event_at"] == "2026-05-19T00:00:00Z"
    assert [m["id"] for m in results(api.get("/api/v1/monitors/", {"type": "pass_on_retry"}))] == [
        str(MONITOR)
    ]
    assert api.get(f"/api/v1/monitors/{MONITOR}/").json()["active_tests"] == 1
    assert api.get(f"/api/v1/monitors/{uuid.UUID(int=1)}/").status_code == 404


# ---------------------------------------------------------------- investigations


def test_investigations_embed_their_facts(history, api):
    rows = results(api.get("/api/v1/investigations/"))
    assert [(r["confidence"], r["confidence_band"]) for r in rows] == [(0.9, "high"), (0.3, "low")]
    first = rows[0]
    assert first["id"] == str(uuid.UUID(int=501))
    assert first["markdown_summary"] == "**Summary 1** <script>x</script>"  # as sent: JSON, not HTML
    assert first["failure_message"] == "AssertionError"
    assert first["facts"] == [
        {"position": 0, "fact_type": "GIT_BLAME", "content": "fact 0", "confidence": 0.5},
        {"position": 1, "fact_type": "CI_LOGS", "content": "fact 1", "confidence": 0.6},
    ]
    assert api.get(f"/api/v1/investigations/{first['id']}/").json() == first
    assert api.get(f"/api/v1/investigations/{uuid.UUID(int=1)}/").status_code == 404


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"confidence_min": "0.5"}, [0.9]),
        ({"confidence_max": "0.3"}, [0.3]),
        ({"confidence_min": "0.3", "confidence_max": "0.9"}, [0.9, 0.3]),
        ({"band": "high"}, [0.9]),
        ({"band": "LOW"}, [0.3]),
        ({"band": "medium"}, []),
        ({"fact_type": "git_blame"}, [0.9]),
        ({"fact_type": "CI_LOGS"}, [0.9, 0.3]),
        ({"owner": "@acme/api"}, [0.3]),
        ({"since": "2026-05-13"}, [0.9]),
        ({"until": "2026-05-12"}, [0.3]),
    ],
)
def test_investigation_filters(history, api, params, expected):
    assert [r["confidence"] for r in results(api.get("/api/v1/investigations/", params))] == expected


# ---------------------------------------------------------------- quarantine changes


def test_quarantine_changes_follow_trunks_names(history, api):
    (row,) = results(api.get("/api/v1/quarantine-changes/"))
    assert row["actor"] == {"email": "dev@acme.test", "full_name": "Dev"}
    assert row["previous_quarantining_setting"] == "UNSPECIFIED"
    assert row["updated_quarantining_setting"] == "ALWAYS_QUARANTINE"
    assert row["reason"] == "flaky on CI" and row["test_case_name"] == "test_case_3"
    assert (
        results(api.get("/api/v1/quarantine-changes/", {"updated_quarantining_setting": "NEVER_QUARANTINE"}))
        == []
    )


# ---------------------------------------------------------------- repositories


def test_repositories_with_counts_by_id_or_trunk_uuid(history, api):
    rows = results(api.get("/api/v1/repositories/"))
    assert [(r["name"], r["test_count"], r["flaky_count"], r["quarantined_count"]) for r in rows] == [
        ("acme/checkout", 3, 1, 0),
        ("acme/web", 1, 0, 1),
    ]
    checkout = rows[0]
    assert api.get(f"/api/v1/repositories/{checkout['id']}/").json() == checkout
    assert api.get(f"/api/v1/repositories/{checkout['trunk_id']}/").json() == checkout
    for bad in ("999", str(uuid.UUID(int=3)), "nope", "0"):
        response = api.get(f"/api/v1/repositories/{bad}/")
        assert response.status_code == 404 and "detail" in response.json()


def test_repository_counts_are_per_row_subqueries(history, api):
    """Each count is a correlated COUNT over the repository's tests (an index-only scan
    of testcase_repository_status_idx on PostgreSQL), so neither the page nor the
    paginator's COUNT joins and groups every test; a repository without tests has 0."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from events.models import Repository

    Repository.objects.create(name="acme/empty", html_url="https://github.com/acme/empty")
    with CaptureQueriesContext(connection) as ctx:
        rows = results(api.get("/api/v1/repositories/"))
    counts = {r["name"]: (r["test_count"], r["flaky_count"], r["quarantined_count"]) for r in rows}
    assert counts == {"acme/checkout": (3, 1, 0), "acme/empty": (0, 0, 0), "acme/web": (1, 0, 1)}
    listed = [q["sql"] for q in ctx.captured_queries if 'FROM "events_repository"' in q["sql"]]
    assert listed and not any("JOIN" in sql for sql in listed)


def test_v1_only_repository_has_no_trunk_id(db, api):
    from events.demo import payloads
    from tests.events.factories import at, fake_test

    deliver(payloads.status_changed_v1(fake_test(1), at=at(3), previous="HEALTHY", new="FLAKY"))
    (row,) = results(api.get("/api/v1/repositories/"))
    assert row["trunk_id"] is None and row["html_url"] == "https://github.com/acme/checkout"
    assert api.get(f"/api/v1/repositories/{row['id']}/").status_code == 200


# ---------------------------------------------------------------- deliveries


def test_deliveries_staff_only_with_filters(history, staff_api, signed_post):
    signed_post({"type": "something.new", "x": 1}, msg_id="msg_unknown_type")
    signed_post('{"type": "v2.test_case.status_changed"}', msg_id="msg_invalid")
    rows = results(staff_api.get("/api/v1/deliveries/", {"page_size": 200}))
    assert len(rows) == Delivery.objects.count()
    assert [r["received_at"] for r in rows] == sorted((r["received_at"] for r in rows), reverse=True)
    assert "body" not in rows[0] and "headers" not in rows[0]
    (ignored,) = results(staff_api.get("/api/v1/deliveries/", {"outcome": "ignored"}))
    assert (ignored["svix_id"], ignored["type"]) == ("msg_unknown_type", "something.new")
    (invalid,) = results(staff_api.get("/api/v1/deliveries/", {"outcome": "INVALID"}))
    assert invalid["svix_id"] == "msg_invalid" and invalid["error"]
    assert (
        len(results(staff_api.get("/api/v1/deliveries/", {"type": "test_case.investigation_completed"}))) == 2
    )
    assert [r["id"] for r in results(staff_api.get("/api/v1/deliveries/", {"svix_id": "msg_invalid"}))] == [
        invalid["id"]
    ]
    assert results(staff_api.get("/api/v1/deliveries/", {"since": "2000-01-01", "until": "2000-01-02"})) == []
    assert staff_api.get("/api/v1/deliveries/", {"outcome": "lost"}).status_code == 400

    detail = staff_api.get(f"/api/v1/deliveries/{ignored['id']}/").json()
    assert detail["body"] == '{"type": "something.new", "x": 1}'
    assert detail["size"] == len(detail["body"].encode())
    assert detail["headers"]["svix-id"] == "msg_unknown_type"
    assert staff_api.get("/api/v1/deliveries/999999/").status_code == 404
    assert staff_api.get("/api/v1/deliveries/abc/").status_code == 404


# ---------------------------------------------------------------- cursor pagination


def test_cursor_pages_walk_every_event_once_even_with_ties(db, api):
    build_tests(12)  # many events share an event time: the id breaks ties
    seen, url, pages = [], "/api/v1/status-changes/?page_size=5", 0
    while url:
        body = api.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1
    expected = list(StatusChange.objects.order_by("-occurred_at", "-id").values_list("id", flat=True))
    assert seen == expected and pages == 4
    # ... and back.
    body = api.get("/api/v1/status-changes/?page_size=5").json()
    second = api.get(body["next"]).json()
    assert api.get(second["previous"]).json()["results"] == body["results"]


def test_cursor_page_size_default_and_cap(db, api, staff_api):
    build_tests(70)  # 94 status changes, 70 investigations, 304 deliveries
    assert Delivery.objects.count() > 200
    assert len(api.get("/api/v1/status-changes/").json()["results"]) == 50
    assert len(api.get("/api/v1/status-changes/", {"page_size": 1000}).json()["results"]) == 94
    assert len(api.get("/api/v1/investigations/", {"page_size": 7}).json()["results"]) == 7
    assert len(staff_api.get("/api/v1/deliveries/", {"page_size": 1000}).json()["results"]) == 200


def test_forged_cursor_is_400(history, api):
    import base64

    for position in ("p=not-a-date", "p=2026-05-01&o=-1", "r=x"):
        cursor = base64.b64encode(position.encode()).decode()
        response = api.get("/api/v1/status-changes/", {"cursor": cursor})
        assert response.status_code == 400, (position, response.content)
        assert list(response.json()) == ["cursor"]


def test_status_change_for_new_test_appears_first(history, api):
    from tests.events.factories import at

    change(history["t3"], at(25), "HEALTHY", "BROKEN")
    assert results(api.get("/api/v1/status-changes/"))[0]["test_case"] == str(history["t3"].id)
