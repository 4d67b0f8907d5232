"""Investigations, with their facts."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.metrics import BANDS_HELP, CONFIDENCE_BANDS, band_of
from events.models import Investigation, InvestigationFact

from .base import EventSerializer


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
