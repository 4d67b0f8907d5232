"""Per-test history rows (status changes, monitor events, quarantine changes): read-only,
newest first, linked to their test and delivery."""

from __future__ import annotations

from django.contrib import admin
from django.template.defaultfilters import truncatechars
from django.utils.html import format_html

from ..models import MonitorEvent, QuarantineChange, StatusChange
from ..untrusted import pretty_json
from .base import HistoryAdmin
from .filters import MonitorTypeFilter, StatusChangeMonitorTypeFilter
from .helpers import EMPTY, pre, status_badge


@admin.register(StatusChange)
class StatusChangeAdmin(HistoryAdmin):
    list_display = ("occurred_at", "test", "transition", "monitor_type", "monitor_status", "delivery_link")
    list_filter = (
        "new_status",
        "previous_status",
        StatusChangeMonitorTypeFilter,
        ("occurred_at", admin.DateFieldListFilter),
    )
    search_help_text = "Test name, or a test id (UUID)."

    @admin.display(description="Change", ordering="new_status")
    def transition(self, obj):
        return format_html("{} → {}", status_badge(obj.previous_status), status_badge(obj.new_status))


@admin.register(MonitorEvent)
class MonitorEventAdmin(HistoryAdmin):
    list_display = ("occurred_at", "test", "monitor", "status", "delivery_link")
    list_filter = ("status", MonitorTypeFilter, ("occurred_at", admin.DateFieldListFilter))
    list_select_related = ("test_case", "monitor")
    uuid_search_fields = ("test_case_id", "monitor_id")
    search_help_text = "Test name, or a test or monitor id (UUID)."
    exclude = ("evidence",)
    readonly_fields = ("evidence_display",)

    @admin.display(description="Evidence")
    def evidence_display(self, obj):
        return pre(pretty_json(obj.evidence)) if obj.evidence is not None else EMPTY


@admin.register(QuarantineChange)
class QuarantineChangeAdmin(HistoryAdmin):
    list_display = ("occurred_at", "test", "setting_change", "actor", "reason_excerpt", "delivery_link")
    list_filter = ("updated_setting", "previous_setting", ("occurred_at", admin.DateFieldListFilter))
    search_fields = ("test_case__name", "actor_email", "actor_name")
    search_help_text = "Test name, actor name or e-mail, or a test id (UUID)."

    @admin.display(description="Setting")
    def setting_change(self, obj):
        return f"{obj.previous_setting or '?'} → {obj.updated_setting or '?'}"

    @admin.display(description="By", ordering="actor_name")
    def actor(self, obj):
        return f"{obj.actor_name} <{obj.actor_email}>" if obj.actor_email else obj.actor_name

    @admin.display(description="Reason")
    def reason_excerpt(self, obj):
        return truncatechars(obj.reason, 80)
