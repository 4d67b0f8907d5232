"""Investigations and their facts: read-only; Markdown from the payload is shown as
escaped source text."""

from __future__ import annotations

from django.contrib import admin
from django.template.defaultfilters import truncatechars
from django.utils.html import format_html

from ..models import Investigation, InvestigationFact
from ..orm import related_count
from .base import HistoryAdmin, ReadOnlyAdmin, ReadOnlyInline
from .filters import ConfidenceBandFilter, FactTypeFilter, FactTypeValueFilter, band_label
from .helpers import EMPTY, pre


class InvestigationFactInline(ReadOnlyInline):
    model = InvestigationFact
    fields = readonly_fields = ("position", "fact_type", "confidence", "content_display")
    show_change_link = False
    ordering = ("position",)

    @admin.display(description="Content")
    def content_display(self, obj):
        return format_html('<div style="white-space:pre-wrap">{}</div>', obj.content)


@admin.register(Investigation)
class InvestigationAdmin(HistoryAdmin):
    list_display = ("occurred_at", "test", "confidence_display", "facts", "summary_excerpt", "delivery_link")
    list_filter = (ConfidenceBandFilter, FactTypeFilter, ("occurred_at", admin.DateFieldListFilter))
    uuid_search_fields = ("test_case_id", "id")
    search_help_text = "Test name, or a test or investigation id (UUID)."
    inlines = (InvestigationFactInline,)
    exclude = ("markdown_summary", "failure_message")
    readonly_fields = ("summary_display", "failure_message_display")

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(n_facts=related_count(InvestigationFact, "investigation"))
        )

    @admin.display(description="Confidence", ordering="confidence")
    def confidence_display(self, obj):
        return f"{obj.confidence:.2f} ({band_label(obj.confidence)})"

    @admin.display(description="Facts", ordering="n_facts")
    def facts(self, obj):
        return obj.n_facts

    @admin.display(description="Summary")
    def summary_excerpt(self, obj):
        return truncatechars(obj.markdown_summary, 120)

    # Markdown from the payload is untrusted: shown as escaped source text.
    @admin.display(description="Summary (Markdown source)")
    def summary_display(self, obj):
        return pre(obj.markdown_summary) if obj.markdown_summary else EMPTY

    @admin.display(description="Failure message")
    def failure_message_display(self, obj):
        return pre(obj.failure_message) if obj.failure_message else EMPTY


@admin.register(InvestigationFact)
class InvestigationFactAdmin(ReadOnlyAdmin):
    list_display = ("investigation", "position", "fact_type", "confidence")
    list_filter = (FactTypeValueFilter,)
    list_select_related = ("investigation",)
    search_fields = ("fact_type",)
    uuid_search_fields = ("investigation_id",)
