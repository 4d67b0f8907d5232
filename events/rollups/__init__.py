"""Rollups: per-test figures derived from history, kept by the projection so that pages
read a few indexed rows instead of replaying all history on every request.

- StatusInterval: a test's status from one time to the next (METRICS "Status at time t").
- Episode: HEALTHY -> FLAKY/BROKEN ... -> HEALTHY (METRICS "Episodes").
- StatusDayDelta: per (day, status), tests entering minus tests leaving that status that
  day, so "tests by status at the end of day D" is a running sum over days (a few
  thousand rows for years of history, whatever the number of tests or events).
- MonitorInterval: a (monitor, test) pair active from the first `active` event after a
  `resolved` one to the next `resolved` (METRICS "Time to resolve"), with its duration.
- MonitorState.activations: the pair's `active` events (METRICS "Flapping" over all
  history), and MonitorState.event_days, the (day, status) of each of the pair's events:
  what the pair contributed to MonitorDayCount, kept so that a refresh adds exactly the
  difference (a reprocessed delivery removes and re-adds its event).
- MonitorDayCount: events per (day, monitor, status) (METRICS "Activations" by day and
  the event count of each monitor).
- MonitorTotal: each monitor's events (the sum of its MonitorDayCount rows).
- ResolutionBucket: resolved intervals per (monitor type, duration bucket), the index to
  the median time to resolve over all history.
- OwnerTest, OwnerEpisode: a test's owner links ("" for none) with its status and
  quarantined flag, and its episodes once per owner with their time to fix and relapse
  flag; OwnerCount: their sums per owner (tests, FLAKY, BROKEN, quarantined, fixes,
  relapses), kept by adding the difference of what the test contributes, so that the
  codeowners pages read a row per owner (METRICS "Owners": a test with several owners
  counts once for each).
- InvestigationDay, FactDayCount: per UTC day of event time, the investigations' count,
  confidence sum and histogram bins, and per fact type the facts' count and confidence
  sum (METRICS "Investigations" over all history: a row per day, not every investigation).
  A day's rows are recomputed from the day's investigations whenever one of them is
  written or removed, under a lock on the day's row (refresh_investigation_days).

A test's rollup rows are recomputed from its status changes whenever one of them is
applied (and when the test is first seen), its owner rollups also when its owner links
or its quarantined flag change; a pair's intervals from the pair's monitor events
whenever one arrives. A test or pair has tens of events, so this is cheap, and it
is correct whatever the order the events arrived in (ties on event time go by svix id,
as everywhere). The rules live here once; the projection (events/projection/: the
receiver per delivery, the projector per batch, reprocessing) collects what its events
made stale in a Stale and refreshes it, and the rebuild of the projections computes
everything at once (rebuild_all).

One module per family; a module imports only those listed before it:

- shared: the LOCK ORDER every transaction follows (read it before changing any write);
  SharedCounts, what a transaction's refreshes add to the rows that several tests, pairs
  or monitors share, written last in that order; TestRollupRows; day and SQL helpers.
- status: status intervals, episodes, status day deltas, transitions per day.
- owners: owner rows, owner episodes, owner counts and day deltas, owner spellings.
- monitors: monitor intervals, pair counts, day counts, totals, resolution buckets.
- investigations: investigation days and fact day counts.
- fixes: the fix tally (FixTally: fixes over all history by what followed them).
- calibration: the calibration tally (CalibrationBin: verdicts per confidence bin).
- refresh: Stale (a transaction's stale rollups, refreshed in the LOCK ORDER) and
  refresh_tests (a test's status and owner rows together).
- rebuild: rebuild_all, every rollup from the history rows.
"""

from .calibration import merge as merge_calibration
from .calibration import verdict_tally
from .investigations import BIN_FIELDS, rebuild_investigation_rollups, refresh_investigation_days
from .monitors import (
    RESOLUTION_BUCKET_EDGES,
    event_days_counter,
    rebuild_resolution_buckets,
    refresh_monitor_pairs,
    resolution_bucket,
    resolution_bucket_range,
)
from .outcomes import counted as counted_outcomes
from .owners import rebuild_owner_rollups, respell_owners
from .rebuild import ROLLUP_MODELS, rebuild_all
from .refresh import Stale, refresh_tests
from .shared import SharedCounts, day_of

__all__ = [
    "BIN_FIELDS",
    "RESOLUTION_BUCKET_EDGES",
    "ROLLUP_MODELS",
    "SharedCounts",
    "Stale",
    "day_of",
    "counted_outcomes",
    "event_days_counter",
    "merge_calibration",
    "rebuild_all",
    "rebuild_investigation_rollups",
    "rebuild_owner_rollups",
    "rebuild_resolution_buckets",
    "refresh_investigation_days",
    "refresh_monitor_pairs",
    "refresh_tests",
    "resolution_bucket",
    "resolution_bucket_range",
    "respell_owners",
    "verdict_tally",
]
