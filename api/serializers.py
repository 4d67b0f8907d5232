"""What the API returns. Field names follow Trunk's payload where Trunk has the field
(../shared/trunk-webhooks.md); `occurred_at` is always Trunk's event time and
`received_at` ours. Timestamps are ISO 8601 in UTC ("Z"); durations are seconds.

Serializers only shape data: every number comes from dashboard.selectors, every write
goes through events.triage (TriageSerializer only validates a PATCH body).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import models
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.metrics import BANDS_HELP, CONFIDENCE_BANDS, NO_OWNER, PERIODS, band_of
from events.models import (
    Delivery,
    Investigation,
    InvestigationFact,
    Monitor,
    MonitorEvent,
    QuarantineChange,
    Repository,
    Status,
    StatusChange,
    TestCase,
)


def seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


class OptionalURLField(serializers.CharField):
    """A URL as Trunk sent it, or null. The models store "no URL" (left out of a payload,
    or null in it) as ""; the API answers null, the usual JSON for "absent", which a
    client can test without knowing our storage. The schema says string, not
    `format: uri`: the value is the sender's text, kept as sent (even "github.com/x"
    or "javascript:..."), and a schema must not promise what no one checked."""

    def __init__(self, **kwargs) -> None:
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value: str) -> str | None:
        return value or None


# ---------------------------------------------------------------- repositories


class RepositoryBriefSerializer(serializers.ModelSerializer):
    html_url = OptionalURLField(help_text="The repository's URL; null when Trunk did not send one.")

    class Meta:
        model = Repository
        fields = ["id", "trunk_id", "name", "html_url"]
        extra_kwargs = {
            "id": {
                "help_text": "flakyboard's id (Trunk gives none for repositories seen only in v1 events)."
            },
            "trunk_id": {"help_text": "Trunk's repository UUID (v2 events); null when unknown."},
        }


class RepositorySerializer(RepositoryBriefSerializer):
    test_count = serializers.IntegerField(read_only=True, help_text="Tests known in the repository.")
    flaky_count = serializers.IntegerField(read_only=True, help_text="Tests FLAKY now.")
    broken_count = serializers.IntegerField(read_only=True, help_text="Tests BROKEN now.")
    quarantined_count = serializers.IntegerField(read_only=True, help_text="Tests quarantined now.")

    class Meta(RepositoryBriefSerializer.Meta):
        fields = [
            *RepositoryBriefSerializer.Meta.fields,
            "test_count",
            "flaky_count",
            "broken_count",
            "quarantined_count",
        ]


# ---------------------------------------------------------------- test cases

TRIAGE_FIELDS = ("triage_state", "assignee", "triage_note")


class TestCaseSerializer(serializers.ModelSerializer):
    __test__ = False

    repository = RepositoryBriefSerializer(read_only=True, allow_null=True)
    owners = serializers.SerializerMethodField(
        help_text="Codeowners, deduplicated case-insensitively, each as first seen."
    )
    assignee_username = serializers.CharField(source="assignee.username", read_only=True, allow_null=True)
    dashboard_url = serializers.SerializerMethodField(help_text="The test's page on this flakyboard.")
    html_url = OptionalURLField(help_text="The test's page on Trunk; null when Trunk did not send one.")

    class Meta:
        model = TestCase
        fields = [
            "id",
            "name",
            "classname",
            "parent",
            "file_path",
            "html_url",
            "variant",
            "codeowners",
            "owners",
            "quarantined",
            "failure_rate_last_7d",
            "pull_requests_impacted_last_7d",
            "repository",
            "status",
            "status_since",
            "first_event_at",
            "last_event_at",
            "triage_state",
            "assignee",
            "assignee_username",
            "triage_note",
            "dashboard_url",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "id": {"help_text": "Trunk's test case id."},
            "codeowners": {"help_text": "As sent in the latest event."},
            "status": {"help_text": "Current status: the new status of the latest change by event time."},
            "status_since": {
                "help_text": "Event time of the change that set the status; null if it never changed."
            },
            "first_event_at": {"help_text": "Event time of the earliest event about the test."},
            "last_event_at": {"help_text": "Event time of the latest event about the test."},
            "assignee": {"help_text": "User id of the assignee (flakyboard's triage data)."},
        }

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_owners(self, test: TestCase) -> list[str]:
        return [owner.name for owner in test.owners.all()]

    @extend_schema_field(OpenApiTypes.URI)
    def get_dashboard_url(self, test: TestCase) -> str:
        url = reverse("dashboard:test-detail", args=[test.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


# Fields projected from Trunk's events (all the test shows but triage and the derived
# links): never writable through the API.
TRUNK_FIELDS = frozenset(TestCaseSerializer.Meta.fields) - {
    *TRIAGE_FIELDS,
    "assignee_username",
    "dashboard_url",
}


class StrictCharField(serializers.CharField):
    """A string, and only a string (DRF's CharField turns 0 or true into "0", "True")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TriageSerializer(serializers.ModelSerializer):
    """PATCH body: only flakyboard's triage fields. Anything else is a 400 naming it."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.TextField: StrictCharField,
    }

    assignee = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True),
        allow_null=True,
        required=False,
        help_text="User id of an active user, or null to unassign.",
    )

    class Meta:
        model = TestCase
        fields = list(TRIAGE_FIELDS)
        extra_kwargs = {"triage_note": {"required": False}, "triage_state": {"required": False}}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {}
            for key in data:
                if key in TRIAGE_FIELDS or key == "csrfmiddlewaretoken":  # the browsable API's form
                    continue
                if key in TRUNK_FIELDS:
                    errors[key] = ["This field is read-only: it comes from Trunk's webhooks."]
                elif key in TestCaseSerializer.Meta.fields:
                    errors[key] = ["This field is read-only."]
                else:
                    errors[key] = [f"Unknown field. Only {', '.join(TRIAGE_FIELDS)} can be changed."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class TimelineIntervalSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices, source="state")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(allow_null=True, help_text="Null: still current.")


class MonitorIntervalSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="An `active` event.")
    end = serializers.DateTimeField(
        allow_null=True, help_text="The next `resolved` event; null while active."
    )


class MonitorTimelineSerializer(serializers.Serializer):
    monitor_id = serializers.UUIDField()
    type = serializers.CharField()
    intervals = MonitorIntervalSerializer(many=True)


class TimelineSerializer(serializers.Serializer):
    """The data of the test page's timeline chart."""

    test_case = serializers.UUIDField()
    status = TimelineIntervalSerializer(many=True, help_text="Status intervals from first seen to now.")
    monitors = MonitorTimelineSerializer(many=True, help_text="Each monitor's active intervals.")


# ---------------------------------------------------------------- events


class EventSerializer(serializers.ModelSerializer):
    test_case = serializers.UUIDField(
        source="test_case_id", read_only=True, help_text="Trunk's test case id."
    )
    test_case_name = serializers.CharField(source="test_case.name", read_only=True)


class TriggeredBySerializer(serializers.Serializer):
    monitor_id = serializers.UUIDField()
    monitor_type = serializers.CharField()
    monitor_status = serializers.CharField()


class StatusChangeSerializer(EventSerializer):
    triggered_by = serializers.SerializerMethodField(
        help_text="The monitor that caused it (v2 events); null for legacy v1 events."
    )

    class Meta:
        model = StatusChange
        fields = [
            "id",
            "test_case",
            "test_case_name",
            "occurred_at",
            "previous_status",
            "new_status",
            "triggered_by",
            "reason",
        ]
        extra_kwargs = {
            "occurred_at": {"help_text": "Trunk's event time (`timestamp`)."},
            "reason": {"help_text": "Legacy v1 events only."},
        }

    @extend_schema_field(TriggeredBySerializer(allow_null=True))
    def get_triggered_by(self, change: StatusChange) -> dict | None:
        if change.monitor_id is None:
            return None
        return {
            "monitor_id": change.monitor_id,
            "monitor_type": change.monitor_type,
            "monitor_status": change.monitor_status,
        }


class MonitorRefSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="monitor_id")
    type = serializers.CharField(source="monitor.type")
    status = serializers.ChoiceField(choices=MonitorEvent.MonitorStatus.choices)


class MonitorEventSerializer(EventSerializer):
    monitor = MonitorRefSerializer(source="*", read_only=True, help_text="As in Trunk's payload.")

    class Meta:
        model = MonitorEvent
        fields = ["id", "test_case", "test_case_name", "occurred_at", "monitor", "evidence"]
        extra_kwargs = {
            "occurred_at": {"help_text": "Trunk's event time (`timestamp`)."},
            "evidence": {"help_text": "Supporting data as sent; its shape depends on the monitor type."},
        }


class MonitorSerializer(serializers.ModelSerializer):
    active_tests = serializers.IntegerField(read_only=True, help_text="Tests for which it is active now.")
    event_count = serializers.IntegerField(read_only=True, help_text="Monitor events received.")
    last_event_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Monitor
        fields = ["id", "type", "active_tests", "event_count", "last_event_at"]


class FactSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvestigationFact
        fields = ["position", "fact_type", "content", "confidence"]


class InvestigationSerializer(EventSerializer):
    confidence_band = serializers.SerializerMethodField(help_text=f"{BANDS_HELP}.")
    facts = FactSerializer(many=True, read_only=True)

    class Meta:
        model = Investigation
        fields = [
            "id",
            "test_case",
            "test_case_name",
            "occurred_at",
            "confidence",
            "confidence_band",
            "markdown_summary",
            "failure_message",
            "facts",
        ]
        extra_kwargs = {
            "id": {"help_text": "Trunk's investigation id (`investigation_id`)."},
            "occurred_at": {"help_text": "Trunk's `created_at`."},
            "markdown_summary": {"help_text": "Untrusted Markdown, as sent."},
            "failure_message": {"help_text": "Untrusted text, as sent."},
        }

    @extend_schema_field(serializers.ChoiceField(choices=list(CONFIDENCE_BANDS)))
    def get_confidence_band(self, investigation: Investigation) -> str:
        return band_of(investigation.confidence)


class ActorSerializer(serializers.Serializer):
    email = serializers.CharField(source="actor_email")
    full_name = serializers.CharField(source="actor_name")


class QuarantineChangeSerializer(EventSerializer):
    actor = ActorSerializer(source="*", read_only=True)
    previous_quarantining_setting = serializers.CharField(source="previous_setting", read_only=True)
    updated_quarantining_setting = serializers.CharField(source="updated_setting", read_only=True)

    class Meta:
        model = QuarantineChange
        fields = [
            "id",
            "test_case",
            "test_case_name",
            "occurred_at",
            "actor",
            "previous_quarantining_setting",
            "updated_quarantining_setting",
            "reason",
        ]
        extra_kwargs = {"occurred_at": {"help_text": "Trunk's event time (`timestamp`)."}}


# ---------------------------------------------------------------- deliveries


class DeliverySerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="event_type", read_only=True, help_text="The payload's event type.")

    class Meta:
        model = Delivery
        fields = [
            "id",
            "svix_id",
            "type",
            "outcome",
            "error",
            "received_at",
            "occurred_at",
            "processed_at",
            "redeliveries",
            "last_redelivered_at",
            "user_agent",
        ]
        extra_kwargs = {
            "received_at": {"help_text": "When flakyboard received it (our clock)."},
            "occurred_at": {"help_text": "Event time from the payload (Trunk's clock)."},
        }


class DeliveryDetailSerializer(DeliverySerializer):
    size = serializers.IntegerField(read_only=True, help_text="Body size in bytes.")

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "size", "headers", "body"]


# ---------------------------------------------------------------- stats


class StatsMetaSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=list(PERIODS))
    period_start = serializers.DateTimeField(allow_null=True, help_text="Null for `all`.")
    now = serializers.DateTimeField()
    repository = serializers.IntegerField(allow_null=True, help_text="Repository id the numbers cover.")


class StatusCountSerializer(serializers.Serializer):
    now = serializers.IntegerField(help_text="Tests with this status now.")
    change = serializers.IntegerField(help_text="Count now minus count at the start of the period.")


class StatusCountsSerializer(serializers.Serializer):
    HEALTHY = StatusCountSerializer()
    FLAKY = StatusCountSerializer()
    BROKEN = StatusCountSerializer()


class SummarySerializer(StatsMetaSerializer):
    status = StatusCountsSerializer()
    total = serializers.IntegerField(help_text="Tests known now.")
    quarantined = serializers.IntegerField(help_text="Tests quarantined now.")
    median_time_to_fix_seconds = serializers.FloatField(
        allow_null=True, help_text="Median time to fix over episodes that ended inside the period."
    )


# The per-day series (status trend, transitions, monitor activations, confidence per day)
# have a row or a few a day (730 days for two years of `all`): built directly, as their
# fields would build them (ISO date, int, float, the stored text), they cost about a tenth
# of going field by field, which made the size of the response, not the queries, most of
# these endpoints' time at L. tests/api/test_stats.py checks both give the same.


class TrendDaySerializer(serializers.Serializer):
    day = serializers.DateField(help_text="UTC day.")
    HEALTHY = serializers.IntegerField()
    FLAKY = serializers.IntegerField()
    BROKEN = serializers.IntegerField()

    def to_representation(self, instance: dict) -> dict:
        return {
            "day": instance["day"].isoformat(),
            "HEALTHY": int(instance["HEALTHY"]),
            "FLAKY": int(instance["FLAKY"]),
            "BROKEN": int(instance["BROKEN"]),
        }


class TransitionDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    new_status = serializers.ChoiceField(choices=Status.choices)
    count = serializers.IntegerField()

    def to_representation(self, instance: dict) -> dict:
        return {
            "day": instance["day"].isoformat(),
            "new_status": str(instance["new_status"]),
            "count": int(instance["count"]),
        }


class StatusTrendSerializer(StatsMetaSerializer):
    series = TrendDaySerializer(many=True, help_text="Tests by status at the end of each day.")
    transitions = TransitionDaySerializer(many=True, help_text="Status changes per day by new status.")


class OwnerStatsSerializer(serializers.Serializer):
    owner = serializers.CharField(help_text=f'As first seen; "{NO_OWNER}" for tests without owners.')
    owner_filter = serializers.CharField(
        help_text="The `owner` value of /test-cases/ that lists these tests."
    )
    tests = serializers.IntegerField()
    flaky = serializers.IntegerField()
    broken = serializers.IntegerField()
    quarantined = serializers.IntegerField()
    median_time_to_fix_seconds = serializers.FloatField(allow_null=True)
    oldest_open_since = serializers.DateTimeField(
        allow_null=True, help_text="Start of the oldest open episode of a test FLAKY or BROKEN now."
    )
    relapses = serializers.IntegerField(help_text="Episodes starting in the period within 30 days of a fix.")


class CodeownersSerializer(StatsMetaSerializer):
    results = OwnerStatsSerializer(many=True)


class ActivationDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    type = serializers.CharField(help_text="Monitor type.")
    count = serializers.IntegerField()

    def to_representation(self, instance: dict) -> dict:  # built directly: see above
        return {
            "day": instance["day"].isoformat(),
            "type": str(instance["type"]),
            "count": int(instance["count"]),
        }


class ActivePairSerializer(serializers.Serializer):
    monitor_id = serializers.UUIDField()
    monitor_type = serializers.CharField(source="monitor.type")
    test_case = serializers.UUIDField(source="test_case_id")
    test_case_name = serializers.CharField(source="test_case.name")
    since = serializers.DateTimeField(
        source="active_since",
        help_text="Active since: the first `active` event of the pair's unbroken run of `active` events.",
    )


class ResolveTimeSerializer(serializers.Serializer):
    type = serializers.CharField()
    median_time_to_resolve_seconds = serializers.FloatField()


class FlappingSerializer(serializers.Serializer):
    monitor_id = serializers.UUIDField()
    type = serializers.CharField()
    test_case = serializers.UUIDField(source="test_case_id")
    test_case_name = serializers.CharField(source="test_case__name")
    activations = serializers.IntegerField()


class MonitorStatsSerializer(StatsMetaSerializer):
    activations = ActivationDaySerializer(many=True, help_text="`active` events per day and monitor type.")
    active_now_total = serializers.IntegerField(help_text="(monitor, test) pairs active now.")
    active_now = ActivePairSerializer(many=True, help_text="The newest active pairs (at most 100).")
    median_time_to_resolve = ResolveTimeSerializer(many=True)
    flapping = FlappingSerializer(
        many=True, help_text="Pairs activated more than once in the period (top 20)."
    )


class HistogramBinSerializer(serializers.Serializer):
    start = serializers.FloatField()
    end = serializers.FloatField(help_text="Exclusive, except 1.0 in the last bin.")
    count = serializers.IntegerField()


class BandCountsSerializer(serializers.Serializer):
    high = serializers.IntegerField()
    medium = serializers.IntegerField()
    low = serializers.IntegerField()


class ConfidenceDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    count = serializers.IntegerField()
    mean_confidence = serializers.FloatField()

    def to_representation(self, instance: dict) -> dict:  # built directly: see above
        return {
            "day": instance["day"].isoformat(),
            "count": int(instance["count"]),
            "mean_confidence": float(instance["mean_confidence"]),
        }


class FactTypeSerializer(serializers.Serializer):
    fact_type = serializers.CharField()
    count = serializers.IntegerField()
    mean_confidence = serializers.FloatField(allow_null=True)


class ConfidenceSerializer(StatsMetaSerializer):
    total = serializers.IntegerField(help_text="Investigations in the period.")
    histogram = HistogramBinSerializer(many=True, help_text="Overall confidence in tenths.")
    bands = BandCountsSerializer()
    over_time = ConfidenceDaySerializer(many=True)
    facts_by_type = FactTypeSerializer(many=True)
