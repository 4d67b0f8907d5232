"""Test cases: the test, the triage PATCH body, and the test page's timeline data."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import models
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.metrics import IMPACT_FORMULA
from events.models import Status, TestCase

from .base import OptionalURLField
from .repositories import RepositoryBriefSerializer

TRIAGE_FIELDS = ("triage_state", "assignee", "triage_note")
IMPACT_HELP = (
    "Impact score, what to fix first (derived by flakyboard, read-only; `sort=-impact`): "
    f'{IMPACT_FORMULA} Rounded to 2 decimals. See docs/metrics.md, "Fix first: the impact score".'
)


class TestCaseSerializer(serializers.ModelSerializer):
    __test__ = False

    repository = RepositoryBriefSerializer(read_only=True, allow_null=True)
    owners = serializers.SerializerMethodField(
        help_text="Codeowners, deduplicated case-insensitively, each as first seen."
    )
    assignee_username = serializers.CharField(source="assignee.username", read_only=True, allow_null=True)
    dashboard_url = serializers.SerializerMethodField(help_text="The test's page on this flakyboard.")
    html_url = OptionalURLField(help_text="The test's page on Trunk; null when Trunk did not send one.")
    impact = serializers.SerializerMethodField(help_text=IMPACT_HELP)

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
            "quarantined_since",
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
            "impact",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "id": {"help_text": "Trunk's test case id."},
            "codeowners": {"help_text": "As sent in the latest event."},
            "status": {"help_text": "Current status: the new status of the latest change by event time."},
            "status_since": {
                "help_text": "Event time of the change that set the status; null if it never changed."
            },
            "quarantined_since": {
                "help_text": "While quarantined: the event time of the first event of the current unbroken "
                "run of events carrying `quarantined: true` (null when not quarantined). "
                "Quarantine age = now - this."
            },
            "first_event_at": {"help_text": "Event time of the earliest event about the test."},
            "last_event_at": {"help_text": "Event time of the latest event about the test."},
            "assignee": {"help_text": "User id of the assignee (flakyboard's triage data)."},
        }

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_owners(self, test: TestCase) -> list[str]:
        return [owner.name for owner in test.owners.all()]

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_impact(self, test: TestCase) -> float:
        # Annotated by the view (dashboard.selectors.tests.with_impact); rounded as shown.
        return round(test.impact, 2)  # type: ignore[attr-defined]

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
    "impact",
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
