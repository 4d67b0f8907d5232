"""The delivery log: each webhook delivery, and its headers and body in the detail."""

from __future__ import annotations

from rest_framework import serializers

from events.models import Delivery


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
