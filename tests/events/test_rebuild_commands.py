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
