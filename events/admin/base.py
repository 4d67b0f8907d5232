"""Base classes of the model admins: fast change lists, read-only admins for Trunk's
data, and capped read-only history inlines."""

from __future__ import annotations

from typing import ClassVar

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext

from .helpers import EstimatedCountPaginator, admin_link, parse_uuid


class FastChangeListAdmin(admin.ModelAdmin):
    """A change list that stays fast on a big table: estimated unfiltered count on
    PostgreSQL, and no second `count(*)` of the whole table for "N total"."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # Facet counts run one aggregate over the whole (filtered) table per filter.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    # Search terms that are UUIDs match these fields exactly (an index look-up)
    # instead of a substring scan of the text fields.
    uuid_search_fields: tuple[str, ...] = ()

    def action_checkbox(self, obj):
        """Django's checkbox, written directly: rendering a CheckboxInput through the
        form template engine costs about 1 ms a row, a quarter of a 100-row page.
        The HTML is the same (tests/admin/test_helpers.py compares them)."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            ACTION_CHECKBOX_NAME,
            str(obj.pk),
            format_html(gettext("Select this object for an action - {}"), str(obj)),
        )

    def response_action(self, request, queryset, *args, **kwargs):
        """Django filters the selection by primary key as posted: a value that is not one
        (a UUID pk and "x") raised ValidationError, a 500. Refused with a message instead."""
        pk = self.model._meta.pk
        try:
            for value in request.POST.getlist(ACTION_CHECKBOX_NAME):
                pk.to_python(value)
        except ValidationError:
            self.message_user(request, "The selection holds an invalid id: nothing was done.", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset, *args, **kwargs)

    def get_search_results(self, request, queryset, search_term):
        term = parse_uuid(search_term)
        if term is not None and self.uuid_search_fields:
            match = Q()
            for field in self.uuid_search_fields:
                match |= Q(**{field: term})
            return queryset.filter(match), False
        return super().get_search_results(request, queryset, search_term)


class ReadOnlyAdmin(FastChangeListAdmin):
    """Trunk's data: browsable, never added, changed or deleted through the admin
    (it is rebuilt from the deliveries), whatever the user's permissions."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CappedInlineFormSet(BaseInlineFormSet):
    """Only the newest `cap` rows: a test with thousands of events still opens fast.
    The inline template links to the full, filtered change list."""

    cap = 20

    def get_queryset(self):
        if not hasattr(self, "_queryset"):
            self._queryset = super().get_queryset()[: self.cap]
        return self._queryset


class HistoryInline(ReadOnlyInline):
    formset = CappedInlineFormSet
    template = "admin/events/includes/capped_tabular.html"
    ordering = ("-occurred_at", "-id")
    # The row's own page is linked from its time (occurred_link), on one line.
    show_change_link = False

    @admin.display(description="Occurred at")
    def occurred_link(self, obj):
        return admin_link(obj, date_format(timezone.localtime(obj.occurred_at), "DATETIME_FORMAT"))

    @admin.display(description="Delivery")
    def delivery_link(self, obj):
        url = reverse("admin:events_delivery_change", args=[obj.delivery_id])
        return format_html('<a href="{}">#{}</a>', url, obj.delivery_id)


class HistoryAdmin(ReadOnlyAdmin):
    """Common to the per-test history rows: newest first, test and delivery joined."""

    # Annotated: without it, subclasses could only list one field too (a 1-tuple's type).
    search_fields: ClassVar[tuple[str, ...]] = ("test_case__name",)
    uuid_search_fields: tuple[str, ...] = ("test_case_id",)
    list_select_related: ClassVar[tuple[str, ...]] = ("test_case",)

    @admin.display(description="Test", ordering="test_case__name")
    def test(self, obj):
        return admin_link(obj.test_case)

    @admin.display(description="Delivery")
    def delivery_link(self, obj):
        url = reverse("admin:events_delivery_change", args=[obj.delivery_id])
        return format_html('<a href="{}">#{}</a>', url, obj.delivery_id)
