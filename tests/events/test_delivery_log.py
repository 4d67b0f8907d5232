"""The delivery log is append-only in the database (PostgreSQL: migration
0004_delivery_append_only's trigger): what a delivery received cannot be rewritten and a
delivery cannot be deleted, while what processing decides still can; a retention job
lifts it for one transaction (events.delivery_log)."""

from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from events.delivery_log import ALLOW_CHANGES, delivery_changes_allowed
from events.demo import payloads
from events.models import Delivery, StatusChange
from events.projection.replay import reprocess_delivery
from tests.events.factories import MONITOR, at, deliver, fake_test

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL)"),
]

RECEIVED = {
    "svix_id": "msg_other",
    "body": '{"type": "rewritten"}',
    "raw_body": b"\xff",
    "headers": {"svix-id": "msg_other"},
    "user_agent": "someone else",
    "received_at": datetime(2020, 1, 1, tzinfo=UTC),
}


@pytest.fixture
def delivery():
    payload = payloads.status_changed(
        fake_test(1), at=at(2), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="x"
    )
    return deliver(payload, msg_id="msg_1").delivery


def refused():
    """Raises the trigger's error, inside a savepoint (the test's transaction goes on)."""
    return pytest.raises(DatabaseError, match="events_delivery is append-only")


@pytest.mark.parametrize("column", list(RECEIVED))
def test_what_was_received_cannot_be_rewritten(delivery, column):
    with refused(), transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(**{column: RECEIVED[column]})
    if column == "body":  # plain SQL too, not only the ORM
        with refused(), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE events_delivery SET body = body || ' ' WHERE id = %s", [delivery.pk])


def test_what_processing_decides_can_change(delivery):
    now = timezone.now()
    changed = Delivery.objects.filter(pk=delivery.pk).update(
        outcome=Delivery.Outcome.FAILED,
        error="a bug",
        processed_at=None,
        event_type="v2.test_case.status_changed",
        occurred_at=now,
        redeliveries=3,
        last_redelivered_at=now,
    )
    assert changed == 1
    # save() writes every column, the received ones unchanged: allowed.
    delivery.refresh_from_db()
    delivery.error = "another bug"
    delivery.save()
    # The application's own paths: a redelivery is counted, a reprocess rewrites the outcome.
    assert deliver(delivery.body, msg_id="msg_1").result.name == "REDELIVERY"
    assert reprocess_delivery(delivery) == Delivery.Outcome.PROCESSED
    delivery.refresh_from_db()
    assert (delivery.outcome, delivery.error, delivery.redeliveries) == ("processed", "", 4)


def test_a_delivery_cannot_be_deleted(delivery):
    with refused(), transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).delete()
    with refused(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_delivery")
    assert Delivery.objects.filter(pk=delivery.pk).exists()
    assert Delivery.objects.filter(pk=-1).delete()[0] == 0  # nothing to delete: nothing refused


def test_the_lift_holds_for_its_block_only(delivery):
    with delivery_changes_allowed():
        Delivery.objects.filter(pk=delivery.pk).update(received_at=RECEIVED["received_at"])
    with refused(), transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(received_at=timezone.now())
    with delivery_changes_allowed():
        Delivery.objects.filter(pk=delivery.pk).delete()  # the ORM deletes its history rows first
    assert not Delivery.objects.exists() and not StatusChange.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [ALLOW_CHANGES])
        assert cursor.fetchone()[0] == "off"


def test_a_failing_lifted_block_rolls_back_with_its_setting(delivery):
    with pytest.raises(ZeroDivisionError), delivery_changes_allowed():
        Delivery.objects.filter(pk=delivery.pk).update(body="{}")
        1 / 0  # noqa: B018
    assert Delivery.objects.get(pk=delivery.pk).body == delivery.body
    with refused(), transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).delete()


def test_the_documented_sql_lifts_it_for_a_transaction(delivery):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL flakyboard.allow_delivery_changes = on")
        cursor.execute("DELETE FROM events_statuschange WHERE delivery_id = %s", [delivery.pk])
        cursor.execute("DELETE FROM events_delivery WHERE id = %s", [delivery.pk])
    assert not Delivery.objects.exists()


def test_truncate_is_not_a_row_change(delivery):
    """The test suite's flush between transactional tests TRUNCATEs every table."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the rows written in this transaction
        cursor.execute("TRUNCATE events_delivery CASCADE")
    assert not Delivery.objects.exists()
