"""The story: healthy tests blip, troubled tests go through episodes (escalations,
investigations, quarantines, relapses; some still open at "now"), then everything is
put in delivery order, a few messages late."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from .builders import _Builders
from .population import _TestPlan
from .vocabulary import _MONITOR_TYPES

# Fraction of the generated messages delivered late.
OUT_OF_ORDER_FRACTION = 0.03

MIN_DAYS = 7  # episodes last hours to weeks: a shorter history cannot hold them


def generate_history(
    *, now: datetime, tests: int = 300, days: int = 120, seed: int = 42, repositories: int = 4
) -> list[dict[str, Any]]:
    """The demo's payloads, in delivery order (event time, with ~3% delivered late).

    Pure: uses `random.Random(seed)` and the given `now` only. Every event time lies in
    [now - days, now). Every generated test appears in at least one event.
    """
    if tests < 1 or repositories < 1:
        raise ValueError("tests and repositories must be at least 1")
    if days < MIN_DAYS:
        raise ValueError(f"days must be at least {MIN_DAYS}")
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return _Generator(now=now.astimezone(UTC), days=days, seed=seed).run(
        tests=tests, repositories=repositories
    )


class _Generator(_Builders):
    """The whole generator: `run` plays every test's story and returns the payloads."""

    # ------------------------------------------------------------ histories

    def _blips(self, plan: _TestPlan, count: int) -> None:
        """A healthy test: monitors briefly active, then resolved, without a status change."""
        rng = self.rng
        starts = sorted(self._at(rng.uniform(0.0, 0.97)) for _ in range(count))
        for at, following in zip(starts, [*starts[1:], None], strict=True):
            monitor_type = rng.choices(_MONITOR_TYPES, (50, 20, 30))[0]
            self._monitor(plan, at, monitor_type, "active", phase="BLIP")
            resolved = at + timedelta(hours=rng.uniform(2, 72))
            if following is not None:
                resolved = min(resolved, at + (following - at) * 0.9)
            self._monitor(plan, resolved, monitor_type, "resolved", phase="HEALTHY")

    def _episode(
        self,
        plan: _TestPlan,
        t0: datetime,
        *,
        kind: str,
        duration: timedelta | None,
        quarantine: str | None = None,
        escalate: bool = True,
    ) -> datetime | None:
        """HEALTHY -> kind ... -> HEALTHY. Returns the end, or None when still open at now
        (or when it would start too close to now to unfold)."""
        rng = self.rng
        if t0 >= self.now - timedelta(hours=1):
            return None
        end = t0 + duration if duration is not None else None
        if end is not None and end >= self.now:
            end = None
        primary = (
            rng.choice(("pass_on_retry", "pass_on_retry", "failure_rate"))
            if kind == "FLAKY"
            else (rng.choice(("failure_count", "failure_count", "failure_rate")))
        )
        active = [primary]
        since = {primary: 0.0}  # when each monitor became active, as a fraction of the episode
        self._monitor(plan, t0, primary, "active", phase=kind)
        t_sc = t0 + timedelta(minutes=rng.uniform(1, 20))
        self._status(plan, t_sc, "HEALTHY", kind, primary, "active")
        horizon = end if end is not None else self.now
        span = horizon - t_sc

        def mid(lo: float, hi: float) -> datetime:
            return t_sc + span * rng.uniform(lo, hi)

        status = kind
        # A second monitor often agrees with the first.
        if rng.random() < 0.35:
            candidates = (
                ("pass_on_retry", "failure_rate") if kind == "FLAKY" else ("failure_count", "failure_rate")
            )
            second = next(m for m in candidates if m != primary)
            since[second] = rng.uniform(0.05, 0.6)
            self._monitor(plan, t_sc + span * since[second], second, "active")
            active.append(second)
        # Monitors flap: resolved for a while, then active again, status unchanged.
        # Long episodes flap more (the "flapping" figure counts these activations).
        for monitor_type in list(active):
            flaps = min(5, int(rng.random() * 2.5 * (1 + span / timedelta(days=4))))
            first = since[monitor_type] + 0.02
            moments = sorted(rng.uniform(first, 0.75) for _ in range(2 * flaps))
            for off, on in zip(moments[::2], moments[1::2], strict=True):
                self._monitor(plan, t_sc + span * off, monitor_type, "resolved")
                self._monitor(plan, t_sc + span * on, monitor_type, "active")
        # Escalation: a flaky test starts failing every time (and sometimes calms down).
        if escalate and kind == "FLAKY" and "failure_count" not in active and rng.random() < 0.18:
            t_esc = mid(0.2, 0.45)
            self._monitor(plan, t_esc, "failure_count", "active", phase="BROKEN")
            self._status(
                plan,
                t_esc + timedelta(minutes=rng.uniform(1, 15)),
                "FLAKY",
                "BROKEN",
                "failure_count",
                "active",
            )
            status = "BROKEN"
            active.append("failure_count")
            if end is not None and rng.random() < 0.35:
                t_back = mid(0.5, 0.7)
                self._monitor(plan, t_back, "failure_count", "resolved", phase="FLAKY")
                self._status(
                    plan,
                    t_back + timedelta(minutes=rng.uniform(1, 15)),
                    "BROKEN",
                    "FLAKY",
                    "failure_count",
                    "resolved",
                )
                status = "FLAKY"
                active.remove("failure_count")
        # Trunk's AI looks into ~60% of episodes, sometimes twice.
        if rng.random() < 0.6:
            self._investigation(plan, mid(0.01, 0.25))
            if rng.random() < 0.25:
                self._investigation(plan, mid(0.3, 0.75))
        if quarantine is not None and quarantine != plan.setting:
            self._quarantine(plan, mid(0.05, 0.4), plan.setting, quarantine)
            plan.setting = quarantine
        if end is None:
            return None
        # The fix lands: every active monitor resolves, the last one brings HEALTHY back.
        window = min(timedelta(hours=2), (end - t_sc) * 0.1)
        times = sorted(end - window * rng.random() for _ in active)
        for monitor_type, at in zip(active, times, strict=True):
            self._monitor(plan, at, monitor_type, "resolved", phase="HEALTHY")
        self._status(
            plan, end + timedelta(seconds=rng.uniform(5, 120)), status, "HEALTHY", active[-1], "resolved"
        )
        return end + timedelta(seconds=121)

    def _half_years(self) -> int:
        return max(1, round(self.span / timedelta(days=182)))

    def _episode_duration(self) -> timedelta:
        days = min(45.0, max(0.25, self.rng.lognormvariate(math.log(5), 0.9)))
        return timedelta(days=days)

    def _troubled(self, plan: _TestPlan, forced: str | None) -> None:
        rng = self.rng
        relapse_gap = min(self.span * 0.1, timedelta(days=12))
        # The first three troubled tests make sure every kind of figure has data.
        if forced == "open_flaky":
            self._episode(plan, self._at(rng.uniform(0.75, 0.9)), kind="FLAKY", duration=None, escalate=False)
            return
        if forced == "open_broken":
            t0 = self._at(rng.uniform(0.6, 0.8))
            self._episode(plan, t0, kind="BROKEN", duration=None, quarantine="ALWAYS_QUARANTINE")
            return
        if forced == "relapse":
            duration: timedelta | None = max(self.span * 0.05, timedelta(hours=12))
            end = self._episode(
                plan, self._at(0.1), kind="FLAKY", duration=duration, quarantine="ALWAYS_QUARANTINE"
            )
            assert end is not None
            self._quarantine(plan, end + relapse_gap * 0.3, plan.setting, "UNSPECIFIED")
            plan.setting = "UNSPECIFIED"
            self._episode(plan, end + relapse_gap, kind="FLAKY", duration=duration)
            return
        t = self._at(rng.uniform(0.0, 0.5))
        episodes = rng.choices((1, 2, 3, 4, 5), (35, 30, 18, 10, 7))[0]
        chronic = rng.random() < 0.25  # the last episode is still open at now
        for n in range(episodes):
            kind = "BROKEN" if rng.random() < 0.2 else "FLAKY"
            quarantine = None
            if rng.random() < (0.5 if kind == "BROKEN" else 0.3):
                quarantine = "ALWAYS_QUARANTINE" if rng.random() < 0.9 else "NEVER_QUARANTINE"
            duration = None if chronic and n == episodes - 1 else self._episode_duration()
            end = self._episode(plan, t, kind=kind, duration=duration, quarantine=quarantine)
            if end is None:
                break
            # Relapses: about 40% of fixed tests turn flaky again within 30 days.
            gap = (
                timedelta(days=rng.uniform(1, 27))
                if rng.random() < 0.4
                else timedelta(days=rng.uniform(31, 70))
            )
            if plan.setting != "UNSPECIFIED" and rng.random() < 0.65:
                self._quarantine(plan, end + gap * rng.uniform(0.1, 0.8), plan.setting, "UNSPECIFIED")
                plan.setting = "UNSPECIFIED"
            t = end + gap

    def run(self, *, tests: int, repositories: int) -> list[dict[str, Any]]:
        rng = self.rng
        plans = self._tests(tests, self._repositories(repositories))
        forced = {0: "open_flaky", 1: "open_broken", 2: "relapse"}
        for i, plan in enumerate(plans):
            if i in forced or rng.random() < 0.38:
                self._troubled(plan, forced.get(i))
            else:
                # A longer history holds more blips (about 1 to 4 per half year).
                self._blips(plan, rng.choices((1, 2, 3, 4), (40, 30, 20, 10))[0] * self._half_years())
            if not any(a.at < self.now for a in plan.actions):
                # A test exists only through an event: give it at least one.
                at = self._at(rng.uniform(0.0, 0.9))
                self._monitor(plan, at, "failure_count", "active", phase="BLIP")
                self._monitor(plan, at + (self.now - at) * 0.5, "failure_count", "resolved", phase="HEALTHY")
            # Builders set the snapshot (phase, rates, quarantined flag) as they run, in
            # event-time order, so each payload shows the test as it was at that time.
            actions = sorted((a for a in plan.actions if a.at < self.now), key=lambda a: a.at)
            plan.phase = "HEALTHY"
            for action in actions:
                self.events.append((action.at, len(self.events), action.build()))
        return self._delivery_order()

    def _delivery_order(self) -> list[dict[str, Any]]:
        """Sorted by event time, except ~3% delivered a few positions late."""
        ordered = sorted(self.events, key=lambda e: (e[0], e[1]))
        keyed = [(float(i), payload) for i, (_, _, payload) in enumerate(ordered)]
        if len(keyed) > 1:
            count = max(1, round(len(keyed) * OUT_OF_ORDER_FRACTION))
            for i in self.rng.sample(range(len(keyed)), count):
                keyed[i] = (i + self.rng.randint(2, 40) + 0.5, keyed[i][1])
        keyed.sort(key=lambda pair: pair[0])
        return [payload for _, payload in keyed]
