"""Investigations, with their facts and their verdict; the verdict write's body."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.metrics import BANDS_HELP, CONFIDENCE_BANDS, band_of
from events.models import Investigation, InvestigationFact, Verdict

from .base import EventSerializer, usernames_shown


class FactSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvestigationFact
        fields = ["position", "fact_type", "content", "confidence"]


class InvestigationSerializer(EventSerializer):
    confidence_band = serializers.SerializerMethodField(help_text=f"{BANDS_HELP}.")
    facts = FactSerializer(many=True, read_only=True)
    verdict = serializers.SerializerMethodField(
        help_text='A person\'s verdict on the root cause: confirmed, rejected, or "" for none '
        "(set with PUT/PATCH `investigations/{id}/verdict/`)."
    )
    verdict_by = serializers.SerializerMethodField(
        help_text="Username of who set the verdict; null: none, a deleted user, or an anonymous "
        "request on a public dashboard."
    )
    verdict_at = serializers.SerializerMethodField(help_text="When the verdict was set; null: none.")

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
            "verdict",
            "verdict_by",
            "verdict_at",
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

    # The verdict row is select_related by the selector (no row: no verdict).
    @extend_schema_field(serializers.ChoiceField(choices=["", *Verdict.values]))
    def get_verdict(self, investigation: Investigation) -> str:
        verdict = getattr(investigation, "verdict", None)
        return verdict.verdict if verdict else ""

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_verdict_by(self, investigation: Investigation) -> str | None:
        verdict = getattr(investigation, "verdict", None)
        if not (verdict and verdict.by) or not usernames_shown(self.context):
            return None
        return verdict.by.get_username()

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_verdict_at(self, investigation: Investigation) -> str | None:
        verdict = getattr(investigation, "verdict", None)
        return serializers.DateTimeField().to_representation(verdict.at) if verdict else None


class VerdictSerializer(serializers.Serializer):
    """PUT/PATCH body of `investigations/{id}/verdict/`. Anything else is a 400 naming it."""

    verdict = serializers.ChoiceField(
        choices=[("", "none"), *Verdict.choices],
        allow_blank=True,
        help_text='confirmed, rejected, or "" to clear the verdict.',
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = [key for key in data if key not in ("verdict", "csrfmiddlewaretoken")]
            if unknown:
                raise serializers.ValidationError(
                    {key: ["Unknown field. Only verdict can be set."] for key in unknown}
                )
        return super().to_internal_value(data)
