"""Which subscriptions an alert goes to: the one place that reads a subscription's owners,
repositories and triggers."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from events.metrics import NO_OWNER
from events.models import Alert

from .models import TRIGGERS, Subscription


def triggers_of(alert: Alert) -> set[str]:
    """The subscription triggers an alert answers (an episode start may be a relapse, and
    a relapsed fix, too: one alert, one notice, whichever of them a subscription asked for)."""
    facts = alert.facts or {}
    if alert.kind == Alert.Kind.EPISODE_STARTED:
        found = {"new_episode"}
        if facts.get("relapse"):
            found.add("relapse")
        if facts.get("fix_relapsed"):
            found.add("fix_relapsed")
        return found
    return {alert.kind} & set(TRIGGERS)


@dataclass(frozen=True)
class Scope:
    """What routing knows of an alert's test: its owners' keys (lower-case) and repository."""

    owner_keys: tuple[str, ...]
    repository: str  # owner/name, lower-case; "" unknown


def owner_matches(pattern: str, owner_keys: Iterable[str]) -> bool:
    """`(no owner)` matches a test without owners; `@org/*` (fnmatch) any owner it covers;
    anything else one owner, compared case-insensitively (METRICS "Owners": keys are
    casefolded, events.projection.fold)."""
    keys = list(owner_keys)
    wanted = pattern.strip().casefold()
    if wanted == NO_OWNER:
        return not keys
    if any(ch in wanted for ch in "*?["):
        return any(fnmatch.fnmatchcase(key, wanted) for key in keys)
    return wanted in keys


def matches(subscription: Subscription, alert: Alert, scope: Scope) -> bool:
    if not subscription.trigger_names() & triggers_of(alert):
        return False
    repositories = subscription.repository_names()
    if repositories and scope.repository not in repositories:
        return False
    patterns = subscription.owner_patterns()
    if not patterns:
        return True
    # A missed target is one owner's: only that owner's subscriptions hear of it.
    owners = (alert.owner_key,) if alert.kind == Alert.Kind.TARGET_MISSED else scope.owner_keys
    if alert.kind == Alert.Kind.TARGET_MISSED and alert.owner_key == "":
        owners = ()
    return any(owner_matches(p, owners) for p in patterns)
