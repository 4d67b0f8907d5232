"""Svix ids for the demo's messages, and the few that Svix sends twice."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

# Fraction of the generated messages delivered twice.
REDELIVERY_FRACTION = 0.01


def runs_prefix(*, seed: int, tests: int, days: int, repositories: int) -> str:
    """Svix id prefix of every run of one demo (the same arguments), whatever its day.
    Different sizes or seeds never share it (ids of runs before the day was in them too)."""
    return f"msg_demo_{seed}_{tests}t{days}d{repositories}r_"


def message_id_prefix(*, seed: int, tests: int, days: int, repositories: int, day: date) -> str:
    """Svix id prefix of a demo run on `day`: the same arguments and day give the same
    ids and payloads (re-runs that day are redeliveries); a run on another day is a new
    history, sent as new messages."""
    return f"{runs_prefix(seed=seed, tests=tests, days=days, repositories=repositories)}{day:%Y%m%d}"


def plan_deliveries(
    messages: list[dict[str, Any]], *, seed: int, id_prefix: str
) -> list[tuple[str, dict[str, Any]]]:
    """(svix id, payload) in delivery order: one id per message, ~1% sent again later
    with the same id (Svix is at-least-once)."""
    planned = [(f"{id_prefix}_{n:05d}", payload) for n, payload in enumerate(messages, 1)]
    if len(planned) < 2:
        return planned
    rng = random.Random(f"flakyboard-demo-redeliveries:{seed}")
    count = max(1, round(len(planned) * REDELIVERY_FRACTION))
    keyed: list[tuple[float, tuple[str, dict[str, Any]]]] = [
        (float(i), item) for i, item in enumerate(planned)
    ]
    for i in sorted(rng.sample(range(len(planned)), count)):
        # The retry comes a little later than the original (after a few other messages).
        keyed.append((i + rng.randint(1, 200) + 0.5, planned[i]))
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]
