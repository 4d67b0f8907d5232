"""Investigations and their facts: read-only; Markdown from the payload is shown as
escaped source text. The one thing of ours on an investigation, its verdict, is shown
in the list (column and filter) and on its page, and set by the list's actions through
the triage service (events.triage), for users who may triage."""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.defaultfilters import truncatechars
from django.utils.html import format_html

from ..models import Investigation, InvestigationFact, Verdict
from ..orm import related_count
from ..triage import set_verdicts
from .base import HistoryAdmin, ReadOnlyAdmin, ReadOnlyInline
from .filters import ConfidenceBandFilter, FactTypeFilter, FactTypeValueFilter, band_label
from .helpers import EMPTY, plural, pre, when

NO_VERDICT = "none"


class VerdictFilter(admin.SimpleListFilter):
    title = "verdict"
    parameter_name = "verdict"

    def lookups(self, request, model_admin):
        return [*Verdict.choices, (NO_VERDICT, "No verdict")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == NO_VERDICT:
            return queryset.filter(verdict__isnull=True)
        if value in Verdict.values:
            return queryset.filter(verdict__verdict=value)
        return queryset


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
    list_display = (
        "occurred_at",
        "test",
        "confidence_display",
        "verdict_column",
        "facts",
        "summary_excerpt",
        "delivery_link",
    )
    list_filter = (
        ConfidenceBandFilter,
        VerdictFilter,
        FactTypeFilter,
        ("occurred_at", admin.DateFieldListFilter),
    )
    list_select_related = ("test_case", "verdict__by")
    uuid_search_fields = ("test_case_id", "id")
    search_help_text = "Test name, or a test or investigation id (UUID)."
    inlines = (InvestigationFactInline,)
    exclude = ("markdown_summary", "failure_message")
    readonly_fields = ("verdict_display", "summary_display", "failure_message_display")
    actions = ("mark_confirmed", "mark_rejected", "clear_verdict")

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(n_facts=related_count(InvestigationFact, "investigation"))
        )

    @admin.display(description="Confidence", ordering="confidence")
    def confidence_display(self, obj):
        return f"{obj.confidence:.2f} ({band_label(obj.confidence)})"

    @admin.display(description="Verdict", ordering="verdict__verdict")
    def verdict_column(self, obj):
        verdict = getattr(obj, "verdict", None)  # no row: no verdict
        return verdict.get_verdict_display() if verdict else EMPTY

    @admin.display(description="Verdict")
    def verdict_display(self, obj):
        """The verdict with its author and time (set from the list's actions or the
        dashboard's test page)."""
        verdict = getattr(obj, "verdict", None)
        if verdict is None:
            return "No verdict"
        return format_html(
            "{} by {}, {}", verdict.get_verdict_display(), verdict.by or "a deleted user", when(verdict.at)
        )

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

    # ---- actions: the verdict, through the triage service (author, time, history, log)

    def has_triage_permission(self, request) -> bool:
        """Setting a verdict is triage: who may triage a test (the TestCase admin's
        actions and the dashboard's rule)."""
        return request.user.has_perm("events.change_testcase")

    def _set_verdict(self, request, queryset, verdict: str, action: str, what: str) -> None:
        result = set_verdicts(queryset, by=request.user, verdict=verdict, via=f"action: {action}")
        message = f"{plural(result.changed, 'investigation')} {what}."
        if result.unchanged:
            message += (
                f" {plural(result.unchanged, 'selected investigation')} already "
                f"{'was' if result.unchanged == 1 else 'were'}."
            )
        self.message_user(request, message, messages.SUCCESS if result.changed else messages.INFO)

    @admin.action(description="Mark confirmed", permissions=["triage"])
    def mark_confirmed(self, request, queryset):
        self._set_verdict(request, queryset, Verdict.CONFIRMED, "mark confirmed", "marked “Confirmed”")

    @admin.action(description="Mark rejected", permissions=["triage"])
    def mark_rejected(self, request, queryset):
        self._set_verdict(request, queryset, Verdict.REJECTED, "mark rejected", "marked “Rejected”")

    @admin.action(description="Clear verdict", permissions=["triage"])
    def clear_verdict(self, request, queryset):
        self._set_verdict(request, queryset, "", "clear verdict", "cleared")


@admin.register(InvestigationFact)
class InvestigationFactAdmin(ReadOnlyAdmin):
    list_display = ("investigation", "position", "fact_type", "confidence")
    list_filter = (FactTypeValueFilter,)
    list_select_related = ("investigation",)
    search_fields = ("fact_type",)
    uuid_search_fields = ("investigation_id",)
