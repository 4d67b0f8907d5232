"""Triage actions on selected test cases, including the intermediate "assign to" form."""

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, LogEntry

from events.models import TestCase
from tests.admin.factories import BASE, flaky, make_history, make_test

pytestmark = pytest.mark.django_db
URL = "/admin/events/testcase/"


def act(client, action, tests, *, url=URL, select_across=False, follow=True, **extra):
    data = {
        "action": action,
        ACTION_CHECKBOX_NAME: [str(t.id) for t in tests],
        "index": 0,
        "select_across": "1" if select_across else "0",
        **extra,
    }
    return client.post(url, data, follow=follow)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def log_messages(test) -> list[str]:
    return list(
        LogEntry.objects.filter(object_id=str(test.id), action_flag=CHANGE)
        .order_by("id")
        .values_list("change_message", flat=True)
    )


@pytest.fixture
def three():
    return make_history(3, 2)


def test_assign_to_me_reports_changed_rows_and_logs_each(admin_client, admin_user, three):
    TestCase.objects.filter(pk=three[0].id).update(assignee=admin_user)
    response = act(admin_client, "assign_to_me", three)
    assert response.status_code == 200
    assert messages_of(response) == ["2 test cases assigned to you. 1 selected test case already was."]
    assert set(TestCase.objects.values_list("assignee", flat=True)) == {admin_user.pk}
    assert log_messages(three[0]) == []  # unchanged: nothing logged
    entry = LogEntry.objects.get(object_id=str(three[1].id))
    assert entry.user == admin_user and entry.action_flag == CHANGE
    assert entry.get_change_message() == "Assignee: nobody → admin. (action: assign to me)"
    assert entry.object_repr == three[1].name


@pytest.mark.parametrize(
    ("action", "state", "label"),
    [
        ("mark_investigating", "investigating", "Investigating"),
        ("mark_fixed", "fixed", "Fixed"),
        ("mark_wont_fix", "wont_fix", "Won't fix"),
    ],
)
def test_set_triage_state(admin_client, three, action, state, label):
    response = act(admin_client, action, three[:2])
    assert messages_of(response) == [f"2 test cases marked “{label}”."]
    assert dict(TestCase.objects.values_list("name", "triage_state")) == {
        three[0].name: state,
        three[1].name: state,
        three[2].name: "new",
    }
    assert log_messages(three[0]) == [f"Triage state: New → {label}. (action: mark {label.lower()})"]


def test_set_triage_state_back_to_new(admin_client, three):
    TestCase.objects.update(triage_state="fixed")
    response = act(admin_client, "mark_new", three[:1])
    assert messages_of(response) == ["1 test case marked “New”."]
    assert TestCase.objects.get(pk=three[0].id).triage_state == "new"
    assert log_messages(three[0]) == ["Triage state: Fixed → New. (action: mark new)"]


def test_clear_assignee(admin_client, make_user, three):
    alice = make_user("alice")
    TestCase.objects.filter(pk__in=[three[0].id, three[1].id]).update(assignee=alice)
    response = act(admin_client, "clear_assignee", three)
    assert messages_of(response) == ["2 test cases unassigned. 1 selected test case already was."]
    assert not TestCase.objects.filter(assignee__isnull=False).exists()
    assert log_messages(three[1]) == ["Assignee: alice → nobody. (action: clear assignee)"]


def test_actions_write_only_triage_columns(admin_client, three):
    before = {t.pk: (t.status, t.status_since, t.name, t.last_event_at) for t in TestCase.objects.all()}
    act(admin_client, "mark_fixed", three)
    act(admin_client, "assign_to_me", three)
    after = {t.pk: (t.status, t.status_since, t.name, t.last_event_at) for t in TestCase.objects.all()}
    assert before == after


def test_assign_to_user_shows_an_intermediate_form_then_applies(admin_client, make_user, three):
    alice = make_user("alice")
    make_user("outsider", staff=False)
    response = act(admin_client, "assign_to_user", three[:2], follow=False)
    assert response.status_code == 200
    assert "admin/events/testcase/assign_to_user.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert "Assign 2 selected test cases to:" in html
    assert f'<option value="{alice.pk}">alice</option>' in html
    assert "outsider" not in html  # only active staff can be assigned
    assert three[0].name in html and three[2].name not in html
    for test in three[:2]:
        assert f'name="{ACTION_CHECKBOX_NAME}" value="{test.id}"' in html
    assert not TestCase.objects.filter(assignee__isnull=False).exists()  # nothing yet

    # The form posts back the same selection with the chosen user.
    response = admin_client.post(
        URL,
        {
            "action": "assign_to_user",
            ACTION_CHECKBOX_NAME: [str(t.id) for t in three[:2]],
            "select_across": "0",
            "apply": "yes",
            "assignee": alice.pk,
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0].startswith(URL)
    assert messages_of(response) == ["2 test cases assigned to alice."]
    assert dict(TestCase.objects.values_list("name", "assignee")) == {
        three[0].name: alice.pk,
        three[1].name: alice.pk,
        three[2].name: None,
    }
    assert log_messages(three[0]) == ["Assignee: nobody → alice. (action: assign to alice)"]


def test_assign_to_user_rejects_a_non_staff_user(admin_client, make_user, three):
    outsider = make_user("outsider", staff=False)
    response = admin_client.post(
        URL,
        {
            "action": "assign_to_user",
            ACTION_CHECKBOX_NAME: [str(three[0].id)],
            "select_across": "0",
            "apply": "yes",
            "assignee": outsider.pk,
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not TestCase.objects.filter(assignee__isnull=False).exists()


def test_select_across_applies_to_every_filtered_row_only(admin_client):
    tests = make_history(6, 1)  # one status change each: all FLAKY, variants alternate
    page_one = [tests[0]]
    response = act(
        admin_client, "mark_investigating", page_one, url=f"{URL}?variant=linux", select_across=True
    )
    assert messages_of(response) == ["3 test cases marked “Investigating”."]
    assert set(TestCase.objects.filter(triage_state="investigating").values_list("variant", flat=True)) == {
        "linux"
    }
    assert TestCase.objects.filter(triage_state="new").count() == 3


def test_select_across_through_the_intermediate_form(admin_client, make_user):
    alice = make_user("alice")
    tests = make_history(4, 1)
    response = act(
        admin_client,
        "assign_to_user",
        tests[:1],
        url=f"{URL}?variant=linux",
        select_across=True,
        follow=False,
    )
    assert "Assign 2 selected test cases to:" in response.content.decode()
    assert 'name="select_across" value="1"' in response.content.decode()
    response = admin_client.post(
        f"{URL}?variant=linux",
        {
            "action": "assign_to_user",
            ACTION_CHECKBOX_NAME: [str(tests[0].id)],
            "select_across": "1",
            "apply": "yes",
            "assignee": alice.pk,
        },
        follow=True,
    )
    assert messages_of(response) == ["2 test cases assigned to alice."]
    assert set(TestCase.objects.filter(assignee=alice).values_list("variant", flat=True)) == {"linux"}


def test_export_csv(admin_client, admin_user):
    tests = make_history(3, 3)
    formula = make_test(50, name='=HYPERLINK("http://evil")', codeowners=["@acme/web"])
    flaky(formula, BASE)
    TestCase.objects.filter(pk=tests[0].id).update(
        triage_state="fixed", assignee=admin_user, triage_note="flaky DNS"
    )
    response = act(admin_client, "export_csv", [*tests, formula], follow=False)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="flakyboard-tests-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 4
    by_id = {row["id"]: row for row in rows}
    first = by_id[str(tests[0].id)]
    assert first["name"] == tests[0].name
    assert (
        first["triage_state"] == "fixed"
        and first["assignee"] == "admin"
        and first["triage_note"] == "flaky DNS"
    )
    assert first["repository"] == "acme/checkout"
    assert first["owners"] == "@Acme/Web"
    assert first["dashboard_url"] == f"http://testserver/tests/{tests[0].id}/"
    assert first["latest_investigation_confidence"] == "0.25"
    # A cell starting with "=" is not a spreadsheet formula.
    assert by_id[str(formula.id)]["name"] == '\'=HYPERLINK("http://evil")'
    # Exporting changes nothing, and says how many rows it exported.
    assert not LogEntry.objects.exists()
    page = admin_client.get(URL)
    assert messages_of(page) == ["Exported 4 test cases as CSV."]


def test_no_selection_changes_nothing(admin_client, three):
    response = admin_client.post(URL, {"action": "mark_fixed", "index": 0, "select_across": "0"}, follow=True)
    assert "Items must be selected" in messages_of(response)[0]
    assert not TestCase.objects.exclude(triage_state="new").exists()
