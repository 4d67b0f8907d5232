"""Owners' targets (METRICS "Owner targets", "Attainment"): the targets in whole days,
the installation's defaults, and whether an episode met one. Re-exported by
events.metrics, where every metric's definition is read from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# ---------------------------------------------------------------- owners' targets

TARGET_TRIAGE = "triage"
TARGET_FIX = "fix"
# The longest target, in days (ten years): a longer one means "no target" in practice, and
# days past Python's timedelta range (999,999,999) or the calendar's made every page and
# endpoint that shows targets answer 500. The admin refuses more; a row stored otherwise
# is read as this.
TARGET_MAX_DAYS = 3650


@dataclass(frozen=True)
class Targets:
    """An owner's targets, in whole days."""

    triage_days: int
    fix_days: int

    @property
    def triage(self) -> timedelta:
        return timedelta(days=self.triage_days)

    @property
    def fix(self) -> timedelta:
        return timedelta(days=self.fix_days)


def default_targets() -> Targets:
    """The installation's targets (FLAKYBOARD_TARGET_TRIAGE_DAYS, ..._FIX_DAYS)."""
    from django.conf import settings

    return Targets(settings.FLAKYBOARD_TARGET_TRIAGE_DAYS, settings.FLAKYBOARD_TARGET_FIX_DAYS)


def target_met(
    *, started_at: datetime, done_at: datetime | None, target: timedelta, now: datetime
) -> bool | None:
    """Whether an episode met a target (triage or fix within `target` of its start):
    True met, False missed (its target time has passed without it), None not decided yet
    (still inside the target: left out of attainment)."""
    if done_at is not None and done_at - started_at <= target:
        return True
    if now - started_at > target:
        return False
    return None


def attainment(met: int, missed: int) -> float | None:
    """The share met among the decided episodes; None without any."""
    return met / (met + missed) if met + missed else None
