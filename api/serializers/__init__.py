"""What the API returns. Field names follow Trunk's payload where Trunk has the field
(../shared/trunk-webhooks.md); `occurred_at` is always Trunk's event time and
`received_at` ours. Timestamps are ISO 8601 in UTC ("Z"); durations are seconds.

Serializers only shape data: every number comes from dashboard.selectors, every write
goes through events.triage (TriageSerializer only validates a PATCH body).

One module per resource family; api.views, api.filters and the tests use them through
this package (`serializers.X`), and the OpenAPI components are named after the classes:

- base: seconds, OptionalURLField, EventSerializer (the history rows' base)
- repositories: repositories
- tests: test cases, the triage PATCH body, the timeline
- history: status changes, quarantine changes
- monitors: monitor events, the monitor list
- investigations: investigations and their facts, the verdict write's body
- deliveries: the delivery log
- stats: the stats endpoints
- targets: the triage history, owners' targets
"""

from .base import EventSerializer, OptionalURLField, seconds
from .deliveries import DeliveryDetailSerializer, DeliverySerializer
from .history import (
    ActorSerializer,
    QuarantineChangeSerializer,
    StatusChangeSerializer,
    TriggeredBySerializer,
)
from .investigations import FactSerializer, InvestigationSerializer, VerdictSerializer
from .monitors import MonitorEventSerializer, MonitorRefSerializer, MonitorSerializer
from .repositories import RepositoryBriefSerializer, RepositorySerializer
from .stats import (
    ActivationDaySerializer,
    ActivePairSerializer,
    AutoOutcomeSerializer,
    BandCountsSerializer,
    CalibrationBinSerializer,
    CalibrationFactTypeSerializer,
    CalibrationSerializer,
    CodeownersSerializer,
    ConfidenceDaySerializer,
    ConfidenceSerializer,
    CurvePointSerializer,
    FactTypeSerializer,
    FixesSerializer,
    FlappingSerializer,
    HistogramBinSerializer,
    MonitorStatsSerializer,
    OwnerStatsSerializer,
    QuarantineStatsSerializer,
    ResolveTimeSerializer,
    StatsMetaSerializer,
    StatusCountSerializer,
    StatusCountsSerializer,
    StatusTrendSerializer,
    SummarySerializer,
    TransitionDaySerializer,
    TrendDaySerializer,
)
from .targets import (
    AttainmentSerializer,
    OwnerTargetsSerializer,
    TargetDaysSerializer,
    TargetsStatsSerializer,
    TriageEventSerializer,
    targets_data,
)
from .tests import (
    TRIAGE_FIELDS,
    TRUNK_FIELDS,
    MonitorIntervalSerializer,
    MonitorTimelineSerializer,
    StrictCharField,
    TestCaseSerializer,
    TimelineIntervalSerializer,
    TimelineSerializer,
    TriageSerializer,
)

__all__ = [
    "AttainmentSerializer",
    "OwnerTargetsSerializer",
    "TargetDaysSerializer",
    "TargetsStatsSerializer",
    "TriageEventSerializer",
    "ActivationDaySerializer",
    "ActivePairSerializer",
    "ActorSerializer",
    "AutoOutcomeSerializer",
    "BandCountsSerializer",
    "CalibrationBinSerializer",
    "CalibrationFactTypeSerializer",
    "CalibrationSerializer",
    "CodeownersSerializer",
    "CurvePointSerializer",
    "ConfidenceDaySerializer",
    "ConfidenceSerializer",
    "DeliveryDetailSerializer",
    "DeliverySerializer",
    "EventSerializer",
    "FactSerializer",
    "FactTypeSerializer",
    "FixesSerializer",
    "FlappingSerializer",
    "HistogramBinSerializer",
    "InvestigationSerializer",
    "MonitorEventSerializer",
    "MonitorIntervalSerializer",
    "MonitorRefSerializer",
    "MonitorSerializer",
    "MonitorStatsSerializer",
    "MonitorTimelineSerializer",
    "OptionalURLField",
    "OwnerStatsSerializer",
    "QuarantineChangeSerializer",
    "QuarantineStatsSerializer",
    "RepositoryBriefSerializer",
    "RepositorySerializer",
    "ResolveTimeSerializer",
    "StatsMetaSerializer",
    "StatusChangeSerializer",
    "StatusCountSerializer",
    "StatusCountsSerializer",
    "StatusTrendSerializer",
    "StrictCharField",
    "SummarySerializer",
    "TRIAGE_FIELDS",
    "TRUNK_FIELDS",
    "TestCaseSerializer",
    "TimelineIntervalSerializer",
    "TimelineSerializer",
    "TransitionDaySerializer",
    "TrendDaySerializer",
    "TriageSerializer",
    "TriggeredBySerializer",
    "VerdictSerializer",
    "seconds",
    "targets_data",
]
