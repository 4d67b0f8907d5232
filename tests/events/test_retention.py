"""Retention: prune_deliveries drops the bodies and headers of old processed deliveries,
keeps their rows and every projected row, and makes them not replayable: a rebuild refuses
unless told to replay only the rest, reprocessing skips them. On PostgreSQL it passes the
append-only guard, which still refuses everything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from events.delivery_log import delivery_changes_allowed
from events.demo import payloads
from events.models import Delivery, StatusChange, TestCase
from events.projection.replay import PRUNED, replay
from events.retention import NotReplayable, prune_deliveries
from tests.events.factories import MONITOR, at, deliver, fake_test
from tests.events.state import projected_state

pytestmark = pytest.mark.django_db


def derived() -> dict:
    """Everything projected (the delivery log itself aside)."""
    return {k: v for k, v in projected_state().items() if k != "deliveries"}


NOW = datetime.now(UTC)


def history(days_ago: int, n: int) -> Delivery:
    deliver(
        json.dumps(
            payloads.status_changed(
                fake_test(n),
                at=at(2 + n),
                previous="HEALTHY",
                new="FLAKY",
                monitor_id=MONITOR,
                monitor_type="x",
            )
        ),
        msg_id=f"msg_ret_{n}",
    )
    delivery = Delivery.objects.get(svix_id=f"msg_ret_{n}")
    with delivery_changes_allowed():  # as if received then
        Delivery.objects.filter(pk=delivery.pk).update(received_at=NOW - timedelta(days=days_ago))
    return delivery


def test_a_dry_run_changes_nothing_and_says_what_would_go(capsys):
    history(200, 1)
    history(10, 2)
    before = list(Delivery.objects.values_list("body", "headers"))
    call_command("prune_deliveries", "--older-than", "180d")
    assert "Dry run: would prune 1 deliveries" in capsys.readouterr().out
    assert list(Delivery.objects.values_list("body", "headers")) == before


def test_pruning_keeps_the_rows_and_what_they_projected_and_blocks_a_full_rebuild(capsys):
    old, recent = history(200, 1), history(10, 2)
    state = derived()
    call_command("prune_deliveries", "--older-than", "180d", "--apply")
    assert "Pruned 1 deliveries" in capsys.readouterr().out
    old.refresh_from_db()
    assert (old.body, old.raw_body, old.headers) == ("", None, {})
    assert old.pruned_at is not None
    assert (old.svix_id, old.event_type, old.outcome) == (
        "msg_ret_1",
        "v2.test_case.status_changed",
        "processed",
    )
    assert derived() == state  # the dashboards, API and history do not change
    recent.refresh_from_db()
    assert recent.body and recent.pruned_at is None
    with pytest.raises(CommandError, match="--replayable-only"):
        call_command("rebuild_projections")
    assert derived() == state
    # Reprocessing skips it.
    assert replay(Delivery.objects.filter(pk=old.pk))[PRUNED] == 1
    # Told to, a rebuild replays the rest: what the pruned one projected is gone.
    call_command("rebuild_projections", "--replayable-only")
    assert list(StatusChange.objects.values_list("delivery__svix_id", flat=True)) == ["msg_ret_2"]
    assert TestCase.objects.filter(pk=fake_test(1).id).count() == 0


def test_pending_and_failed_deliveries_are_never_pruned():
    history(200, 1)
    with delivery_changes_allowed():
        Delivery.objects.update(outcome=Delivery.Outcome.FAILED)
    assert prune_deliveries(older_than=timedelta(days=180), now=NOW, apply=True).deliveries == 0


def test_a_bad_duration_is_refused():
    with pytest.raises(CommandError, match="not a duration"):
        call_command("prune_deliveries", "--older-than", "six months")


def test_the_rebuild_function_refuses_too():
    from events.projection.rebuild import rebuild_projections

    history(200, 1)
    prune_deliveries(older_than=timedelta(days=180), now=NOW, apply=True)
    with pytest.raises(NotReplayable):
        rebuild_projections()


@pytest.mark.postgres
def test_on_postgresql_the_guard_still_refuses_other_changes():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    history(200, 1)
    with pytest.raises(DatabaseError), transaction.atomic():
        Delivery.objects.update(body="")
    assert prune_deliveries(older_than=timedelta(days=180), now=NOW, apply=True).deliveries == 1
