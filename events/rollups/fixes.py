"""The fix tally (FixTally): every fix over all history counted by what followed it, for
every test and per owner, so that the fix counts and the relapse curve over all history
read a few rows per owner whatever the number of episodes.

A test's fixes are its closed episodes, each with the start of the test's next episode
(Episode.next_started_at): its key is (whole days to that start, clamped as the curve
takes it; whether it fell inside the verification window), the rules of events.metrics.
The refreshes add the difference between what a test's new episodes and its stored ones
count (refresh.py, owners.py), collected in SharedCounts.fix_tally and written with the
other shared rows (LOCK ORDER, shared.py); the rebuild counts them afresh.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from ..metrics import fix_relapsed, relapse_curve_day
from ..models import Episode, FixTally, OwnerEpisode

# A tally row's key: (everyone, owner key, days to next, relapsed).
TallyKey = tuple[bool, str, int, bool]


def _key(everyone: bool, owner_key: str, ended_at: datetime, next_started_at: datetime | None) -> TallyKey:
    return (
        everyone,
        owner_key,
        relapse_curve_day(ended_at=ended_at, next_started_at=next_started_at),
        fix_relapsed(ended_at=ended_at, next_started_at=next_started_at),
    )


def everyone_tally(episodes: Iterable) -> Counter:
    """What one test's episodes (anything with ended_at and next_started_at) add to the
    `everyone` rows: each closed one once."""
    return Counter(_key(True, "", e.ended_at, e.next_started_at) for e in episodes if e.ended_at is not None)


def owner_tally(spans: Iterable) -> Counter:
    """What one test's owner spans (owners.OwnerSpan: an episode per owner) add to the
    per-owner rows: each closed one under its owner key."""
    return Counter(
        _key(False, s.owner_key, s.ended_at, s.next_started_at) for s in spans if s.ended_at is not None
    )


def rebuild_fix_tally() -> None:
    """FixTally from every closed Episode and OwnerEpisode (a rebuild, on an empty table):
    one pass over each, counted in Python with the same rules as the refreshes."""
    tally: Counter = Counter()
    for ended_at, next_started_at in (
        Episode.objects.filter(ended_at__isnull=False)
        .values_list("ended_at", "next_started_at")
        .iterator(chunk_size=5000)
    ):
        if ended_at is not None:  # (filtered already: for the type checker)
            tally[_key(True, "", ended_at, next_started_at)] += 1
    for owner_key, ended_at, next_started_at in (
        OwnerEpisode.objects.filter(ended_at__isnull=False)
        .values_list("owner_key", "ended_at", "next_started_at")
        .iterator(chunk_size=5000)
    ):
        if ended_at is not None:
            tally[_key(False, owner_key, ended_at, next_started_at)] += 1
    FixTally.objects.bulk_create(
        [
            FixTally(everyone=everyone, owner_key=owner_key, days_to_next=days, relapsed=relapsed, fixes=n)
            for (everyone, owner_key, days, relapsed), n in sorted(tally.items())
            if n
        ],
        batch_size=1000,
    )
