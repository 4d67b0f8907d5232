"""/api/v1/test-cases/: fields, every filter and sort order, errors, nested reads, triage."""

import json
import uuid

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User

from dashboard.selectors import tests as tests_selectors
from events.models import TRIAGE_NOTE_MAX_LENGTH, Repository, TestCase

from .conftest import change

pytestmark = pytest.mark.django_db
URL = "/api/v1/test-cases/"


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


def detail_url(test) -> str:
    return f"{URL}{test.id}/"


def test_list_fields_follow_trunk_payload_names(history, api):
    response = api.get(URL, {"q": "test_case_2"})
    row = response.json()["results"][0]
    assert row["id"] == str(history["t2"].id)
    assert row["name"] == "test_case_2"
    assert row["classname"] == "tests.suite.Test2"
    assert row["file_path"] == "tests/suite/test_2.py"
    assert row["parent"] == "tests/suite"
    assert row["html_url"].startswith("https://app.trunk.io/")
    assert row["codeowners"] == ["@acme/web", "@acme/api"]
    assert row["owners"] == ["@acme/api", "@acme/web"]
    assert row["quarantined"] is False
    assert row["variant"] == "linux"
    assert row["failure_rate_last_7d"] == 0.5
    assert row["pull_requests_impacted_last_7d"] == 9
    assert row["status"] == "HEALTHY"
    assert row["status_since"] == "2026-05-13T00:00:00Z"
    assert row["first_event_at"] == "2026-05-03T00:00:00Z"
    assert row["repository"] == {
        "id": row["repository"]["id"],
        "trunk_id": str(history["repo"].id),
        "name": "acme/checkout",
        "html_url": "https://github.com/acme/checkout",
    }
    assert row["triage_state"] == "new" and row["assignee"] is None and row["assignee_username"] is None
    assert row["dashboard_url"] == f"http://testserver/tests/{history['t2'].id}/"


def test_default_order_is_the_dashboards(history, api):
    expected = [t.name for t in tests_selectors.filter_test_cases(tests_selectors.test_cases())]
    assert names(api.get(URL)) == expected == ["test_case_1", "test_case_2", "test_case_4", "test_case_3"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "FLAKY"}, ["test_case_1"]),
        ({"status": "flaky"}, ["test_case_1"]),  # case-insensitive
        ({"status": "Healthy", "sort": "name"}, ["test_case_2", "test_case_3", "test_case_4"]),
        ({"owner": "@ACME/WEB", "sort": "name"}, ["test_case_1", "test_case_2", "test_case_4"]),
        ({"owner": "@acme/api"}, ["test_case_2"]),
        ({"owner": "none"}, ["test_case_3"]),
        ({"owner": "@nobody/here"}, []),
        ({"quarantined": "true"}, ["test_case_3"]),
        ({"quarantined": "false", "sort": "name"}, ["test_case_1", "test_case_2", "test_case_4"]),
        ({"quarantined": "1"}, ["test_case_3"]),
        ({"variant": "linux"}, ["test_case_2"]),
        ({"q": "SUITE/TEST_4"}, ["test_case_4"]),
        ({"q": "Test1"}, ["test_case_1"]),  # classname
        ({"changed_since": "2026-05-13", "sort": "name"}, ["test_case_1", "test_case_2"]),
        ({"changed_until": "2026-05-13"}, ["test_case_2", "test_case_4"]),  # the whole day 13
        (
            {"changed_since": "2026-05-05T00:00:00Z", "changed_until": "2026-05-05T00:00:00+00:00"},
            ["test_case_4"],
        ),
        ({"changed_since": "2026-05-13T02:00:00+02:00"}, ["test_case_1", "test_case_2"]),  # = 00:00Z
        ({"changed_since": "2026-05-13T00:00:01"}, ["test_case_1"]),  # naive: UTC
        ({"status": "HEALTHY", "owner": "@acme/web", "variant": "linux"}, ["test_case_2"]),
    ],
)
def test_filters(history, api, params, expected):
    assert names(api.get(URL, params)) == expected


def test_repository_filter_takes_the_id_or_the_trunk_uuid(history, api):
    repositories = api.get("/api/v1/repositories/").json()["results"]
    other = next(r for r in repositories if r["name"] == "acme/web")
    assert names(api.get(URL, {"repository": other["id"]})) == ["test_case_3"]
    assert names(api.get(URL, {"repository": other["trunk_id"]})) == ["test_case_3"]
    assert names(api.get(URL, {"repository": other["trunk_id"].upper()})) == ["test_case_3"]
    assert len(names(api.get(URL, {"repository": str(history["repo"].id)}))) == 3


def test_triage_and_assignee_filters(history, api, reader):
    other = User.objects.create_user("other")
    TestCase.objects.filter(pk=history["t1"].id).update(triage_state="investigating", assignee=reader)
    TestCase.objects.filter(pk=history["t2"].id).update(triage_state="fixed", assignee=other)
    assert names(api.get(URL, {"triage": "investigating"})) == ["test_case_1"]
    assert names(api.get(URL, {"triage": "FIXED"})) == ["test_case_2"]
    assert names(api.get(URL, {"triage": "new", "sort": "name"})) == ["test_case_3", "test_case_4"]
    assert names(api.get(URL, {"assignee": "me"})) == ["test_case_1"]
    assert names(api.get(URL, {"assignee": other.pk})) == ["test_case_2"]
    assert names(api.get(URL, {"assignee": "none", "sort": "name"})) == ["test_case_3", "test_case_4"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["test_case_1", "test_case_2", "test_case_3", "test_case_4"]),
        ("-name", ["test_case_4", "test_case_3", "test_case_2", "test_case_1"]),
        ("-status", ["test_case_1", "test_case_2", "test_case_3", "test_case_4"]),
        ("status_since", ["test_case_3", "test_case_4", "test_case_2", "test_case_1"]),
        ("-status_since", ["test_case_1", "test_case_2", "test_case_4", "test_case_3"]),
        ("-failure_rate", ["test_case_2", "test_case_1", "test_case_4", "test_case_3"]),
        ("failure_rate", ["test_case_3", "test_case_4", "test_case_1", "test_case_2"]),
        ("-prs_impacted", ["test_case_2", "test_case_1", "test_case_4", "test_case_3"]),
        ("prs_impacted", ["test_case_3", "test_case_4", "test_case_1", "test_case_2"]),
    ],
)
def test_sort_and_ordering_are_the_dashboards_sorts(history, api, sort, expected):
    assert names(api.get(URL, {"sort": sort})) == expected
    assert names(api.get(URL, {"ordering": sort})) == expected
    assert expected == [
        t.name for t in tests_selectors.filter_test_cases(tests_selectors.test_cases(), sort=sort)
    ]


def test_sort_and_ordering_may_agree_but_not_differ(history, api):
    assert names(api.get(URL, {"sort": "name", "ordering": "name"}))[0] == "test_case_1"
    response = api.get(URL, {"sort": "name", "ordering": "-name"})
    assert response.status_code == 400
    assert "ordering" in response.json()


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ({"status": "WOBBLY"}, "status", "WOBBLY is not one of HEALTHY, FLAKY, BROKEN"),
        ({"quarantined": "maybe"}, "quarantined", "true or false"),
        ({"triage": "someday"}, "triage", "someday is not one of new, investigating, fixed, wont_fix"),
        ({"repository": "not-a-uuid"}, "repository", "integer"),
        ({"repository": "999"}, "repository", "No repository with id 999"),
        ({"repository": str(uuid.UUID(int=7))}, "repository", "No repository"),
        ({"repository": "99999999999999999999999"}, "repository", "integer"),
        ({"changed_since": "yesterday"}, "changed_since", "ISO 8601"),
        ({"changed_since": "2026-02-30"}, "changed_since", "ISO 8601"),
        ({"changed_until": "2026-05-01T25:00:00Z"}, "changed_until", "ISO 8601"),
        ({"changed_since": "0001-01-01T00:00:00+01:00"}, "changed_since", "ISO 8601"),
        ({"changed_since": "2026-05-10", "changed_until": "2026-05-01"}, "changed_until", "before"),
        ({"sort": "bogus"}, "sort", "bogus is not one of"),
        ({"ordering": "-color"}, "ordering", "-color is not one of"),
        ({"assignee": "alice"}, "assignee", "user id"),
        ({"assignee": "424242"}, "assignee", "No user with id 424242"),
        ({"q": "a\x00b"}, "q", "Null characters"),
        # A "%" in a bad value once broke django-filter's message formatting (a 500).
        ({"assignee": "50%"}, "assignee", "user id"),
        ({"changed_since": "100%s"}, "changed_since", "'100%s'"),
        ({"repository": "%(x)s"}, "repository", "%(x)s"),
        ({"status": "%d"}, "status", "%d is not one of"),
        ({"page": "abc"}, "page", "whole number"),
        ({"page": "0"}, "page", "whole number"),
        ({"page_size": "-5"}, "page_size", "whole number"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(history, api, params, parameter, message):
    response = api.get(URL, params)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == [parameter]
    assert message in body[parameter][0]


def test_assignee_me_needs_a_user(history, anon, settings):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    response = anon.get(URL, {"assignee": "me"})
    assert response.status_code == 400 and "assignee" in response.json()


def test_detail_by_trunk_id_ignores_list_filters(history, api):
    response = api.get(detail_url(history["t1"]), {"status": "HEALTHY"})
    assert response.status_code == 200
    assert response.json()["status"] == "FLAKY"


@pytest.mark.parametrize("test_id", [str(uuid.UUID(int=12345)), "not-a-uuid", "123"])
def test_unknown_test_is_a_json_404(history, api, test_id):
    response = api.get(f"{URL}{test_id}/")
    assert response.status_code == 404
    assert "detail" in response.json()


# ---------------------------------------------------------------- nested reads


def test_nested_history_lists_only_that_tests_events(history, api):
    t1 = history["t1"]
    changes = api.get(f"{detail_url(t1)}status-changes/").json()["results"]
    assert [(c["previous_status"], c["new_status"]) for c in changes] == [
        ("HEALTHY", "FLAKY"),
        ("BROKEN", "HEALTHY"),
        ("FLAKY", "BROKEN"),
        ("HEALTHY", "FLAKY"),
    ]
    assert {c["test_case"] for c in changes} == {str(t1.id)}
    events = api.get(f"{detail_url(t1)}monitor-events/").json()["results"]
    assert [e["monitor"]["status"] for e in events] == ["active", "resolved", "active", "resolved"]
    investigations = api.get(f"{detail_url(t1)}investigations/").json()["results"]
    assert [i["confidence"] for i in investigations] == [0.9]
    assert api.get(f"{detail_url(t1)}quarantine-changes/").json()["results"] == []
    t3 = api.get(f"{detail_url(history['t3'])}quarantine-changes/").json()["results"]
    assert [q["updated_quarantining_setting"] for q in t3] == ["ALWAYS_QUARANTINE"]


def test_nested_lists_take_the_event_filters(history, api):
    url = f"{detail_url(history['t1'])}status-changes/"
    assert len(api.get(url, {"status": "flaky"}).json()["results"]) == 2
    assert api.get(url, {"status": "WOBBLY"}).status_code == 400


@pytest.mark.parametrize(
    "suffix", ["status-changes", "monitor-events", "investigations", "quarantine-changes", "timeline"]
)
def test_nested_reads_of_an_unknown_test_are_404(history, api, suffix):
    assert api.get(f"{URL}{uuid.UUID(int=4242)}/{suffix}/").status_code == 404
    assert api.get(f"{URL}not-a-uuid/{suffix}/").status_code == 404


def test_timeline_is_the_charts_data(history, api):
    t1 = history["t1"]
    body = api.get(f"{detail_url(t1)}timeline/").json()
    test = TestCase.objects.get(pk=t1.id)
    assert body["test_case"] == str(t1.id)
    assert [(i["status"], i["start"], i["end"]) for i in body["status"]] == [
        ("HEALTHY", "2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z"),
        ("FLAKY", "2026-05-02T00:00:00Z", "2026-05-04T00:00:00Z"),
        ("BROKEN", "2026-05-04T00:00:00Z", "2026-05-06T00:00:00Z"),
        ("HEALTHY", "2026-05-06T00:00:00Z", "2026-05-20T00:00:00Z"),
        ("FLAKY", "2026-05-20T00:00:00Z", None),
    ]
    assert len(body["status"]) == len(tests_selectors.status_timeline(test))
    monitors = {m["type"]: m["intervals"] for m in body["monitors"]}
    assert monitors["pass_on_retry"] == [
        {"start": "2026-05-02T00:00:00Z", "end": "2026-05-06T00:00:00Z"},
        {"start": "2026-05-19T00:00:00Z", "end": None},
    ]


# ---------------------------------------------------------------- triage writes


def patch(client, test, body):
    return client.patch(detail_url(test), data=json.dumps(body), content_type="application/json")


def test_triage_patch_writes_only_triage_fields_and_logs_it(history, triage_api, triager, reader):
    t1 = history["t1"]
    response = patch(
        triage_api, t1, {"triage_state": "investigating", "assignee": reader.pk, "triage_note": "seen"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["triage_state"], body["assignee"], body["assignee_username"], body["triage_note"]) == (
        "investigating",
        reader.pk,
        "reader",
        "seen",
    )
    assert body["status"] == "FLAKY" and body["name"] == "test_case_1"  # the full test comes back
    test = TestCase.objects.get(pk=t1.id)
    assert (test.triage_state, test.assignee, test.triage_note) == ("investigating", reader, "seen")
    entry = LogEntry.objects.get()
    assert entry.user == triager and entry.action_flag == CHANGE and entry.object_id == str(t1.id)
    assert entry.get_change_message() == (
        "Triage state: New → Investigating. Assignee: nobody → reader. Triage note edited. (API)"
    )

    # Unassign; only what changed is logged; a no-op logs nothing.
    response = patch(triage_api, t1, {"assignee": None, "triage_state": "investigating"})
    assert response.status_code == 200 and response.json()["assignee"] is None
    assert LogEntry.objects.latest("id").get_change_message() == "Assignee: reader → nobody. (API)"
    patch(triage_api, t1, {"triage_note": "seen"})
    assert LogEntry.objects.count() == 2


def test_triage_survives_later_events(history, triage_api):
    t1 = history["t1"]
    patch(triage_api, t1, {"triage_state": "fixed"})
    from tests.events.factories import at

    change(t1, at(22), "FLAKY", "HEALTHY")
    test = TestCase.objects.get(pk=t1.id)
    assert (test.status, test.triage_state) == ("HEALTHY", "fixed")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"status": "HEALTHY"}, "status", "read-only: it comes from Trunk's webhooks"),
        (
            {"quarantined": True, "triage_note": "x"},
            "quarantined",
            "read-only: it comes from Trunk's webhooks",
        ),
        ({"name": "renamed"}, "name", "read-only: it comes from Trunk's webhooks"),
        ({"codeowners": []}, "codeowners", "read-only: it comes from Trunk's webhooks"),
        ({"id": str(uuid.uuid4())}, "id", "read-only: it comes from Trunk's webhooks"),
        ({"dashboard_url": "x"}, "dashboard_url", "read-only"),
        ({"colour": "red"}, "colour", "Unknown field"),
        ({"triage_state": "someday"}, "triage_state", "not a valid choice"),
        ({"assignee": 424242}, "assignee", "Invalid pk"),
        ({"assignee": "reader"}, "assignee", "Incorrect type"),
        ({"triage_note": 0}, "triage_note", "Not a valid string"),
        ({"triage_note": None}, "triage_note", "may not be null"),
    ],
)
def test_triage_patch_rejects_other_fields_naming_them(history, triage_api, body, field, message):
    response = patch(triage_api, history["t1"], body)
    assert response.status_code == 400
    errors = response.json()
    assert field in errors and message in errors[field][0], errors
    assert TestCase.objects.get(pk=history["t1"].id).triage_note == ""
    assert not LogEntry.objects.exists()


def test_triage_note_is_bounded(history, triage_api):
    assert TRIAGE_NOTE_MAX_LENGTH == 10_000
    response = patch(triage_api, history["t1"], {"triage_note": "x" * (TRIAGE_NOTE_MAX_LENGTH + 1)})
    assert response.status_code == 400
    assert response.json() == {"triage_note": ["Ensure this field has no more than 10000 characters."]}
    assert TestCase.objects.get(pk=history["t1"].id).triage_note == ""
    note = "é" * TRIAGE_NOTE_MAX_LENGTH  # characters, not bytes
    assert patch(triage_api, history["t1"], {"triage_note": note}).status_code == 200
    assert TestCase.objects.get(pk=history["t1"].id).triage_note == note


def test_an_empty_html_url_is_null(history, api):
    t1 = history["t1"]
    assert api.get(detail_url(t1)).json()["html_url"].startswith("https://")
    TestCase.objects.filter(pk=t1.id).update(html_url="")
    Repository.objects.update(html_url="")
    body = api.get(detail_url(t1)).json()
    assert body["html_url"] is None and body["repository"]["html_url"] is None
    assert all(row["html_url"] is None for row in api.get("/api/v1/repositories/").json()["results"])


def test_triage_patch_rejects_an_inactive_assignee(history, triage_api):
    gone = User.objects.create_user("gone", is_active=False)
    response = patch(triage_api, history["t1"], {"assignee": gone.pk})
    assert response.status_code == 400 and "assignee" in response.json()


def test_triage_patch_needs_a_json_object(history, triage_api):
    response = patch(triage_api, history["t1"], ["triage_state", "fixed"])
    assert response.status_code == 400


def test_triage_patch_takes_json_only(history, triage_api):
    # DRF reads an empty form field as "not sent": a form-encoded `triage_state=` would be a no-op 200.
    response = triage_api.patch(
        detail_url(history["t1"]), "triage_state=", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415


def test_put_and_delete_are_not_allowed(history, staff_api):
    url = detail_url(history["t1"])
    assert staff_api.put(url, {"triage_state": "fixed"}, format="json").status_code == 405
    assert staff_api.delete(url).status_code == 405
    assert staff_api.post(URL, {"name": "x"}, format="json").status_code == 405


def test_patch_of_an_unknown_test_is_404(history, staff_api):
    response = staff_api.patch(f"{URL}{uuid.UUID(int=4242)}/", {"triage_state": "fixed"}, format="json")
    assert response.status_code == 404
