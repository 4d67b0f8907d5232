"""Recording alerts, the outbox of notifications (models/alerts.py): the one write, the
rule for which moments are recent enough to tell anyone about, and the alerts the
projection decides (a test starting an episode). The alerts that come with passing time
(a fix verified, a quarantine ready to release, a target missed) are decided by the
notification sweep (notifications/triggers.py), which records them here too."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from . import metrics
from .models import Alert
from .rollups.status import EpisodeSpan


def max_age() -> timedelta:
    """How far back a moment may lie when it is recorded and still be told: older ones (a
    late or replayed delivery, a catch-up after downtime) show in the digest only."""
    return timedelta(minutes=settings.FLAKYBOARD_NOTIFY_MAX_AGE_MINUTES)


def is_recent(moment: datetime, *, now: datetime) -> bool:
    # Event times may lie up to an hour ahead of ours (METRICS "Plausible event times"):
    # a moment after now is recent.
    return moment >= now - max_age()


@dataclass(frozen=True)
class NewAlert:
    kind: str
    key: str
    test_case_id: uuid.UUID
    moment: datetime
    facts: dict[str, Any] = field(default_factory=dict)
    owner_key: str = ""


def record_alerts(alerts: Iterable[NewAlert], *, now: datetime) -> int:
    """Insert the recent ones; an alert already recorded (same key: a retry, another
    projector, an overlapping sweep) is kept as it is. Returns how many were offered."""
    rows = [
        Alert(
            kind=a.kind,
            key=a.key,
            test_case_id=a.test_case_id,
            owner_key=a.owner_key,
            moment=a.moment,
            recorded_at=now,
            facts=a.facts,
        )
        for a in alerts
        if is_recent(a.moment, now=now)
    ]
    if rows:
        Alert.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def episode_started(test_id: uuid.UUID, episode: EpisodeSpan, *, status: str) -> NewAlert:
    """A test started an episode (turned FLAKY or BROKEN; METRICS "Episodes"), with whether
    it is a relapse and whether it undid a fix within the verification window."""
    previous_end = episode.previous_end
    return NewAlert(
        kind=Alert.Kind.EPISODE_STARTED,
        key=f"{Alert.Kind.EPISODE_STARTED}:{test_id}:{episode.started_at.isoformat()}",
        test_case_id=test_id,
        moment=episode.started_at,
        facts={
            "status": status,
            "start_known": episode.start_known,
            "relapse": metrics.is_relapse(episode.started_at, previous_end=previous_end),
            "fix_relapsed": previous_end is not None
            and metrics.fix_relapsed(ended_at=previous_end, next_started_at=episode.started_at),
            "previous_end": previous_end.isoformat() if previous_end else None,
        },
    )
