"""The calibration tally (CalibrationBin, events/rollups/calibration.py): kept by the
triage service (set_verdict, set_verdicts, replay) and by the projection (a judged
investigation replaced by a smaller svix id, reprocessed), it always equals what a
count from scratch gives, and the investigations page over all history (the tally)
answers as the verdicts themselves (one repository: the same verdicts, read directly)."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from dashboard.selectors.calibration import calibration
from events import triage
from events.demo import payloads
from events.metrics import Period
from events.models import CalibrationBin, Delivery, Investigation
from events.projection.rebuild import rebuild_projections
from events.projection.replay import reprocess_delivery
from events.rollups.calibration import rebuild_calibration
from tests.events.factories import at, deliver, fake_test
from tests.events.state import projected_state

pytestmark = pytest.mark.django_db

NOW = at(28)


def investigation_id(i: int) -> uuid.UUID:
    return uuid.UUID(int=0xCA1000 + i)


def investigate(i: int, *, confidence: float, facts=(), msg_id: str | None = None, test: int | None = None):
    return deliver(
        payloads.investigation_completed(
            fake_test(test if test is not None else i % 4 + 1),
            at=at(1) + timedelta(hours=i),
            investigation_id=investigation_id(i),
            confidence=confidence,
            markdown_summary="s",
            failure_message="f",
            facts=[{"fact_type": t, "content": "c", "confidence": c} for t, c in facts],
        ),
        msg_id=msg_id or f"msg_cal_{i:03d}",
    )


@pytest.fixture
def judge(db):
    return get_user_model().objects.create_user("judge")


def bins() -> dict:
    return projected_state()["calibration_bins"]


def from_scratch() -> list:
    CalibrationBin.objects.all().delete()
    rebuild_calibration()
    return bins()


def assert_tally_is_a_count_from_scratch():
    kept = bins()
    assert kept == from_scratch()
    return kept


def same_bins(mine: list[dict], theirs: list[dict]) -> bool:
    return len(mine) == len(theirs) and all(a == pytest.approx(b) for a, b in zip(mine, theirs, strict=True))


def assert_the_page_reads_the_tally_as_the_verdicts():
    repository = Investigation.objects.values_list("test_case__repository_id", flat=True).first()
    tallied = calibration(period=Period("all", NOW))
    counted = calibration(period=Period("all", NOW), repository=repository)
    for figures in (tallied, counted):
        figures.pop("auto_outcome")
    assert tallied.keys() == counted.keys()
    assert tallied["verdicts"] == counted["verdicts"]
    assert tallied["brier_score"] == pytest.approx(counted["brier_score"])
    assert tallied["ece"] == pytest.approx(counted["ece"])
    assert same_bins(tallied["bins"], counted["bins"])
    assert [t["fact_type"] for t in tallied["fact_types"]] == [t["fact_type"] for t in counted["fact_types"]]
    for mine, theirs in zip(tallied["fact_types"], counted["fact_types"], strict=True):
        assert same_bins(mine["bins"], theirs["bins"]) and mine["ece"] == pytest.approx(theirs["ece"])


def test_verdicts_set_changed_and_removed_through_the_service(judge):
    for i in range(12):
        investigate(i, confidence=i / 11, facts=[("flaky_network", (i * 7 % 11) / 10), ("timing", None)])
    assert bins() == []
    judged = list(Investigation.objects.order_by("pk"))
    triage.set_verdict(judged[0], by=judge, verdict="confirmed")
    triage.set_verdicts([i.pk for i in judged[1:8]], by=judge, verdict="rejected")
    triage.set_verdicts([i.pk for i in judged[3:6]], by=judge, verdict="confirmed")  # changed
    triage.set_verdict(judged[6], by=judge, verdict="")  # removed
    kept = assert_tally_is_a_count_from_scratch()
    assert sum(n for of_facts, _t, _b, n, *_ in kept if not of_facts) == 7
    # One flaky_network fact per judged investigation; the facts without a confidence: none.
    assert {t for of_facts, t, *_ in kept if of_facts} == {"flaky_network"}
    assert_the_page_reads_the_tally_as_the_verdicts()


def test_replayed_verdicts_count_as_one_call_each(judge):
    for i in range(8):
        investigate(i, confidence=(i + 0.5) / 8, facts=[("oom", 0.9 - i / 10)])
    judged = list(Investigation.objects.order_by("pk").values_list("pk", flat=True))
    actions = [
        triage.Action(
            at=NOW - timedelta(days=3, hours=n), by=judge, via="demo", investigation_id=pk, verdict=v
        )
        for n, (pk, v) in enumerate(
            [
                (judged[0], "confirmed"),
                (judged[1], "rejected"),
                (judged[0], "rejected"),
                (judged[2], "confirmed"),
            ]
        )
    ]
    triage.replay(actions)
    assert_tally_is_a_count_from_scratch()
    assert_the_page_reads_the_tally_as_the_verdicts()


def test_a_judged_investigation_replaced_or_reprocessed(judge):
    """A smaller svix id takes an investigation over (another confidence and other
    facts): its verdict counts with the new ones. Reprocessing its delivery removes and
    writes it again: counted once."""
    for i in range(6):
        investigate(i, confidence=0.15 + i / 10, facts=[("flaky_network", 0.3)])
    triage.set_verdicts(
        list(Investigation.objects.values_list("pk", flat=True)), by=judge, verdict="confirmed"
    )
    investigate(2, confidence=0.95, facts=[("timing", 0.85), ("timing", 0.05)], msg_id="msg_cal_000a")
    assert Investigation.objects.get(pk=investigation_id(2)).confidence == 0.95
    assert_tally_is_a_count_from_scratch()
    reprocess_delivery(Delivery.objects.get(svix_id="msg_cal_000a"))
    reprocess_delivery(Delivery.objects.get(svix_id="msg_cal_004"))
    kept = assert_tally_is_a_count_from_scratch()
    assert sum(n for of_facts, _t, _b, n, *_ in kept if not of_facts) == 6
    assert_the_page_reads_the_tally_as_the_verdicts()


def test_the_verdicts_survive_a_rebuild_and_count_the_same(judge):
    for i in range(6):
        investigate(i, confidence=i / 6, facts=[("oom", 0.5)])
    triage.set_verdicts(
        list(Investigation.objects.values_list("pk", flat=True)[:4]), by=judge, verdict="rejected"
    )
    before = bins()
    rebuild_projections()
    assert bins() == before != []


def test_a_judged_investigation_after_now_sends_the_page_to_the_verdicts(judge, django_assert_num_queries):
    investigate(0, confidence=0.5)
    triage.set_verdict(Investigation.objects.get(), by=judge, verdict="confirmed")
    early = Period("all", at(1) - timedelta(hours=1))  # before the investigation
    assert calibration(period=early)["verdicts"] == 0
    assert calibration(period=Period("all", NOW))["verdicts"] == 1


# ---------------------------------------------------------------- the outcome tally


def change(test: int, when, previous: str, new: str):
    from tests.events.factories import MONITOR

    return deliver(
        payloads.status_changed(
            fake_test(test), at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="x"
        )
    )


def outcome_tally() -> list:
    return projected_state()["outcome_tally"]


def test_the_outcome_tally_follows_late_episodes_replacements_and_reprocessing():
    """OutcomeTally (the automatic outcome per band over all history) equals a count from
    the investigations' stored outcomes after each kind of change, and the page's
    figures over all history (the tally and the last 14 days) equal those counted from
    the index (one repository: every investigation) at nows around the window."""
    from dashboard.selectors.calibration import auto_outcome
    from events.models import OutcomeTally
    from events.rollups.outcomes import counted

    def assert_consistent():
        kept = outcome_tally()
        stored = counted(Investigation.objects.values_list("confidence", "auto_outcome"))
        assert kept == sorted((band, outcome, n) for (band, outcome), n in stored.items() if n)
        repository = Investigation.objects.values_list("test_case__repository_id", flat=True).first()
        for days in (0, 5, 13, 14, 15, 30, 400):
            now = at(20) + timedelta(days=days)
            assert auto_outcome(period=Period("all", now)) == auto_outcome(
                period=Period("all", now), repository=repository
            ), days

    change(1, at(1), "HEALTHY", "FLAKY")
    for i in range(8):
        investigate(i, confidence=(i + 1) / 9, test=1 + i % 2)  # days 1-2 on tests 1 and 2
    assert_consistent()
    change(1, at(10), "FLAKY", "HEALTHY")  # within 14 days: test 1's investigations fixed
    change(2, at(1, 3), "HEALTHY", "BROKEN")  # late: test 2's later ones had an episode
    assert_consistent()
    investigate(3, confidence=0.05, test=1, msg_id="msg_cal_000b")  # replaced: another band
    assert Investigation.objects.get(pk=investigation_id(3)).confidence == 0.05
    assert_consistent()
    reprocess_delivery(Delivery.objects.get(svix_id="msg_cal_000b"))
    reprocess_delivery(Delivery.objects.get(svix_id="msg_cal_006"))
    assert_consistent()
    before = outcome_tally()
    assert sum(n for *_, n in before) == 8
    rebuild_projections()
    assert outcome_tally() == before
    assert OutcomeTally.objects.exists()
