"""A test's history: status changes and quarantine changes."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.models import QuarantineChange, StatusChange

from .base import EventSerializer


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
