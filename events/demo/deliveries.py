"""Svix ids for the demo's messages, and the few that Svix sends twice."""

from __future__ import annotations

import random
from typing import Any

# Fraction of the generated messages delivered twice.
REDELIVERY_FRACTION = 0.01


def message_id_prefix(*, seed: int, tests: int, days: int, repositories: int) -> str:
    """Svix id prefix of a demo run: the same arguments give the same ids (re-runs are
    redeliveries), different sizes never reuse each other's ids."""
    return f"msg_demo_{seed}_{tests}t{days}d{repositories}r"


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
