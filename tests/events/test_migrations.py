"""Upgrades keep data: a database with history at any earlier state of `events`'
migrations migrates to the latest with its deliveries byte for byte and the same
derived state, which a rebuild reproduces.

The history is built at the latest state, through the receiver (signed deliveries
posted to /webhooks/trunk/: every event type, redeliveries, invalid and ignored bodies,
a body that is not UTF-8 and one holding a NUL byte, a delivery left pending by the
deferred projection) plus triage data, since the live receiver needs the latest
schema. Each test then runs `manage.py migrate events <earlier state>` (the migrations
must be reversible and keep the rows of every table that remains), checks the
deliveries there, and `manage.py migrate` back to the latest. The real command, not an
executor with muted signals: post_migrate receivers run as in production (a hook that
ran today's code after every migrate once broke migrating back).

Every node of the migration graph is covered (read from the graph, so a new migration
is covered without editing this file); zero drops every table, so there the check is
that the way back up gives a working, empty database that still has its triagers.
django-test-migrations' `migrator` fixture makes the test transactional and migrates
the database back to the latest state afterwards, whatever happened.
"""

import importlib
import json
import uuid
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from events import demo
from events.demo import payloads
from events.models import Delivery, TestCase
from events.projection.projector import project_pending
from tests.conftest import DEMO_NOW
from tests.events.factories import MONITOR, at, fake_test
from tests.events.state import projected_state

pytestmark = pytest.mark.django_db(transaction=True)


def events_migrations() -> list[str]:
    """The names of events' migrations, in the order they apply."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    (leaf,) = graph.leaf_nodes("events")
    return [name for app, name in graph.forwards_plan(leaf) if app == "events"]


EARLIER = events_migrations()[:-1]


def delivery_rows() -> list[tuple]:
    """Every column of every delivery, as the database returns them (raw SQL: at an
    earlier state the model may not match the table)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM events_delivery ORDER BY id")
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    return [
        tuple(
            sorted((n, bytes(v) if isinstance(v, memoryview) else v) for n, v in zip(names, row, strict=True))
        )
        for row in rows
    ]


def triagers() -> tuple:
    group = Group.objects.get(name="triager")
    return (
        sorted(group.user_set.values_list("username", flat=True)),
        sorted(group.permissions.values_list("content_type__app_label", "codename")),
    )


def snapshot() -> dict:
    return {"deliveries": delivery_rows(), "state": projected_state(), "triagers": triagers()}


def ensure_triager_group() -> None:
    """The flush after a transactional test empties every table, so the group that the
    data migration created may be gone (the permissions come back with post_migrate):
    create it again with the migration's own function. (serialized_rollback would restore
    it, but collides with the content types that post_migrate re-creates after the flush
    of other transactional tests.)"""
    if not Group.objects.filter(name="triager").exists():
        for name, function in (
            ("0002_triager_group", "create_triager_group"),
            ("0007_triager_views_new_models", "add_views"),
        ):
            migration = importlib.import_module(f"events.migrations.{name}")
            state = MigrationLoader(connection).project_state(("events", name))
            getattr(migration, function)(state.apps, SimpleNamespace(connection=connection))


@pytest.fixture
def history(signed_post, settings, django_user_model):
    """A small demo history and one delivery of each odd kind, all through the receiver,
    and triage data on a test (assigned to a member of the triager group)."""
    ensure_triager_group()
    messages = demo.generate_history(now=DEMO_NOW, tests=4, days=20, seed=3, repositories=2)
    plan = demo.plan_deliveries(messages, seed=3, id_prefix="msg_mig_")
    for msg_id, payload in plan:
        assert signed_post(payload, msg_id=msg_id).status_code == 200
    test = fake_test(901)
    by = {"monitor_id": MONITOR, "monitor_type": "pass_on_retry"}
    odd = [
        ("msg_odd_status", payloads.status_changed(test, at=at(2), previous="HEALTHY", new="FLAKY", **by)),
        ("msg_odd_v1", payloads.status_changed_v1(test, at=at(4), previous="FLAKY", new="BROKEN")),
        (
            "msg_odd_monitor",
            payloads.monitor_status_changed(
                test, at=at(3), monitor_id=MONITOR, monitor_type="pass_on_retry", status="active"
            ),
        ),
        ("msg_odd_unknown", {"type": "test_case.something_new", "data": {"x": 1}}),
        ("msg_odd_missing_field", {"type": "v2.test_case.status_changed", "data": {}}),
        ("msg_odd_not_json", "this is {not json"),
        ("msg_odd_not_utf8", b'{"type": "x", "name": "caf\xe9"}'),
        ("msg_odd_nul", b'{"type": "y", "name": "a\x00b"}'),
    ]
    for msg_id, payload in odd:
        assert signed_post(payload, msg_id=msg_id).status_code == 200
    assert signed_post(odd[0][1], msg_id="msg_odd_status").json()["status"] == "duplicate"
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    later = payloads.status_changed(test, at=at(5), previous="BROKEN", new="HEALTHY", **by)
    assert signed_post(later, msg_id="msg_odd_pending").status_code == 200
    settings.FLAKYBOARD_DEFERRED_PROJECTION = False

    triager = django_user_model.objects.create_user("tri", password=uuid.uuid4().hex)
    triager.groups.add(Group.objects.get(name="triager"))
    TestCase.objects.filter(pk=test.id).update(
        triage_state=TestCase.Triage.INVESTIGATING,
        assignee=triager,
        triage_note="flaky since the retry change",
    )
    assert set(Delivery.objects.values_list("outcome", flat=True)) == {
        "processed",
        "ignored",
        "invalid",
        "pending",
    }
    assert set(Delivery.objects.values_list("event_type", flat=True)) >= {
        "v2.test_case.status_changed",
        "test_case.monitor_status_changed",
        "test_case.investigation_completed",
        "test_case.quarantining_setting_changed",
    }
    assert Delivery.objects.exclude(raw_body=None).count() == 2
    return snapshot()


@pytest.mark.parametrize("target", EARLIER)
def test_migrating_from_an_earlier_state_keeps_the_history(migrator, history, target):
    call_command("migrate", "events", target, verbosity=0)
    # Every column the earlier state has keeps its values (a later migration may add some).
    earlier = delivery_rows()
    columns = {name for name, _ in earlier[0]}
    assert earlier == [tuple(p for p in row if p[0] in columns) for row in history["deliveries"]]
    call_command("migrate", verbosity=0)
    assert snapshot() == history
    # The derived state is what the deliveries give: apply the pending one, then a
    # rebuild from the deliveries alone reproduces every projected row.
    assert project_pending() == 1
    projected = snapshot()
    assert projected["state"] != history["state"]
    call_command("rebuild_projections", verbosity=0)
    assert snapshot() == projected


def test_migrating_from_zero_gives_a_working_empty_database(migrator, history, signed_post):
    call_command("migrate", "events", "zero", verbosity=0)
    assert "events_delivery" not in connection.introspection.table_names()
    call_command("migrate", verbosity=0)
    assert not Delivery.objects.exists() and not TestCase.objects.exists()
    # The triager group lives in auth's tables: unapplying events' migrations keeps it,
    # its members and its permissions.
    assert triagers() == history["triagers"]
    payload = payloads.status_changed(
        fake_test(1),
        at=at(2),
        previous="HEALTHY",
        new="BROKEN",
        monitor_id=MONITOR,
        monitor_type="pass_on_retry",
    )
    assert signed_post(json.dumps(payload)).status_code == 200
    assert TestCase.objects.get().status == "BROKEN"
