"""The delivery log (source of truth) and the projections derived from it.

Two clocks, never mixed: `occurred_at` is Trunk's event time from the payload,
`received_at` is when flakyboard received the delivery. History and current state
follow `occurred_at` (see ../shared/METRICS.md).

Everything but `Delivery` is a projection: `manage.py rebuild_projections` deletes it
and replays the deliveries. The only exception is the triage fields on `TestCase`
(flakyboard's own data), which survive a rebuild.

One module per family, each importing only from the ones before it:

- delivery.py: `Delivery`, what the receiver stores;
- tests.py: current state (repositories, owners, tests, monitors, `Status`);
- history.py: one row per applied event (status changes, monitor events,
  investigations and their facts, quarantine changes);
- rollups.py: every table derived from the history (intervals, episodes, day deltas
  and counts, buckets, the per-owner and per-day rollups);
- alerts.py: the outbox of notifications (`Alert`), flakyboard's own data;
- triage.py: flakyboard's own data beside the projections (verdicts on investigations,
  each test's triage history, owners' targets), kept through a rebuild.

Everything is re-exported here: import models from `events.models`.
"""

from .alerts import Alert
from .delivery import Delivery, ProjectorTotals
from .history import Investigation, InvestigationFact, MonitorEvent, QuarantineChange, StatusChange
from .rollups import (
    CalibrationBin,
    Episode,
    FactDayCount,
    FixTally,
    InvestigationDay,
    MonitorDayCount,
    MonitorInterval,
    MonitorTotal,
    OutcomeTally,
    OwnerCount,
    OwnerDayDelta,
    OwnerEpisode,
    OwnerTest,
    ResolutionBucket,
    StatusDayDelta,
    StatusInterval,
    TargetTally,
    TransitionDayCount,
)
from .tests import (
    TRIAGE_NOTE_MAX_LENGTH,
    Monitor,
    MonitorState,
    MonitorStatus,
    Owner,
    Repository,
    Status,
    TestCase,
    TestCaseOwner,
)
from .triage import InvestigationVerdict, OwnerTarget, TriageEvent, Verdict

__all__ = [
    "Alert",
    "TargetTally",
    "OutcomeTally",
    "CalibrationBin",
    "Verdict",
    "TriageEvent",
    "OwnerTarget",
    "InvestigationVerdict",
    "TRIAGE_NOTE_MAX_LENGTH",
    "Delivery",
    "ProjectorTotals",
    "Episode",
    "FactDayCount",
    "Investigation",
    "InvestigationDay",
    "InvestigationFact",
    "Monitor",
    "MonitorDayCount",
    "MonitorEvent",
    "MonitorInterval",
    "MonitorState",
    "MonitorStatus",
    "MonitorTotal",
    "Owner",
    "FixTally",
    "OwnerCount",
    "OwnerDayDelta",
    "OwnerEpisode",
    "OwnerTest",
    "QuarantineChange",
    "Repository",
    "ResolutionBucket",
    "Status",
    "StatusChange",
    "StatusDayDelta",
    "StatusInterval",
    "TestCase",
    "TestCaseOwner",
    "TransitionDayCount",
]
