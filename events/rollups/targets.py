"""The target tally (TargetTally): owner episodes over all history by whole days (rounded
up) to their first triage action and to their end, so that attainment over all history
of any whole-day target is a sum over a few rows per owner (METRICS "Owner targets",
"Attainment": met when the action came at most the target's days after the start).

An owner episode's row changes when its test's owner episodes are rewritten (the
rollups: TestRollupRows.write) or when its first triage changes (the triage service,
after it writes actions). Each takes what the tests concerned count for before and after
(`tally_of_tests`) and adds the difference, with the shared rows (LOCK ORDER 4); the
rebuild counts everything afresh.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from ..metrics import TARGET_FIX, TARGET_MAX_DAYS, TARGET_TRIAGE
from ..models import OwnerEpisode, TargetTally

TRIAGE = TARGET_TRIAGE
FIX = TARGET_FIX
NOT_YET = -1
START_UNKNOWN = -2
CHUNK = 1000
DAY = timedelta(days=1)


def days_to(started_at: datetime, at: datetime | None) -> int:
    """Whole days from the start to `at`, rounded up (so `at` met a target of D whole days
    when this is at most D), capped at TARGET_MAX_DAYS + 1; NOT_YET without `at`."""
    if at is None:
        return NOT_YET
    return min(max(-((started_at - at) // DAY), 0), TARGET_MAX_DAYS + 1)


def _count(rows: Iterable[tuple[str, datetime, datetime | None, datetime | None, bool]]) -> Counter:
    """(owner key, kind, days) -> episodes, from OwnerEpisode rows (owner key, started_at,
    ended_at, first_triage_at, start_known)."""
    tally: Counter = Counter()
    for owner_key, started_at, ended_at, first_triage_at, start_known in rows:
        if not start_known:
            tally[(owner_key, TRIAGE, START_UNKNOWN)] += 1
            continue
        tally[(owner_key, TRIAGE, days_to(started_at, first_triage_at))] += 1
        tally[(owner_key, FIX, days_to(started_at, ended_at))] += 1
    return tally


COLUMNS = ("owner_key", "started_at", "ended_at", "first_triage_at", "start_known")


def tally_of_tests(test_ids: Iterable[uuid.UUID]) -> Counter:
    """What these tests' owner episodes count for now. One read per thousand tests."""
    ids = sorted(set(test_ids))
    tally: Counter = Counter()
    for start in range(0, len(ids), CHUNK):
        tally.update(
            _count(
                OwnerEpisode.objects.filter(test_case_id__in=ids[start : start + CHUNK]).values_list(*COLUMNS)
            )
        )
    return tally


def change_of(test_ids: Iterable[uuid.UUID], write: Callable[[], None]) -> Counter:
    """What `write` (a change of these tests' owner episodes) changes in the tally."""
    ids = set(test_ids)
    before = tally_of_tests(ids)
    write()
    delta = tally_of_tests(ids)
    delta.subtract(before)
    return delta


def _all_rows() -> Iterator[tuple]:
    return OwnerEpisode.objects.values_list(*COLUMNS).iterator(chunk_size=5000)


def rebuild_target_tally() -> None:
    """TargetTally from every owner episode (a rebuild, on an empty table; after the
    owner episodes and their first triage)."""
    TargetTally.objects.bulk_create(
        [
            TargetTally(owner_key=owner_key, kind=kind, days=days, episodes=n)
            for (owner_key, kind, days), n in sorted(_count(_all_rows()).items())
        ],
        batch_size=1000,
    )
