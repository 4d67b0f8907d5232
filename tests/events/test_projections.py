"""Each event type's projection, including odd but legal payloads."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from events.delivery_log import delivery_changes_allowed
from events.demo import payloads
from events.models import (
    Delivery,
    Investigation,
    Monitor,
    MonitorEvent,
    MonitorState,
    Owner,
    QuarantineChange,
    Repository,
    StatusChange,
    TestCase,
)
from tests.events.factories import MONITOR, REPO, at, deliver, fake_test

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
pytestmark = pytest.mark.django_db


def load(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_reference_status_change_projects_every_field():
    deliver(load("v2.test_case.status_changed__reference_example"))
    test = TestCase.objects.select_related("repository").get()
    assert test.id == uuid.UUID("3c9a7b52-8e1f-5d4a-9b6c-0e2f4a6c8d1b")
    assert test.name == "test_refund_is_idempotent"
    assert test.classname == "tests.payments.test_refunds.RefundTests"
    assert test.parent == "tests/payments"
    assert test.file_path == "tests/payments/test_refunds.py"
    assert test.html_url.startswith("https://app.trunk.io/")
    assert test.codeowners == ["@acme/payments"]
    assert [o.name for o in test.owners.all()] == ["@acme/payments"]
    assert test.quarantined is False
    assert test.variant == ""
    assert test.failure_rate_last_7d == 0.12
    assert test.pull_requests_impacted_last_7d == 7
    assert test.status == "FLAKY"
    assert test.status_since == datetime(2026, 5, 4, 9, 12, 33, 120000, tzinfo=UTC)
    assert test.repository.trunk_id == uuid.UUID("6f1c2a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f")
    assert test.repository.name == "acme/checkout"
    change = StatusChange.objects.get()
    assert (change.previous_status, change.new_status) == ("HEALTHY", "FLAKY")
    assert change.monitor_type == "pass_on_retry" and change.monitor_status == "active"
    assert change.monitor_id == uuid.UUID("0b6f1d7e-5a43-4c1e-9a57-2f7d2c1e8a10")


def test_no_repository_empty_strings_empty_owners_unicode_and_extra_fields():
    result = deliver(load("v2.test_case.status_changed__no_repository_unicode_extra_fields"))
    assert result.delivery.outcome == Delivery.Outcome.PROCESSED, result.delivery.error
    test = TestCase.objects.get()
    assert test.name == "тест_оплаты 支付 ✓ <script>alert(1)</script>"
    assert test.repository is None
    assert test.classname == test.file_path == test.html_url == ""
    assert test.codeowners == [] and not test.owners.exists()
    assert test.quarantined is True
    assert test.variant == "linux-arm64"
    # Lowercase statuses are normalised.
    assert StatusChange.objects.get().new_status == "BROKEN"
    assert test.status == "BROKEN"


def test_monitor_event_keeps_evidence_as_sent_and_tracks_state():
    payload = load("test_case.monitor_status_changed__active")
    deliver(payload)
    event = MonitorEvent.objects.select_related("monitor").get()
    assert event.evidence == payload["evidence"]
    assert event.monitor.type == "pass_on_retry"
    assert event.status == "active"
    state = MonitorState.objects.get()
    assert state.status == "active" and state.since == event.occurred_at
    # Two owners in different case are two owners; the same owner in other case is one.
    assert sorted(TestCase.objects.get().owners.values_list("name", flat=True)) == [
        "@Acme/Web",
        "@acme/payments",
    ]

    resolved = json.loads(json.dumps(payload))
    resolved["monitor"]["status"] = "resolved"
    resolved["timestamp"] = "2026-05-05T00:00:00Z"
    resolved["evidence"] = None
    deliver(resolved)
    assert MonitorState.objects.get().status == "resolved"
    assert MonitorEvent.objects.count() == 2 and Monitor.objects.count() == 1


def test_investigation_with_facts():
    deliver(load("test_case.investigation_completed__high_confidence"))
    inv = Investigation.objects.get()
    assert inv.confidence == 0.86
    assert "**refund worker**" in inv.markdown_summary
    assert inv.failure_message.startswith("AssertionError")
    assert [(f.fact_type, f.confidence) for f in inv.facts.all()] == [("GIT_BLAME", 0.9), ("CI_LOGS", 0.7)]
    assert inv.occurred_at == datetime(2026, 5, 4, 10, tzinfo=UTC)


def test_same_investigation_in_two_deliveries_is_stored_once():
    payload = load("test_case.investigation_completed__high_confidence")
    deliver(payload, msg_id="msg_a")
    result = deliver(payload, msg_id="msg_b")
    assert result.delivery.outcome == Delivery.Outcome.PROCESSED
    assert Investigation.objects.count() == 1
    assert Investigation.objects.get().facts.count() == 2


def test_investigation_bad_fact_confidence_names_the_fact():
    payload = load("test_case.investigation_completed__high_confidence")
    payload["facts"][1]["confidence"] = 1.5
    result = deliver(payload)
    assert result.delivery.outcome == Delivery.Outcome.INVALID
    assert result.delivery.error.startswith("facts[1].confidence:")


def test_quarantine_setting_change_v1_test_shape():
    deliver(load("v2.test_case.status_changed__reference_example"))
    deliver(load("test_case.quarantining_setting_changed__always"))
    change = QuarantineChange.objects.get()
    assert (change.previous_setting, change.updated_setting) == ("UNSPECIFIED", "ALWAYS_QUARANTINE")
    assert change.actor_email == "dev@acme.example" and change.actor_name == "Dana Dev"
    assert change.reason == "Blocks the merge queue"
    test = TestCase.objects.get()
    assert test.quarantined is True
    # The v1 shape has no classname: the v2 one is kept. The repository is found by URL.
    assert test.classname == "tests.payments.test_refunds.RefundTests"
    assert Repository.objects.count() == 1


def test_legacy_v1_status_change_without_type_is_recognised():
    result = deliver(load("test_case.status_changed__v1_without_type"))
    delivery = result.delivery
    assert delivery.event_type == "test_case.status_changed"
    assert delivery.outcome == Delivery.Outcome.PROCESSED, delivery.error
    change = StatusChange.objects.get()
    assert (change.previous_status, change.new_status) == ("HEALTHY", "FLAKY")
    assert change.reason == "Failed on retry in 3 PRs"
    test = TestCase.objects.select_related("repository").get()
    assert test.status == "FLAKY" and test.parent == "tests/auth"
    assert test.repository.html_url == "https://github.com/acme/web" and test.repository.trunk_id is None


def test_late_older_event_goes_to_history_but_does_not_overwrite_state():
    test = fake_test(1)
    deliver(
        payloads.status_changed(
            test, at=at(10), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )
    older = fake_test(1, name="old_name", codeowners=["@old/team"])
    deliver(
        payloads.status_changed(
            older, at=at(2), previous="FLAKY", new="HEALTHY", monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )
    row = TestCase.objects.get()
    assert row.status == "FLAKY" and row.status_since == at(10)
    assert row.name == "test_case_1"
    assert list(row.owners.values_list("name", flat=True)) == ["@acme/payments"]
    assert row.first_event_at == at(2) and row.last_event_at == at(10)
    assert StatusChange.objects.count() == 2


def test_owner_spelling_is_the_first_seen_by_event_time():
    deliver(
        payloads.monitor_status_changed(
            fake_test(1, codeowners=["@acme/web"]),
            at=at(5),
            monitor_id=MONITOR,
            monitor_type="x",
            status="active",
        )
    )
    deliver(
        payloads.monitor_status_changed(
            fake_test(2, codeowners=["@Acme/Web"]),
            at=at(1),
            monitor_id=MONITOR,
            monitor_type="x",
            status="active",
        )
    )
    owner = Owner.objects.get()
    assert owner.name == "@Acme/Web" and owner.key == "@acme/web"
    assert owner.test_cases.count() == 2


def test_quarantined_comes_from_newest_event_that_carries_it():
    test = fake_test(1, quarantined=True)
    deliver(
        payloads.monitor_status_changed(test, at=at(5), monitor_id=MONITOR, monitor_type="x", status="active")
    )
    later = payloads.monitor_status_changed(
        fake_test(1), at=at(6), monitor_id=MONITOR, monitor_type="x", status="resolved"
    )
    del later["test_case"]["quarantined"]
    deliver(later)
    assert TestCase.objects.get().quarantined is True


def test_repository_first_seen_by_url_gets_its_id_later():
    deliver(load("test_case.status_changed__v1_without_type"))
    payload = load("v2.test_case.status_changed__reference_example")
    payload["repository"]["html_url"] = "https://github.com/acme/web"
    deliver(payload)
    assert Repository.objects.count() == 1
    assert Repository.objects.get().trunk_id == uuid.UUID(payload["repository"]["id"])


def test_ties_on_event_time_resolve_the_same_whatever_the_order():
    test = fake_test(1)
    flaky = payloads.status_changed(
        test, at=at(3), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="a"
    )
    broken = payloads.status_changed(
        test, at=at(3), previous="HEALTHY", new="BROKEN", monitor_id=MONITOR, monitor_type="b"
    )
    deliver(broken, msg_id="msg_2")
    deliver(flaky, msg_id="msg_1")
    first = TestCase.objects.get().status
    TestCase.objects.all().delete()
    with delivery_changes_allowed():
        Delivery.objects.all().delete()
    deliver(flaky, msg_id="msg_1")
    deliver(broken, msg_id="msg_2")
    assert TestCase.objects.get().status == first == "BROKEN"  # the larger svix id wins a tie


def _monitor_event(test, at_, status="active"):
    return payloads.monitor_status_changed(test, at=at_, monitor_id=MONITOR, monitor_type="x", status=status)


def test_renamed_repository_follows_the_latest_delivery_for_a_known_test():
    """A known test whose repository comes under a new URL (same Trunk id): one
    repository row, renamed, and the test stays linked to it."""
    deliver(_monitor_event(fake_test(1), at(2)))
    renamed = payloads.FakeRepository(REPO.id, "https://github.com/acme/checkout-v2")
    deliver(_monitor_event(fake_test(1, repository=renamed), at(3), "resolved"))
    repo = Repository.objects.get()
    assert (repo.trunk_id, repo.html_url, repo.name) == (REPO.id, renamed.html_url, "acme/checkout-v2")
    assert TestCase.objects.get().repository == repo
    # The URL follows the latest delivery, whatever its event time (the id is stable).
    deliver(_monitor_event(fake_test(1), at(4)))
    deliver(_monitor_event(fake_test(1, repository=renamed), at(1)))
    assert Repository.objects.get().html_url == renamed.html_url
    assert TestCase.objects.get().repository == repo


def test_known_test_moves_to_a_new_repository_and_to_none():
    deliver(_monitor_event(fake_test(1), at(1)))
    other = payloads.FakeRepository(uuid.UUID(int=99), "https://github.com/acme/other")
    deliver(_monitor_event(fake_test(1, repository=other), at(2)))
    assert TestCase.objects.select_related("repository").get().repository.html_url == other.html_url
    assert Repository.objects.count() == 2
    deliver(_monitor_event(fake_test(1, repository=None), at(3)))
    assert TestCase.objects.get().repository is None


def test_known_test_first_seen_by_url_gets_the_repository_id_later():
    v1 = load("test_case.status_changed__v1_without_type")
    deliver(v1)
    test = TestCase.objects.get()
    v2 = load("v2.test_case.status_changed__reference_example")
    v2["test_case"]["id"] = str(test.id)
    v2["repository"]["html_url"] = "https://github.com/acme/web"
    v2["timestamp"] = "2026-11-01T00:00:00Z"  # after the v1 event, before now
    deliver(v2)
    repo = Repository.objects.get()
    assert repo.trunk_id == uuid.UUID(v2["repository"]["id"])
    assert TestCase.objects.get().repository == repo
