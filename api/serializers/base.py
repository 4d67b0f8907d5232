"""What every resource's serializers share: durations in seconds, Trunk's optional URLs,
and the base of the event history rows (status changes, monitor events, investigations,
quarantine changes)."""

from __future__ import annotations

from datetime import timedelta

from rest_framework import serializers


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

    # None renders as JSON null (DRF's fields return None freely); CharField's stub says str.
    def to_representation(self, value: str) -> str | None:  # type: ignore[override]
        return value or None


class EventSerializer(serializers.ModelSerializer):
    test_case = serializers.UUIDField(
        source="test_case_id", read_only=True, help_text="Trunk's test case id."
    )
    test_case_name = serializers.CharField(source="test_case.name", read_only=True)
