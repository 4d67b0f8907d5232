"""The alerts that come with passing time, decided from the derived state by the sweep
(`manage.py notify` runs it every few seconds): a fix verified, a quarantined test ready
to release, an owner's episode past its target. Each is recorded once (its key) and only
while its moment is recent (events.alerts.is_recent): a sweep that did not run for a day
does not flood anyone; the digest shows what it missed.

Each query reads only the rows whose deadline fell in the recent window (indexed by the
time that starts it), whatever the size of the history."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import DateTimeField, ExpressionWrapper, F, Max, Q, Value
from django.db.models.functions import Coalesce, Greatest

from dashboard.selectors.quarantine import ready_to_release
from events import metrics
from events.alerts import NewAlert, max_age, record_alerts
from events.models import Alert, Episode, OwnerEpisode, OwnerTarget, TestCase


def record_due_alerts(*, now: datetime) -> int:
    """Record every time-driven alert whose moment lies in the recent window."""
    alerts = [*_fixes_verified(now), *_ready_to_release(now), *_targets_missed(now)]
    return record_alerts(alerts, now=now)


def _window(now: datetime, delay: timedelta) -> tuple[datetime, datetime]:
    """The starts whose `start + delay` lies in the recent window (now - max age, now]."""
    return now - max_age() - delay, now - delay


def _fixes_verified(now: datetime) -> list[NewAlert]:
    low, high = _window(now, metrics.FIX_VERIFICATION_WINDOW)
    rows = (
        Episode.objects.filter(ended_at__isnull=False, ended_at__gt=low, ended_at__lte=high)
        .filter(
            Q(next_started_at__isnull=True)
            | Q(next_started_at__gt=F("ended_at") + Value(metrics.FIX_VERIFICATION_WINDOW))
        )
        .values_list("test_case_id", "started_at", "ended_at", "start_known")
    )
    return [
        NewAlert(
            kind=Alert.Kind.FIX_VERIFIED,
            key=f"{Alert.Kind.FIX_VERIFIED}:{test_id}:{ended_at.isoformat()}",
            test_case_id=test_id,
            moment=ended_at + metrics.FIX_VERIFICATION_WINDOW,
            facts={
                "episode_started": started_at.isoformat(),
                "fixed_at": ended_at.isoformat(),
                "start_known": start_known,
            },
        )
        for test_id, started_at, ended_at, start_known in rows
        if ended_at is not None
    ]


def _ready_to_release(now: datetime) -> list[NewAlert]:
    """Ready since the latest of: quarantined since, HEALTHY for the required days, the
    last monitor of the test resolved. Only tests ready now are read, and only those whose
    readiness began recently are alerted."""
    healthy_from = ExpressionWrapper(
        Coalesce("status_since", "first_event_at") + Value(metrics.READY_TO_RELEASE_HEALTHY),
        output_field=DateTimeField(),
    )
    tests = (
        TestCase.objects.filter(ready_to_release(now=now))
        .annotate(
            # No monitor is active (ready_to_release): the latest since is the last resolution.
            last_resolved=Max("monitor_states__since"),
            ready_since=Greatest(healthy_from, Coalesce("quarantined_since", healthy_from)),
        )
        # Only those whose readiness began in the recent window (whatever the number ready).
        .filter(Q(ready_since__gte=now - max_age()) | Q(last_resolved__gte=now - max_age()))
        .values_list("pk", "ready_since", "last_resolved", "quarantined_since")
    )
    alerts = []
    for test_id, ready_since, last_resolved, quarantined_since in tests:
        moment = max(ready_since, last_resolved) if last_resolved else ready_since
        alerts.append(
            NewAlert(
                kind=Alert.Kind.READY_TO_RELEASE,
                # Ready again later (a relapse, then 14 healthy days) is a new alert.
                key=f"{Alert.Kind.READY_TO_RELEASE}:{test_id}:{moment.isoformat()}",
                test_case_id=test_id,
                moment=moment,
                facts={"quarantined_since": quarantined_since.isoformat() if quarantined_since else None},
            )
        )
    return alerts


def _targets_missed(now: datetime) -> list[NewAlert]:
    """Owner episodes whose triage or fix target passed recently without it being met
    (METRICS "Owner targets"): one query per distinct pair of targets in use (the
    defaults, and each owner's own)."""
    defaults = metrics.default_targets()
    most = metrics.TARGET_MAX_DAYS  # a longer stored target is read as this (events.metrics.targets)
    own = {
        key: metrics.Targets(min(triage or defaults.triage_days, most), min(fix or defaults.fix_days, most))
        for key, triage, fix in OwnerTarget.objects.values_list("owner_key", "triage_days", "fix_days")
    }
    groups: dict[metrics.Targets, list[str]] = {}
    for key, targets in own.items():
        groups.setdefault(targets, []).append(key)
    alerts: list[NewAlert] = []
    plans = [(defaults, Q(), list(own))] + [(t, Q(owner_key__in=keys), []) for t, keys in groups.items()]
    for targets, only, excluded in plans:
        for kind, target, done_field in (
            (metrics.TARGET_TRIAGE, targets.triage, "first_triage_at"),
            (metrics.TARGET_FIX, targets.fix, "ended_at"),
        ):
            low, high = _window(now, target)
            rows = (
                OwnerEpisode.objects.filter(only, started_at__gte=low, started_at__lt=high)
                .exclude(owner_key__in=excluded)
                .filter(
                    Q(**{f"{done_field}__isnull": True})
                    | Q(**{f"{done_field}__gt": F("started_at") + target})
                )
                .values_list("test_case_id", "owner_key", "started_at")
            )
            for test_id, owner_key, started_at in rows:
                alerts.append(
                    NewAlert(
                        kind=Alert.Kind.TARGET_MISSED,
                        key=f"{Alert.Kind.TARGET_MISSED}:{kind}:{owner_key}:{test_id}:{started_at.isoformat()}",
                        test_case_id=test_id,
                        owner_key=owner_key,
                        moment=started_at + target,
                        facts={
                            "target": kind,
                            "days": target.days,
                            "episode_started": started_at.isoformat(),
                        },
                    )
                )
    return alerts
