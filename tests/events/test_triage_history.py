"""The triage history (TriageEvent) and verdicts: written by the triage service only, one
row per triage action that changed something, kept through a rebuild."""

import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command

from events.demo import payloads
from events.models import Investigation, InvestigationVerdict, TestCase, TriageEvent
from events.triage import VIA_API, Action, replay, set_verdict, set_verdicts, triage_test, triage_tests
from tests.events.factories import at, deliver, fake_test

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", is_staff=True)


def investigated(n: int = 1, *, confidence: float = 0.7) -> Investigation:
    test = fake_test(n)
    deliver(payloads.status_changed_v1(test, at=at(1), previous="HEALTHY", new="FLAKY"))
    deliver(
        payloads.investigation_completed(
            test,
            at=at(2),
            investigation_id=uuid.UUID(int=5000 + n),
            confidence=confidence,
            markdown_summary="race",
            failure_message="boom",
            facts=[],
        )
    )
    return Investigation.objects.get(pk=uuid.UUID(int=5000 + n))


def test_each_changing_triage_action_is_one_history_row(alice):
    investigation = investigated()
    test = TestCase.objects.get(pk=investigation.test_case_id)
    when = datetime(2026, 3, 5, 9, tzinfo=UTC)
    assert triage_test(test, by=alice, state="investigating", assignee=alice, via=VIA_API, at=when)
    assert triage_test(test, by=alice, state="investigating") == []  # unchanged: no row
    triage_test(test, by=alice, note="looked at the logs")
    rows = list(TriageEvent.objects.order_by("at", "id"))
    assert len(rows) == 2
    first = rows[0]
    assert (first.at, first.by, first.via) == (when, alice, VIA_API)
    assert (first.state_from, first.state_to) == ("new", "investigating")
    assert (first.assignee_changed, first.assignee_from, first.assignee_to) == (True, "", "alice")
    assert not first.note_edited
    assert rows[1].note_edited and rows[1].state_from == rows[1].state_to == ""
    assert LogEntry.objects.count() == 2


def test_bulk_triage_writes_a_row_per_changed_test(alice):
    for n in (1, 2, 3):
        investigated(n)
    TestCase.objects.filter(pk=fake_test(3).id).update(triage_state="fixed")
    result = triage_tests(TestCase.objects.all(), by=alice, state="fixed", via="action: fixed")
    assert (result.changed, result.unchanged) == (2, 1)
    assert set(TriageEvent.objects.values_list("test_case_id", flat=True)) == {
        fake_test(1).id,
        fake_test(2).id,
    }


def test_a_verdict_is_set_changed_and_cleared_with_its_history(alice):
    investigation = investigated()
    assert set_verdict(investigation, by=alice, verdict="confirmed", via=VIA_API)
    assert not set_verdict(investigation, by=alice, verdict="confirmed")  # unchanged
    kept = InvestigationVerdict.objects.get(pk=investigation.pk)
    assert (kept.verdict, kept.by) == ("confirmed", alice)
    assert set_verdict(investigation, by=alice, verdict="rejected")
    assert set_verdict(investigation, by=alice, verdict="")
    assert not InvestigationVerdict.objects.exists()
    history = list(
        TriageEvent.objects.order_by("id").values_list("verdict_from", "verdict_to", "investigation_id")
    )
    assert history == [
        ("", "confirmed", investigation.pk),
        ("confirmed", "rejected", investigation.pk),
        ("rejected", "", investigation.pk),
    ]
    assert TriageEvent.objects.filter(test_case_id=investigation.test_case_id).count() == 3
    assert "Verdict on investigation" in TriageEvent.objects.first().message


def test_an_unknown_verdict_is_refused(alice):
    with pytest.raises(ValueError):
        set_verdicts([investigated().pk], by=alice, verdict="maybe")


def test_verdicts_and_history_survive_a_rebuild(alice):
    investigation = investigated()
    set_verdict(investigation, by=alice, verdict="confirmed")
    triage_test(TestCase.objects.get(pk=investigation.test_case_id), by=alice, state="investigating")
    call_command("rebuild_projections", verbosity=0)
    assert Investigation.objects.get(pk=investigation.pk).verdict.verdict == "confirmed"
    assert TriageEvent.objects.filter(test_case_id=investigation.test_case_id).count() == 2
    assert TestCase.objects.get(pk=investigation.test_case_id).triage_events.count() == 2


def _history_rows():
    rows = TriageEvent.objects.order_by("at", "test_case_id", "investigation_id").values_list(
        "test_case_id",
        "at",
        "by",
        "via",
        "state_from",
        "state_to",
        "assignee_changed",
        "assignee_from",
        "assignee_to",
        "note_edited",
        "investigation_id",
        "verdict_from",
        "verdict_to",
        "message",
    )
    return (
        list(rows),
        sorted(LogEntry.objects.values_list("object_id", "action_time", "change_message")),
        sorted(TestCase.objects.values_list("pk", "triage_state", "assignee_id", "triage_note")),
        sorted(InvestigationVerdict.objects.values_list("pk", "verdict", "by", "at")),
    )


def test_a_replayed_history_equals_the_same_actions_one_by_one(alice, django_user_model):
    """events.triage.replay (the demo's bulk path) writes what one call per action writes."""
    bob = django_user_model.objects.create_user("bob")
    investigations = [investigated(n, confidence=n / 10) for n in (1, 2, 3)]
    tests = [i.test_case_id for i in investigations]
    hour = [datetime(2026, 3, 5, h, tzinfo=UTC) for h in range(12)]
    actions = [
        Action(
            at=hour[1],
            by=alice,
            via="demo",
            test_case_id=tests[0],
            values={"state": "investigating", "assignee": bob},
        ),
        Action(
            at=hour[2], by=bob, via="demo", test_case_id=tests[0], values={"state": "investigating"}
        ),  # no-op
        Action(
            at=hour[3], by=bob, via="demo", test_case_id=tests[0], values={"state": "fixed", "note": "done"}
        ),
        Action(at=hour[4], by=alice, via="demo", test_case_id=tests[1], values={"assignee": alice}),
        Action(at=hour[5], by=alice, via="demo", test_case_id=tests[1], values={"assignee": None}),
        Action(at=hour[2], by=alice, via="demo", investigation_id=investigations[0].pk, verdict="confirmed"),
        Action(at=hour[6], by=bob, via="demo", investigation_id=investigations[0].pk, verdict="rejected"),
        Action(at=hour[7], by=bob, via="demo", investigation_id=investigations[1].pk, verdict="rejected"),
        Action(at=hour[8], by=bob, via="demo", investigation_id=investigations[1].pk, verdict=""),
        Action(at=hour[9], by=alice, via="demo", investigation_id=investigations[2].pk, verdict="confirmed"),
    ]
    for action in sorted(actions, key=lambda a: a.at):
        if action.test_case_id:
            triage_test(
                TestCase.objects.get(pk=action.test_case_id),
                by=action.by,
                via=action.via,
                at=action.at,
                **action.values,
            )
        else:
            set_verdict(
                Investigation(pk=action.investigation_id),
                by=action.by,
                verdict=action.verdict,
                via=action.via,
                at=action.at,
            )
    one_by_one = _history_rows()
    TriageEvent.objects.all().delete()
    LogEntry.objects.all().delete()
    InvestigationVerdict.objects.all().delete()
    TestCase.objects.update(triage_state="new", assignee=None, triage_note="")

    assert replay(actions) == {"triage actions": 4, "verdicts": 5}
    assert _history_rows() == one_by_one
    assert len(one_by_one[0]) == 9


def _first_triage_by_definition():
    """(owner episode id, the first triage action at or after its start), from the history."""
    from events.models import OwnerEpisode

    result = {}
    for pk, test_id, started_at in OwnerEpisode.objects.values_list("pk", "test_case_id", "started_at"):
        times = TriageEvent.objects.filter(test_case_id=test_id, at__gte=started_at).values_list(
            "at", flat=True
        )
        result[pk] = min(times, default=None)
    return result


def _first_triage_kept():
    from events.models import OwnerEpisode

    return dict(OwnerEpisode.objects.values_list("pk", "first_triage_at"))


def test_each_owner_episode_keeps_its_first_triage_through_every_writer(alice):
    """OwnerEpisode.first_triage_at (the owners' targets read it) follows triage actions,
    verdicts, later status changes that rewrite the episodes, and a rebuild."""
    investigation = investigated()
    test = TestCase.objects.get(pk=investigation.test_case_id)
    assert set(_first_triage_kept().values()) == {None}
    # A verdict is a triage action, then a later state change does not move the first.
    set_verdict(investigation, by=alice, verdict="confirmed", at=at(3))
    triage_test(test, by=alice, state="investigating", at=at(4))
    assert set(_first_triage_kept().values()) == {at(3)}
    # A fix and a new episode: the new episode's rows are written by the rollups, which
    # find no action after its start yet; then one comes.
    deliver(payloads.status_changed_v1(fake_test(1), at=at(5), previous="FLAKY", new="HEALTHY"))
    deliver(payloads.status_changed_v1(fake_test(1), at=at(9), previous="HEALTHY", new="BROKEN"))
    assert _first_triage_kept() == _first_triage_by_definition()
    assert sorted(_first_triage_kept().values(), key=str) == [at(3), None]
    triage_test(test, by=alice, state="fixed", at=at(10))
    assert _first_triage_kept() == _first_triage_by_definition()
    assert None not in _first_triage_kept().values()
    kept = sorted(_first_triage_kept().values())
    call_command("rebuild_projections", verbosity=0)
    assert sorted(_first_triage_kept().values()) == kept


def test_the_demo_replay_keeps_the_first_triage_of_every_owner_episode(alice, django_user_model):
    from events.demo.triage import replay_triage

    for n in (1, 2, 3):
        investigated(n)
    deliver(payloads.status_changed_v1(fake_test(2), at=at(6), previous="FLAKY", new="HEALTHY"))
    replay_triage(now=at(28), seed=3)
    assert TriageEvent.objects.exists()
    assert _first_triage_kept() == _first_triage_by_definition()
