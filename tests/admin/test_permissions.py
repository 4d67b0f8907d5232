"""Who may do what: view-only staff browse, triage needs "change test case",
reprocess needs its own permission, and the `triager` group has exactly those."""

import importlib

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from events.models import Delivery, StatusChange, TestCase
from tests.admin.conftest import VIEW_PERMS
from tests.admin.factories import make_history

pytestmark = pytest.mark.django_db
TESTS = "/admin/events/testcase/"
DELIVERIES = "/admin/events/delivery/"
TRIAGE_ACTIONS = {
    "assign_to_me",
    "assign_to_user",
    "mark_investigating",
    "mark_fixed",
    "mark_wont_fix",
    "mark_new",
    "clear_assignee",
}
EVENTS_MODELS = (
    "delivery",
    "repository",
    "owner",
    "testcase",
    "testcaseowner",
    "statuschange",
    "monitor",
    "monitorevent",
    "monitorstate",
    "investigation",
    "investigationfact",
    "quarantinechange",
    # 0007 (their view permission comes from that migration, not 0002's)
    "triageevent",
    "ownertarget",
)
# The models 0002 gave triagers the view permission of.
MODELS_0002 = EVENTS_MODELS[:12]


def action_names(response) -> set[str]:
    form = response.context["action_form"]  # None when no action is allowed
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


@pytest.fixture
def history():
    return make_history(2, 4)


def test_anonymous_and_non_staff_users_are_sent_to_the_login(client, make_user, login, history):
    assert client.get(TESTS).status_code == 302
    assert "/admin/login/" in client.get(TESTS)["Location"]
    outsider = login(make_user("outsider", perms=VIEW_PERMS, staff=False))
    assert "/admin/login/" in outsider.get(DELIVERIES)["Location"]


def test_view_only_staff_browse_everything_but_change_nothing(login, viewer, history):
    client = login(viewer)
    for model in EVENTS_MODELS:
        if model == "testcaseowner":
            continue  # not registered: owners are shown on the tests
        assert client.get(f"/admin/events/{model}/").status_code == 200, model
    test = TestCase.objects.first()
    page = client.get(f"{TESTS}{test.pk}/change/")
    assert page.status_code == 200
    assert 'name="triage_state"' not in page.content.decode()  # shown read-only
    assert page.context["inline_admin_formsets"]  # history inlines visible too
    assert action_names(client.get(TESTS)) == {"export_csv"}
    assert action_names(client.get(DELIVERIES)) == set()
    # Forcing a triage action or a change does nothing.
    response = client.post(
        TESTS, {"action": "mark_fixed", ACTION_CHECKBOX_NAME: [str(test.pk)], "index": 0}, follow=True
    )
    assert "No action selected." in [str(m) for m in response.context["messages"]]
    assert client.post(f"{TESTS}{test.pk}/change/", {"triage_state": "fixed"}).status_code == 403
    assert not TestCase.objects.filter(triage_state="fixed").exists()


def test_triage_actions_need_the_change_permission(make_user, login, history):
    triage_only = make_user("triage_only", perms=("view_testcase", "change_testcase"))
    client = login(triage_only)
    assert action_names(client.get(TESTS)) == TRIAGE_ACTIONS | {"export_csv"}
    test = TestCase.objects.first()
    client.post(TESTS, {"action": "mark_fixed", ACTION_CHECKBOX_NAME: [str(test.pk)], "index": 0})
    assert TestCase.objects.get(pk=test.pk).triage_state == "fixed"
    # ...but not reprocessing: it has its own permission.
    assert client.get(DELIVERIES).status_code == 403  # no view permission on deliveries
    with_view = login(make_user("with_view", perms=("view_delivery", "change_testcase")))
    assert action_names(with_view.get(DELIVERIES)) == set()
    delivery = Delivery.objects.first()
    StatusChange.objects.filter(delivery=delivery).delete()
    response = with_view.post(
        DELIVERIES, {"action": "reprocess", ACTION_CHECKBOX_NAME: [delivery.pk], "index": 0}, follow=True
    )
    assert response.status_code == 200  # no action runs: the list is shown again
    assert not StatusChange.objects.filter(delivery=delivery).exists()


def test_reprocess_needs_the_reprocess_permission(make_user, login, history):
    client = login(make_user("reprocessor", perms=("view_delivery", "reprocess_delivery")))
    assert action_names(client.get(DELIVERIES)) == {"reprocess"}
    delivery = Delivery.objects.filter(event_type="v2.test_case.status_changed").first()
    StatusChange.objects.filter(delivery=delivery).delete()
    client.post(DELIVERIES, {"action": "reprocess", ACTION_CHECKBOX_NAME: [delivery.pk], "index": 0})
    assert StatusChange.objects.filter(delivery=delivery).exists()


def test_triager_group_can_triage_and_reprocess_but_not_edit_trunk_data(login, triager, history):
    client = login(triager)
    assert action_names(client.get(TESTS)) == TRIAGE_ACTIONS | {"export_csv"}
    assert action_names(client.get(DELIVERIES)) == {"reprocess"}
    test = TestCase.objects.first()
    page = client.get(f"{TESTS}{test.pk}/change/")
    assert 'name="triage_state"' in page.content.decode()
    assert client.get(f"{TESTS}add/").status_code == 403
    assert client.get(f"{TESTS}{test.pk}/delete/").status_code == 403
    delivery = Delivery.objects.first()
    assert client.post(f"{DELIVERIES}{delivery.pk}/change/", {}).status_code == 403
    assert client.get(f"{DELIVERIES}{delivery.pk}/delete/").status_code == 403
    assert client.get("/admin/events/statuschange/").status_code == 200


def test_triager_group_has_exactly_its_permissions():
    group = Group.objects.get(name="triager")
    perms = set(group.permissions.values_list("content_type__app_label", "codename"))
    expected = {("events", f"view_{m}") for m in EVENTS_MODELS}
    expected |= {("events", "change_testcase"), ("events", "reprocess_delivery")}
    # 0007: verdicts, triage history and owners' targets, to view.
    expected |= {("events", f"view_{m}") for m in ("investigationverdict", "triageevent", "ownertarget")}
    assert perms == expected


def test_data_migration_creates_missing_permissions_itself():
    """On a fresh database the post_migrate signal has not created permissions yet
    when the migration runs: it must create them."""
    Permission.objects.filter(content_type__app_label="events").delete()
    Group.objects.filter(name="triager").delete()
    migration = importlib.import_module("events.migrations.0002_triager_group")
    state = MigrationLoader(connection).project_state(("events", "0002_triager_group"))

    class SchemaEditor:
        pass

    editor = SchemaEditor()
    editor.connection = connection
    migration.create_triager_group(state.apps, editor)
    assert Group.objects.get(name="triager").permissions.count() == len(MODELS_0002) + 2
    # Running it again changes nothing (idempotent): a database migrated back past it
    # (which keeps the group and its members) and forward again has the same group.
    migration.create_triager_group(state.apps, editor)
    assert Group.objects.get(name="triager").permissions.count() == len(MODELS_0002) + 2
