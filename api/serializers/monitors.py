"""Monitors: monitor events (a test's history) and the monitor list."""

from __future__ import annotations

from rest_framework import serializers

from events.models import Monitor, MonitorEvent

from .base import EventSerializer


class MonitorRefSerializer(serializers.Serializer):
    id = serializers.UUIDField(
        source="monitor_id", help_text="Trunk's monitor id (Trunk sends no monitor name)."
    )
    type = serializers.CharField(
        source="monitor.type",
        help_text="e.g. `failure_rate`, `pass_on_retry`; the dashboard shows a monitor as "
        '"Failure rate monitor · <first 8 characters of the id>".',
    )
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
