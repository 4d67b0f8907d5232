"""What every resource's serializers share: durations in seconds, Trunk's optional URLs,
and the base of the event history rows (status changes, monitor events, investigations,
quarantine changes)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from rest_framework import serializers


def usernames_shown(context: Mapping[str, Any]) -> bool:
    """Whether a response may name flakyboard's users as authors (of triage changes, of
    verdicts): staff account names are internal, so anonymous readers of a public
    dashboard (FLAKYBOARD_PUBLIC_DASHBOARD) get null. No request: a server-side use."""
    request = context.get("request")
    if request is None:
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated)


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
