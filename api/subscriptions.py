"""Notification subscriptions, read-only (managed in the admin). The destination holds
secrets (webhook tokens, passwords): only its scheme is given, never the URL."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.permissions import IsAuthenticated

from notifications.models import TRIGGERS, Subscription


class SubscriptionSerializer(serializers.ModelSerializer):
    owners = serializers.SerializerMethodField()
    repositories = serializers.SerializerMethodField()
    triggers = serializers.SerializerMethodField()
    destination_scheme = serializers.SerializerMethodField(
        help_text="The destination's kind (slack, msteams, json, mailto...): the URL itself is secret."
    )

    class Meta:
        model = Subscription
        fields = ("id", "name", "enabled", "mode", "owners", "repositories", "triggers", "destination_scheme")

    def get_owners(self, obj: Subscription) -> list[str]:
        return obj.owner_patterns()

    def get_repositories(self, obj: Subscription) -> list[str]:
        return obj.repository_names()

    def get_triggers(self, obj: Subscription) -> list[str]:
        return [t for t in TRIGGERS if t in obj.trigger_names()]

    def get_destination_scheme(self, obj: Subscription) -> str:
        return obj.destination.split(":", 1)[0].lower()[:20] if ":" in obj.destination else ""


@extend_schema_view(
    list=extend_schema(summary="Notification subscriptions (read-only)", tags=["notifications"]),
    retrieve=extend_schema(summary="One notification subscription", tags=["notifications"]),
)
class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Who is told what: owners (patterns), repositories, triggers, real-time or weekly
    digest. Managed in the admin; signed-in users only, public dashboard or not."""

    queryset = Subscription.objects.order_by("name", "id")
    serializer_class = SubscriptionSerializer
    permission_classes = [IsAuthenticated]
