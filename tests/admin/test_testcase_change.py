"""The test case change page: Trunk's fields read-only, triage fields editable and
logged, capped read-only history inlines, links to the dashboard and to Trunk."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.admin import TestCaseAdmin
from events.models import TRIAGE_NOTE_MAX_LENGTH, TestCase
from tests.admin.factories import BASE, flaky, investigate, make_history, make_test

pytestmark = pytest.mark.django_db


def change_url(test) -> str:
    return f"/admin/events/testcase/{test.id}/change/"


def form_data(**overrides) -> dict:
    data = {"triage_state": "new", "assignee": "", "triage_note": ""}
    for prefix in (
        "status_changes",
        "monitor_events",
        "investigations",
        "quarantine_changes",
        "triage_events",
    ):
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "0",
                f"{prefix}-INITIAL_FORMS": "0",
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "0",
            }
        )
    data.update(overrides)
    return data


@pytest.fixture
def test():
    return make_history(1, 8)[0]


def test_trunk_fields_are_read_only_and_triage_fields_editable(admin_client, test):
    response = admin_client.get(change_url(test))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert set(form.fields) == {"triage_state", "assignee", "triage_note"}
    html = response.content.decode()
    assert 'name="triage_state"' in html and 'name="assignee"' in html and 'name="triage_note"' in html
    for trunk_field in ("name", "classname", "status", "quarantined", "file_path", "variant", "codeowners"):
        assert f'name="{trunk_field}"' not in html
    assert test.name in html and test.file_path in html


def test_saving_triage_fields_changes_only_them_and_logs_old_and_new_values(admin_client, make_user, test):
    alice = make_user("alice")
    before = TestCase.objects.get(pk=test.id)
    response = admin_client.post(
        change_url(test),
        form_data(
            triage_state="fixed",
            assignee=alice.pk,
            triage_note="Fixed by #123",
            name="hacked",
            status="BROKEN",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    after = TestCase.objects.get(pk=test.id)
    assert (after.triage_state, after.assignee, after.triage_note) == ("fixed", alice, "Fixed by #123")
    assert (after.name, after.status, after.status_since) == (before.name, before.status, before.status_since)
    entry = LogEntry.objects.get(object_id=str(test.id))
    assert (
        entry.get_change_message()
        == "Triage state: New → Fixed. Assignee: nobody → alice. Triage note edited."
    )
    history = admin_client.get(f"/admin/events/testcase/{test.id}/history/").content.decode()
    assert "Triage state: New → Fixed." in history and "admin" in history


def test_saving_never_overwrites_trunk_fields_updated_meanwhile(admin_client, test):
    """A projection can update the row between the admin's read and its write."""
    real_get_object = TestCaseAdmin.get_object

    def get_object_then_projection_moves_on(self, request, object_id, from_field=None):
        obj = real_get_object(self, request, object_id, from_field)
        if request.method == "POST":
            TestCase.objects.filter(pk=obj.pk).update(status="BROKEN", name="renamed_by_trunk")
        return obj

    with mock.patch.object(TestCaseAdmin, "get_object", get_object_then_projection_moves_on):
        response = admin_client.post(change_url(test), form_data(triage_state="investigating"))
    assert response.status_code == 302
    row = TestCase.objects.get(pk=test.id)
    assert (row.status, row.name, row.triage_state) == ("BROKEN", "renamed_by_trunk", "investigating")


def test_a_former_assignee_stays_valid_when_only_the_note_changes(admin_client, make_user, test):
    former = make_user("former", staff=False)
    TestCase.objects.filter(pk=test.id).update(assignee=former)
    response = admin_client.post(change_url(test), form_data(assignee=former.pk, triage_note="still theirs"))
    assert response.status_code == 302
    assert TestCase.objects.get(pk=test.id).triage_note == "still theirs"
    assert LogEntry.objects.get().get_change_message() == "Triage note edited."


def test_the_triage_note_is_bounded(admin_client, test):
    too_long = "x" * (TRIAGE_NOTE_MAX_LENGTH + 1)
    response = admin_client.post(change_url(test), form_data(triage_note=too_long))
    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors["triage_note"] == [
        "Ensure this value has at most 10000 characters (it has 10001)."
    ]
    assert 'maxlength="10000"' in response.content.decode()
    assert TestCase.objects.get(pk=test.id).triage_note == ""
    assert not LogEntry.objects.exists()
    response = admin_client.post(change_url(test), form_data(triage_note=too_long[:-1]))
    assert response.status_code == 302
    assert len(TestCase.objects.get(pk=test.id).triage_note) == TRIAGE_NOTE_MAX_LENGTH


def test_inlines_show_history_newest_first(admin_client, test):
    response = admin_client.get(change_url(test))
    formsets = {fs.formset.prefix: fs for fs in response.context["inline_admin_formsets"]}
    assert set(formsets) == {
        "status_changes",
        "monitor_events",
        "investigations",
        "quarantine_changes",
        "triage_events",
    }
    times = [form.original.occurred_at for form in formsets["status_changes"]]
    assert len(times) == 2 and times == sorted(times, reverse=True)
    html = response.content.decode()
    assert "Finding 6" in html  # investigation summary
    assert "ALWAYS_QUARANTINE" in html
    for fs in formsets.values():
        assert not fs.has_add_permission and not fs.has_change_permission and not fs.has_delete_permission


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_a_test_with_many_events_opens_with_the_same_queries_and_capped_inlines(admin_client):
    few = make_test(1, name="few")
    flaky(few, BASE)
    many = make_test(2, name="many")
    for k in range(45):
        flaky(
            many,
            BASE + timedelta(hours=k),
            previous="FLAKY" if k % 2 else "HEALTHY",
            new="HEALTHY" if k % 2 else "FLAKY",
        )
    for k in range(25):
        investigate(many, BASE + timedelta(days=3, hours=k))
    assert queries_for(admin_client, change_url(few)) == queries_for(admin_client, change_url(many))
    response = admin_client.get(change_url(many))
    formsets = {fs.formset.prefix: fs for fs in response.context["inline_admin_formsets"]}
    assert len(list(formsets["status_changes"])) == 20
    assert len(list(formsets["investigations"])) == 20
    newest = [form.original.occurred_at for form in formsets["status_changes"]][0]
    assert newest == BASE + timedelta(hours=44)
    html = response.content.decode()
    assert f"/admin/events/statuschange/?test_case__id__exact={many.id}" in html
    assert "Only the 20 newest are shown." in html
    # The full list behind the link has every row.
    full = admin_client.get(f"/admin/events/statuschange/?test_case__id__exact={many.id}")
    assert full.context["cl"].result_count == 45


def test_saving_a_test_with_capped_inlines_works(admin_client):
    many = make_test(2, name="many")
    for k in range(25):
        flaky(
            many,
            BASE + timedelta(hours=k),
            previous="FLAKY" if k % 2 else "HEALTHY",
            new="HEALTHY" if k % 2 else "FLAKY",
        )
    page = admin_client.get(change_url(many))
    management = {}
    for fs in page.context["inline_admin_formsets"]:
        for name in fs.formset.management_form.fields:
            management[f"{fs.formset.prefix}-{name}"] = fs.formset.management_form[name].value()
    response = admin_client.post(change_url(many), {**form_data(triage_state="investigating"), **management})
    assert response.status_code == 302
    assert TestCase.objects.get(pk=many.id).triage_state == "investigating"


def test_links_to_dashboard_and_trunk(admin_client, test):
    html = admin_client.get(change_url(test)).content.decode()
    assert "Dashboard page" in html
    assert f"https://app.trunk.io/demo/flaky-tests/test/{test.id}" in html
    assert "View in Trunk" in html
    content_type = ContentType.objects.get_for_model(TestCase)
    view_on_site = admin_client.get(f"/admin/r/{content_type.id}/{test.id}/")
    assert view_on_site.status_code == 302
    assert view_on_site["Location"].endswith(f"/tests/{test.id}/")


def test_a_non_http_trunk_url_is_never_a_link(admin_client, test):
    TestCase.objects.filter(pk=test.id).update(html_url="javascript:alert(1)")
    html = admin_client.get(change_url(test)).content.decode()
    assert 'href="javascript:' not in html
    assert "View in Trunk" not in html


def test_untrusted_text_is_escaped_on_the_change_page(admin_client):
    evil = make_test(7, name="<img src=x onerror=alert(1)>", classname="<b>c</b>")
    flaky(evil, BASE)
    investigate(evil, BASE + timedelta(hours=1), summary="<script>alert('summary')</script>")
    html = admin_client.get(change_url(evil)).content.decode()
    assert "<img src=x onerror=alert(1)>" not in html
    assert "<script>alert('summary')</script>" not in html
    assert "&lt;script&gt;" in html


def test_test_cases_cannot_be_added_or_deleted(admin_client, test):
    assert admin_client.get("/admin/events/testcase/add/").status_code == 403
    assert admin_client.get(f"/admin/events/testcase/{test.id}/delete/").status_code == 403
    assert admin_client.post(f"/admin/events/testcase/{test.id}/delete/", {"post": "yes"}).status_code == 403
    assert TestCase.objects.filter(pk=test.id).exists()
    response = admin_client.get("/admin/events/testcase/")
    assert "delete_selected" not in response.content.decode()
