"""The demo's triage: a few people triaging its episodes and judging its investigations,
replayed at their own times through the real triage service (events.triage), so that the
owners' targets, the triage history and the calibration of Trunk's confidence have
something to show.

Deterministic for a seed (the same plan on every run). Idempotent: tests that already
have a triage history and investigations that already have a verdict are left alone, so a re-run (or a real user's own
triage of a demo test) is never doubled or overwritten.

What it plays, per episode (in event-time order, all tests together):
- most episodes are triaged (state "investigating", an assignee) some hours to days after
  they start; each owner has its own pace (a hash of its name), so that some owners meet
  the 3-day target and others do not;
- a closed episode is marked "fixed" a few hours after it ended;
- about two investigations in three get a verdict a day or so after they completed,
  confirmed with a probability that rises with Trunk's confidence but not as steeply as
  the confidence claims (Trunk's AI is a little over-confident in the demo).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model

from events.models import Episode, Investigation, InvestigationVerdict, TestCase, TriageEvent, Verdict
from events.triage import Action, replay

# People of the demo who triage (no password: they cannot log in; authors and assignees).
TRIAGERS = ("ana.lima", "ben.okafor", "chen.wei")
VIA_DEMO = "demo"


def _pace(codeowners: list[str]) -> float:
    """A factor on the time to triage, from the test's first owner (stable across runs)."""
    name = (codeowners[0] if codeowners else "").casefold().encode()
    return (0.4, 0.8, 1.3, 2.5)[hashlib.sha256(name).digest()[0] % 4]


def replay_triage(*, now: datetime, seed: int) -> Counter[str]:
    """Play the demo's triage history up to `now`; returns how many actions of each kind
    changed something."""
    rng = random.Random(seed)
    user_model = get_user_model()
    people = []
    for username in TRIAGERS:
        user, created = user_model.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        people.append(user)

    # Planned for every episode and investigation alike (the same plan on every run);
    # played only for tests and investigations without any triage history yet.
    triaged = set(TriageEvent.objects.values_list("test_case_id", flat=True).distinct())
    judged = set(TriageEvent.objects.exclude(investigation=None).values_list("investigation_id", flat=True))
    judged |= set(InvestigationVerdict.objects.values_list("pk", flat=True))
    episodes = Episode.objects.order_by("test_case_id", "started_at").values_list(
        "test_case_id", "started_at", "ended_at", "test_case__codeowners"
    )
    actions: list[tuple[datetime, int, str, Any, dict[str, Any]]] = []
    order = 0  # ties at one time keep the order they were planned in
    for test_id, started_at, ended_at, codeowners in episodes.iterator(chunk_size=2000):
        if rng.random() < 0.85:
            delay = timedelta(hours=rng.lognormvariate(3.3, 0.9) * _pace(codeowners or []))
            when = started_at + delay
            if when < now and (ended_at is None or when < ended_at):
                person = rng.choice(people)
                actions.append(
                    (
                        when,
                        order,
                        "triage",
                        test_id,
                        {"state": TestCase.Triage.INVESTIGATING, "assignee": person, "by": person},
                    )
                )
                order += 1
        if ended_at is not None:
            when = ended_at + timedelta(hours=rng.uniform(0.5, 8))
            if when < now:
                actions.append(
                    (
                        when,
                        order,
                        "triage",
                        test_id,
                        {"state": TestCase.Triage.FIXED, "by": rng.choice(people)},
                    )
                )
                order += 1

    investigations = Investigation.objects.order_by("occurred_at", "id").values_list(
        "id", "occurred_at", "confidence"
    )
    for investigation_id, occurred_at, confidence in investigations.iterator(chunk_size=2000):
        if rng.random() >= 0.65:
            continue
        when = occurred_at + timedelta(hours=rng.uniform(1, 48))
        if when >= now:
            continue
        confirmed = rng.random() < 0.1 + 0.75 * confidence
        verdict = Verdict.CONFIRMED if confirmed else Verdict.REJECTED
        actions.append(
            (when, order, "verdict", investigation_id, {"verdict": verdict, "by": rng.choice(people)})
        )
        order += 1

    history = []
    for when, _order, kind, target, values in sorted(actions, key=lambda a: (a[0], a[1])):
        if target in (triaged if kind == "triage" else judged):
            continue
        by = values.pop("by")
        if kind == "triage":
            history.append(Action(at=when, by=by, via=VIA_DEMO, test_case_id=target, values=values))
        else:
            history.append(
                Action(at=when, by=by, via=VIA_DEMO, investigation_id=target, verdict=values["verdict"])
            )
    # In bulk (the same rows as one call per action: events.triage.replay), so that the
    # benchmark sizes' hundred thousand actions take seconds.
    return replay(history)
