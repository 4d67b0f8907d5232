"""Random hostile sequences of deliveries (late, duplicate, out of order,
investigations redelivered under smaller svix ids with other confidences, owners that
change), verdicts, triage actions and reprocessing; after each sequence every tally
(FixTally, CalibrationBin, OutcomeTally, TargetTally) equals a count from scratch, the
stored auto_outcome equals a recomputation, and the page figures over all history
(tally) equal those of the only repository (read from the rows)."""

import random
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from dashboard.selectors import calibration as calibration_selectors
from dashboard.selectors import fixes as fix_selectors
from dashboard.selectors import targets as target_selectors
from events import triage
from events.demo import payloads
from events.metrics import Period
from events.models import (
    CalibrationBin,
    Delivery,
    FixTally,
    Investigation,
    OutcomeTally,
    OwnerTarget,
    TargetTally,
    TestCase,
)
from events.projection.replay import reprocess_delivery
from events.rollups.calibration import rebuild_calibration
from events.rollups.fixes import rebuild_fix_tally
from events.rollups.outcomes import rebuild_auto_outcomes
from events.rollups.targets import rebuild_target_tally
from tests.events.factories import MONITOR, at, deliver, fake_test
from tests.events.state import projected_state

pytestmark = pytest.mark.django_db

NOW = at(28)
STATUSES = ["HEALTHY", "FLAKY", "BROKEN"]
OWNERS = [["@acme/web"], ["@acme/Web"], [], ["@acme/web", "@acme/api"], ["@acme/api"]]
CONFIDENCES = [0.0, 1.0, 0.99999999, 0.1, 0.3, 0.5, 0.7, 0.8, 0.2, 0.6, 0.9, 0.49999999999999994]
FACT_TYPES = ["flaky", "Flaky", "x" * 100, "infra ", "é", "e\u0301"]


def when(rng: random.Random):
    # Day boundaries exactly, or any minute, days 1..27 (and the odd one a bit before now).
    day = rng.randint(1, 27)
    if rng.random() < 0.4:
        return at(day)
    return at(day) + timedelta(minutes=rng.randint(0, 24 * 60 - 1))


def tallies() -> dict:
    state = projected_state()
    return {k: state[k] for k in ("fix_tally", "calibration_bins", "outcome_tally", "target_tally")}


def outcomes() -> list:
    return sorted(Investigation.objects.values_list("pk", "auto_outcome"))


def from_scratch() -> dict:
    for model in (FixTally, CalibrationBin, OutcomeTally, TargetTally):
        model.objects.all().delete()
    rebuild_fix_tally()
    rebuild_calibration()
    rebuild_auto_outcomes()
    rebuild_target_tally()
    return tallies()


def play(seed: int, steps: int = 40) -> None:
    rng = random.Random(seed)
    user = get_user_model().objects.create_user(f"judge{seed}", is_staff=True)
    sent = []
    for step in range(steps):
        kind = rng.random()
        test = fake_test(rng.randint(1, 3), codeowners=rng.choice(OWNERS))
        msg_id = f"msg_{rng.randint(0, 10**6):07d}"
        if kind < 0.40:
            previous, new = rng.sample(STATUSES, 2)
            body = payloads.status_changed(
                test,
                at=when(rng),
                previous=previous,
                new=new,
                monitor_id=MONITOR,
                monitor_type="pass_on_retry",
            )
        elif kind < 0.65:
            facts = [
                {"fact_type": rng.choice(FACT_TYPES), "content": "c", "confidence": rng.choice(CONFIDENCES)}
                for _ in range(rng.randint(0, 3))
            ]
            body = payloads.investigation_completed(
                test,
                at=when(rng),
                investigation_id=uuid.UUID(int=0xA7 + rng.randint(0, 4)),
                confidence=rng.choice(CONFIDENCES),
                markdown_summary="s",
                failure_message="f",
                facts=facts,
            )
        elif kind < 0.72 and sent:
            body, msg_id = rng.choice(sent)  # a duplicate
        elif kind < 0.82:
            pks = list(Investigation.objects.values_list("pk", flat=True))
            if pks:
                chosen = rng.sample(pks, rng.randint(1, len(pks)))
                triage.set_verdicts(
                    chosen, by=user, verdict=rng.choice(["confirmed", "rejected", ""]), at=when(rng)
                )
            continue
        elif kind < 0.92:
            tests = list(TestCase.objects.all())
            if tests:
                triage.triage_test(rng.choice(tests), by=user, note=f"n{step}", at=when(rng))
            continue
        else:
            deliveries = list(Delivery.objects.all())
            if deliveries:
                reprocess_delivery(rng.choice(deliveries))
            continue
        sent.append((body, msg_id))
        deliver(body, msg_id=msg_id)


def figures_over_all_history(repository, now=NOW):
    period = Period("all", now)
    cal = calibration_selectors.calibration(period=period, repository=repository)
    targets = {
        k: (v.triage_met, v.triage_missed, v.fix_met, v.fix_missed, v.breaching)
        for k, v in target_selectors.owner_targets(period=period, repository=repository).items()
    }
    return {
        "verdicts": cal["verdicts"],
        "bins": [(b["count"], b["confirmed"]) for b in cal["bins"]],
        "brier": None if cal["brier_score"] is None else round(cal["brier_score"], 9),
        "fact_types": sorted(
            (f["fact_type"], f["verdicts"], tuple((b["count"], b["confirmed"]) for b in f["bins"]))
            for f in cal["fact_types"]
        ),
        "auto_outcome": cal["auto_outcome"],
        "fixes": fix_selectors.fix_counts(period=period, repository=repository),
        "fixes_by_owner": fix_selectors.fix_counts_by_owner(period=period, repository=repository),
        "curve": fix_selectors.relapse_curve(now=now, repository=repository),
        "targets": targets,
    }


@pytest.mark.parametrize("seed", range(int(__import__("os").environ.get("ATTACK_SEEDS", "25"))))
def test_random_sequences_keep_every_tally(seed):
    play(seed)
    kept, kept_outcomes = tallies(), outcomes()
    repository = TestCase.objects.values_list("repository_id", flat=True).first()
    if repository is not None:
        assert figures_over_all_history(None) == figures_over_all_history(repository)
        rng = random.Random(-seed)
        for key in ("@acme/web", "@acme/api", ""):
            if rng.random() < 0.6:
                OwnerTarget.objects.create(
                    owner_key=key,
                    triage_days=rng.choice([0, 1, 2, 3, 7, 3650]),
                    fix_days=rng.choice([0, 1, 5, 14]),
                )
        for now in (NOW, NOW + timedelta(minutes=rng.randint(1, 3000)), at(30), at(31) + timedelta(days=40)):
            assert figures_over_all_history(None, now) == figures_over_all_history(repository, now), now
    assert kept == from_scratch()
    assert kept_outcomes == outcomes()
