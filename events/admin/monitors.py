"""Monitors and the current state of each monitor on each test: read-only."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from ..models import Monitor, MonitorEvent, MonitorState
from ..orm import related_count
from .base import HistoryAdmin, ReadOnlyAdmin
from .filters import MonitorTypeFilter


@admin.register(Monitor)
class MonitorAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "active_tests", "events")
    list_filter = ("type",)
    search_fields = ("type",)
    uuid_search_fields = ("id",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_active=related_count(MonitorState, "monitor", status=MonitorEvent.MonitorStatus.ACTIVE),
                n_events=related_count(MonitorEvent, "monitor"),
            )
        )

    @admin.display(description="Active on (tests)", ordering="n_active")
    def active_tests(self, obj):
        return obj.n_active

    @admin.display(description="Events", ordering="n_events")
    def events(self, obj):
        url = reverse("admin:events_monitorevent_changelist")
        return format_html('<a href="{}?monitor__id__exact={}">{}</a>', url, obj.pk, obj.n_events)


@admin.register(MonitorState)
class MonitorStateAdmin(HistoryAdmin):
    list_display = ("monitor", "test", "status", "since")
    list_filter = ("status", MonitorTypeFilter)
    list_select_related = ("test_case", "monitor")
    uuid_search_fields = ("test_case_id", "monitor_id")
    ordering = ("-since", "-id")
