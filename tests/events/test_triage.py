"""events.triage (every triage write, one audit format) and events.exports (one tests CSV
for the admin and the dashboard)."""

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from events.exports import TEST_CSV_COLUMNS
from events.models import TestCase
from events.triage import (
    VIA_API,
    VIA_DASHBOARD,
    TriageResult,
    change_message,
    triage_test,
    triage_tests,
    triage_values,
)
from tests.admin.factories import BASE, flaky, investigate, make_history, make_test

pytestmark = pytest.mark.django_db


@pytest.fixture
def tests():
    return [TestCase.objects.get(pk=t.id) for t in make_history(3, 2)]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", is_staff=True)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", is_staff=True)


def log(test) -> list[str]:
    return list(
        LogEntry.objects.filter(object_id=str(test.pk))
        .order_by("id")
        .values_list("change_message", flat=True)
    )


# ---------------------------------------------------------------- one test


def test_one_test_writes_the_triage_columns_and_logs_old_and_new(tests, alice, bob):
    test = tests[0]
    changed = triage_test(
        test, by=bob, state=TestCase.Triage.FIXED, assignee=alice, note="DNS", via=VIA_DASHBOARD
    )
    assert changed == ["triage_state", "assignee", "triage_note"]
    row = TestCase.objects.get(pk=test.pk)
    assert (row.triage_state, row.assignee, row.triage_note) == ("fixed", alice, "DNS")
    assert (test.triage_state, test.assignee, test.triage_note) == ("fixed", alice, "DNS")  # in memory too
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.object_id) == (bob, CHANGE, str(test.pk))
    assert entry.content_type.model_class() is TestCase and entry.object_repr == test.name
    assert entry.get_change_message() == (
        "Triage state: New → Fixed. Assignee: nobody → alice. Triage note edited. (dashboard)"
    )


def test_only_what_changed_is_written_and_logged(tests, alice, bob):
    test = tests[0]
    triage_test(test, by=bob, assignee=alice)
    changed = triage_test(test, by=bob, state="investigating", assignee=alice, note="", via=VIA_API)
    assert changed == ["triage_state"]
    assert log(test) == ["Assignee: nobody → alice.", "Triage state: New → Investigating. (API)"]
    triage_test(test, by=bob, assignee=None)
    assert log(test)[-1] == "Assignee: alice → nobody."


def test_nothing_changed_writes_and_logs_nothing(tests, bob):
    test = tests[0]
    with CaptureQueriesContext(connection) as ctx:
        assert triage_test(test, by=bob, state="new", assignee=None, note="") == []
    assert not any(q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT")) for q in ctx.captured_queries)
    assert triage_test(test, by=bob) == []  # no field given
    assert not LogEntry.objects.exists()


def test_the_write_never_touches_trunks_columns(tests, bob):
    """A projection may update the row after the caller read it: its values stay."""
    test = tests[0]
    TestCase.objects.filter(pk=test.pk).update(status="BROKEN", name="renamed_by_trunk")
    triage_test(test, by=bob, state="fixed")  # `test` still holds the old status and name
    row = TestCase.objects.get(pk=test.pk)
    assert (row.status, row.name, row.triage_state) == ("BROKEN", "renamed_by_trunk", "fixed")


# ---------------------------------------------------------------- many tests


def test_many_tests_count_changed_and_unchanged_and_log_each(tests, alice, bob):
    TestCase.objects.filter(pk=tests[1].pk).update(assignee=alice)
    result = triage_tests(TestCase.objects.all(), by=bob, assignee=alice, via="action: assign to alice")
    assert result == TriageResult(changed=2, unchanged=1)
    assert set(TestCase.objects.values_list("assignee", flat=True)) == {alice.pk}
    assert log(tests[0]) == log(tests[2]) == ["Assignee: nobody → alice. (action: assign to alice)"]
    assert log(tests[1]) == []


def test_many_tests_by_ids(tests, bob):
    result = triage_tests([tests[0].pk, tests[2].pk], by=bob, state=TestCase.Triage.WONT_FIX)
    assert result == TriageResult(changed=2, unchanged=0)
    assert list(TestCase.objects.order_by("name").values_list("triage_state", flat=True)) == [
        "wont_fix",
        "new",
        "wont_fix",
    ]
    assert triage_tests([tests[0].pk], by=bob, state="wont_fix") == TriageResult(changed=0, unchanged=1)
    assert LogEntry.objects.count() == 2


def test_many_tests_log_each_tests_own_old_values(tests, alice, bob):
    TestCase.objects.filter(pk=tests[0].pk).update(assignee=alice, triage_state="fixed")
    triage_tests(TestCase.objects.all(), by=bob, assignee=bob, state="investigating")
    assert log(tests[0]) == ["Triage state: Fixed → Investigating. Assignee: alice → bob."]
    assert log(tests[1]) == ["Triage state: New → Investigating. Assignee: nobody → bob."]


# ---------------------------------------------------------------- the audit format


def test_one_message_format():
    assert change_message(state=("new", "fixed")) == "Triage state: New → Fixed."
    assert change_message(assignee=(None, "alice"), via="API") == "Assignee: nobody → alice. (API)"
    assert change_message(note_edited=True, via="action: x") == "Triage note edited. (action: x)"


def test_form_and_serializer_fields_map_to_the_services_keywords(alice):
    data = {"triage_state": "fixed", "assignee": alice, "triage_note": "n", "other": 1}
    assert triage_values(data) == {"state": "fixed", "assignee": alice, "note": "n"}
    assert triage_values({"assignee": None}) == {"assignee": None}


def test_every_caller_writes_the_same_format(client, admin_client, admin_user, tests, alice):
    """The admin's change form and action, the dashboard and the API: one format."""
    one, two, three = tests
    form = {"triage_state": "fixed", "assignee": "", "triage_note": ""}
    for prefix in (
        "status_changes",
        "monitor_events",
        "investigations",
        "quarantine_changes",
        "triage_events",
    ):
        form.update({f"{prefix}-{k}": "0" for k in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS")})
        form[f"{prefix}-MAX_NUM_FORMS"] = "0"
    assert admin_client.post(f"/admin/events/testcase/{one.pk}/change/", form).status_code == 302
    admin_client.post(
        "/admin/events/testcase/",
        {"action": "mark_fixed", ACTION_CHECKBOX_NAME: [str(two.pk)], "index": 0},
    )
    admin_client.post(reverse("dashboard:test-triage", args=[three.pk]), {"triage_state": "fixed"})
    response = admin_client.patch(
        f"/api/v1/test-cases/{three.pk}/", {"assignee": alice.pk}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert log(one) == ["Triage state: New → Fixed."]
    assert log(two) == ["Triage state: New → Fixed. (action: mark fixed)"]
    assert log(three) == ["Triage state: New → Fixed. (dashboard)", "Assignee: nobody → alice. (API)"]
    # The admin history of a test shows the dashboard's and the API's changes too.
    history = admin_client.get(f"/admin/events/testcase/{three.pk}/history/").content.decode()
    assert "Triage state: New → Fixed. (dashboard)" in history and "(API)" in history


# ---------------------------------------------------------------- the CSV


def read_csv(response) -> list[dict[str, str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="flakyboard-tests-')
    text = b"".join(response.streaming_content).decode()
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    assert tuple(header) == TEST_CSV_COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


def test_admin_and_dashboard_export_the_same_columns_and_cells(admin_client, alice):
    hostile = make_test(
        7,
        name='=HYPERLINK("http://evil")',
        classname="+SUM(A1)",
        file_path="-2+3",
        codeowners=["@acme/web", "=cmd|' /C calc'!A0"],
        variant="@SUM(A1)",
    )
    flaky(hostile, BASE)
    investigate(hostile, BASE, confidence=0.25)
    TestCase.objects.filter(pk=hostile.id).update(assignee=alice, triage_note="\tnote", triage_state="fixed")

    from_admin = read_csv(
        admin_client.post(
            "/admin/events/testcase/",
            {"action": "export_csv", ACTION_CHECKBOX_NAME: [str(hostile.id)], "index": 0},
        )
    )
    from_dashboard = read_csv(admin_client.get(reverse("dashboard:tests-csv")))
    assert from_admin == from_dashboard
    [row] = from_admin
    assert row["id"] == str(hostile.id)
    assert row["assignee"] == "alice" and row["triage_state"] == "fixed" and row["quarantined"] == "false"
    assert row["latest_investigation_confidence"] == "0.25"
    assert row["dashboard_url"] == f"http://testserver/tests/{hostile.id}/"
    # Hostile values are quoted (formula prefixes), handles are not.
    assert row["name"] == '\'=HYPERLINK("http://evil")'
    assert row["classname"] == "'+SUM(A1)" and row["file_path"] == "'-2+3"
    assert row["variant"] == "'@SUM(A1)" and row["triage_note"] == "'\tnote"
    assert row["owners"] == "'=cmd|' /C calc'!A0;@acme/web"
