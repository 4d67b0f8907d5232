"""Ties and spellings decided in Python must be decided the same way in SQL, whatever the
database's collation.

The projection breaks ties on event time by the svix id and picks an owner's spelling
by the smaller name, in Python (code point order). The rollups order a test's status
changes and a pair's monitor events, and the guarded owner re-spelling compares names,
in SQL. A PostgreSQL database created with a language's collation (the postgres image's
default is en_US.utf8) orders text otherwise: "msg_a" before "msg_B", "@acme" before
"@Acme". Here the columns are given such a collation (ICU's en-US), as such a database
gives them."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.management import call_command
from django.db import connection

from events.demo import payloads
from events.models import MonitorInterval, MonitorState, Owner, StatusInterval, TestCase
from tests.events.factories import MONITOR, at, deliver, fake_test
from tests.events.state import projected_state

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LANGUAGE_COLLATION = "en-US-x-icu"


@pytest.fixture(autouse=True)
def language_collation():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_collation WHERE collname = %s", [LANGUAGE_COLLATION])
        if cursor.fetchone() is None:
            pytest.skip(f"PostgreSQL without the ICU collation {LANGUAGE_COLLATION}")
        # Rolled back with the test's transaction.
        for table, column, size in (("events_delivery", "svix_id", 255), ("events_owner", "name", 255)):
            cursor.execute(
                f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar({size}) COLLATE "{LANGUAGE_COLLATION}"'
            )
        cursor.execute("SELECT 'msg_a' < 'msg_B' COLLATE \"" + LANGUAGE_COLLATION + '"')
        assert cursor.fetchone()[0]  # and "msg_B" < "msg_a" in Python


def status_change(test, new: str) -> str:
    return json.dumps(
        payloads.status_changed(
            test, at=at(3), previous="HEALTHY", new=new, monitor_id=MONITOR, monitor_type="x"
        )
    )


def test_a_tie_on_event_time_gives_the_same_status_to_the_test_and_its_intervals():
    test = fake_test(1)
    deliver(status_change(test, "FLAKY"), msg_id="msg_a")
    deliver(status_change(test, "BROKEN"), msg_id="msg_B")
    status = TestCase.objects.get().status
    assert status == "FLAKY"  # the larger svix id in code point order: "msg_a"
    open_intervals = StatusInterval.objects.filter(ended_at__isnull=True)
    assert list(open_intervals.values_list("status", flat=True)) == [status]
    state = projected_state()
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == state


def test_a_tie_on_event_time_gives_the_same_monitor_status_to_the_pair_and_its_intervals():
    test = fake_test(2)
    monitor = uuid.UUID(int=0x3C)
    for msg_id, status in (("msg_a", "active"), ("msg_B", "resolved")):
        deliver(
            json.dumps(
                payloads.monitor_status_changed(
                    test, at=at(3), monitor_id=monitor, monitor_type="x", status=status
                )
            ),
            msg_id=msg_id,
        )
    assert MonitorState.objects.get().status == "active"  # "msg_a" is the newer
    assert list(MonitorInterval.objects.values_list("resolved_at", flat=True)) == [None]


@pytest.mark.parametrize("order", [("@acme/web", "@Acme/Web"), ("@Acme/Web", "@acme/web")])
def test_an_owner_named_two_ways_at_one_time_is_spelled_the_same_whatever_the_order(order):
    for n, name in enumerate(order):
        deliver(
            json.dumps(
                payloads.monitor_status_changed(
                    fake_test(10 + n, codeowners=[name]), at=at(3), monitor_id=MONITOR, monitor_type="x",
                    status="active",
                )
            )
        )  # fmt: skip
    assert Owner.objects.get().name == "@Acme/Web"  # the smaller in code point order
