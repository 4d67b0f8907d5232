import json
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from events.models import Delivery, TestCase
from tests.events.factories import deliver
from tests.projection_faults import failing

FIXTURE = (
    Path(__file__).resolve().parent.parent
    / "fixtures"
    / "v2.test_case.status_changed__reference_example.json"
)
pytestmark = pytest.mark.django_db


def test_reprocess_ignored_after_an_upgrade_adds_the_type():
    body = json.loads(FIXTURE.read_text())
    from events.trunk import registry

    # Before the "upgrade": the type is unknown, the delivery is kept and ignored.
    known = {k: v for k, v in registry.EVENT_TYPES.items() if k != "v2.test_case.status_changed"}
    with mock.patch.object(registry, "EVENT_TYPES", known):
        deliver(body)
    assert Delivery.objects.get().outcome == "ignored" and not TestCase.objects.exists()
    call_command("reprocess_deliveries", "--status", "ignored")
    assert Delivery.objects.get().outcome == "processed"
    assert TestCase.objects.get().status == "FLAKY"


def test_reprocessing_applies_again_what_a_concurrent_change_rolled_back(monkeypatch):
    """A concurrent change under the projection (TestCreatedConcurrently) rolls back its
    savepoint and is applied again: the delivery is processed, not marked failed. Three
    in a row fail it, with the error, for a later reprocess."""
    from events.projection import replay
    from events.projection.apply import TestCreatedConcurrently

    body = json.loads(FIXTURE.read_text())
    with failing(RuntimeError("x")):
        deliver(body)
    real, calls = replay.apply_now, []

    def changed_concurrently(times):
        def apply_now(*args, **kwargs):
            calls.append(1)
            if len(calls) <= times:
                raise TestCreatedConcurrently([])
            return real(*args, **kwargs)

        return apply_now

    monkeypatch.setattr(replay, "apply_now", changed_concurrently(replay.ATTEMPTS))
    with pytest.raises(CommandError, match="still fail"):
        call_command("reprocess_deliveries", "--status", "failed")
    assert len(calls) == replay.ATTEMPTS
    assert "TestCreatedConcurrently" in Delivery.objects.get().error
    calls.clear()
    monkeypatch.setattr(replay, "apply_now", changed_concurrently(replay.ATTEMPTS - 1))
    call_command("reprocess_deliveries", "--status", "failed")
    assert len(calls) == replay.ATTEMPTS
    assert Delivery.objects.get().outcome == "processed"
    assert TestCase.objects.get().status_changes.count() == 1


def test_reprocess_failed_is_idempotent_and_reports_remaining_failures():
    body = json.loads(FIXTURE.read_text())
    with failing(RuntimeError("x")):
        deliver(body)
        with pytest.raises(CommandError, match="still fail"):
            call_command("reprocess_deliveries", "--status", "failed")
    call_command("reprocess_deliveries", "--status", "failed")
    call_command("reprocess_deliveries", "--status", "failed")  # nothing left: no error
    assert Delivery.objects.get().outcome == "processed"
    assert TestCase.objects.get().status_changes.count() == 1
