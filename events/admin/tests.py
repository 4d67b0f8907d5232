"""Test cases: triage (state, assignee, note) and the read-only history of each test.

Trunk's data is read-only here. Every projected row is rebuilt from the delivery log
(`manage.py rebuild_projections`), so an edit in the admin would be lost at the next
rebuild and would hide what Trunk said. The only editable data is flakyboard's own:
the triage fields of a test case (state, assignee, note), written through the triage
service (events.triage), which records every change in the admin history with the old
and new values. The CSV export is the dashboard's (events.exports).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Prefetch, Q, Subquery
from django.http import StreamingHttpResponse
from django.template.defaultfilters import truncatechars
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal

from ..exports import test_cases_csv_response
from ..models import (
    Investigation,
    MonitorEvent,
    Owner,
    QuarantineChange,
    StatusChange,
    TestCase,
    TestCaseOwner,
)
from ..triage import FIELDS, triage_test, triage_tests, triage_values
from ..untrusted import safe_http_url
from .base import FastChangeListAdmin, HistoryInline
from .filters import (
    AssigneeFilter,
    HasInvestigationFilter,
    OwnerFilter,
    VariantFilter,
    band_label,
)
from .helpers import (
    EMPTY,
    parse_uuid,
    plural,
    staff_users,
    status_badge,
    when,
)
from .triage import TriageEventInline

TRIAGE_FIELDS = tuple(FIELDS)  # the only editable fields


class AssignForm(forms.Form):
    # No preselected user: assigning to the first one in the list by accident is too easy.
    assignee: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, label="Assign to", empty_label="Choose a user…"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]  # this form's copy of the declared field
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = staff_users()


class StatusChangeInline(HistoryInline):
    model = StatusChange
    verbose_name_plural = "status history"
    fields = readonly_fields = (
        "occurred_link",
        "transition",
        "monitor_type",
        "monitor_status",
        "reason",
        "delivery_link",
    )

    @admin.display(description="Change")
    def transition(self, obj):
        return format_html("{} → {}", status_badge(obj.previous_status), status_badge(obj.new_status))


class MonitorEventInline(HistoryInline):
    model = MonitorEvent
    verbose_name_plural = "monitor events"
    fields = readonly_fields = ("occurred_link", "monitor", "status", "evidence_excerpt", "delivery_link")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("monitor")

    @admin.display(description="Evidence")
    def evidence_excerpt(self, obj):
        return truncatechars(json.dumps(obj.evidence, ensure_ascii=False), 120) if obj.evidence else EMPTY


class InvestigationInline(HistoryInline):
    model = Investigation
    verbose_name_plural = "investigations"
    fields = readonly_fields = ("occurred_link", "confidence_display", "summary_excerpt", "delivery_link")

    @admin.display(description="Confidence")
    def confidence_display(self, obj):
        return f"{obj.confidence:.2f} ({band_label(obj.confidence)})"

    @admin.display(description="Summary")
    def summary_excerpt(self, obj):
        return truncatechars(obj.markdown_summary, 300)


class QuarantineChangeInline(HistoryInline):
    model = QuarantineChange
    verbose_name_plural = "quarantine changes"
    fields = readonly_fields = ("occurred_link", "setting_change", "actor", "reason", "delivery_link")

    @admin.display(description="Setting")
    def setting_change(self, obj):
        return f"{obj.previous_setting or '?'} → {obj.updated_setting or '?'}"

    @admin.display(description="By")
    def actor(self, obj):
        return f"{obj.actor_name} <{obj.actor_email}>" if obj.actor_email else obj.actor_name


TRUNK_FIELDS = (
    "id",
    "name",
    "classname",
    "parent",
    "file_path",
    "repository",
    "variant",
    "status_column",
    "status_since",
    "quarantined",
    "owners_column",
    "failure_rate_column",
    "prs_column",
    "confidence_column",
    "first_event_at",
    "last_event_at",
    "trunk_link",
)
# The same fields, laid out several to a line on the change page.
TRUNK_LAYOUT = (
    ("id", "variant"),
    "name",
    ("classname", "parent"),
    ("file_path", "repository"),
    ("status_column", "status_since", "quarantined"),
    "owners_column",
    ("failure_rate_column", "prs_column", "confidence_column"),
    ("first_event_at", "last_event_at"),
    "trunk_link",
)


@admin.register(TestCase)
class TestCaseAdmin(FastChangeListAdmin):
    """Triage: Trunk's fields are read-only; state, assignee and note are ours."""

    __test__ = False  # not a pytest test class

    # Nine columns fit a 1280 px window: the repository is under the test's name, the
    # assignee under its triage state.
    list_display = (
        "name_column",
        "status_column",
        "status_since_column",
        "quarantined_column",
        "owners_column",
        "failure_rate_column",
        "prs_column",
        "triage_column",
        "confidence_column",
    )
    list_select_related = ("repository", "assignee")
    list_filter = (
        "status",
        "quarantined",
        "repository",
        "triage_state",
        AssigneeFilter,
        OwnerFilter,
        HasInvestigationFilter,
        VariantFilter,
    )
    # Shown for the search box; the search itself is get_search_results below.
    search_fields = ("name",)
    search_help_text = "Name, class name, file path or owner (each word must match), or a test id (UUID)."
    # Most recently changed first; tests that never changed status last, on every
    # database (index testcase_recent_change_idx, migration 0003).
    ordering = (F("status_since").desc(nulls_last=True), "-id")
    actions = (
        "assign_to_me",
        "assign_to_user",
        "mark_investigating",
        "mark_fixed",
        "mark_wont_fix",
        "mark_new",
        "clear_assignee",
        "export_csv",
    )
    inlines = (
        StatusChangeInline,
        MonitorEventInline,
        InvestigationInline,
        QuarantineChangeInline,
        TriageEventInline,
    )
    readonly_fields = TRUNK_FIELDS
    fieldsets = (
        ("Triage", {"fields": TRIAGE_FIELDS}),
        ("Trunk (read-only: rebuilt from the deliveries)", {"fields": TRUNK_LAYOUT}),
    )
    view_on_site = True  # get_absolute_url: the dashboard's test page

    # ---- permissions: Trunk's rows come from deliveries, never from the admin.

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # ---- queries

    def get_queryset(self, request):
        latest = (
            Investigation.objects.filter(test_case=OuterRef("pk"))
            .order_by("-occurred_at", "id")
            .values("confidence")[:1]
        )
        return (
            super()
            .get_queryset(request)
            .select_related("repository", "assignee")
            .annotate(latest_confidence=Subquery(latest))
            .prefetch_related(Prefetch("owners", queryset=Owner.objects.order_by("key")))
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        test_id = parse_uuid(term)
        if test_id is not None:
            return queryset.filter(pk=test_id), False
        for bit in smart_split(term):
            if bit[:1] in ('"', "'") and bit[-1:] == bit[:1]:
                bit = unescape_string_literal(bit)
            owned = TestCaseOwner.objects.filter(owner__key__contains=bit.casefold()).values("test_case_id")
            queryset = queryset.filter(
                Q(name__icontains=bit)
                | Q(classname__icontains=bit)
                | Q(file_path__icontains=bit)
                | Q(pk__in=owned)
            )
        return queryset, False

    # ---- columns

    @admin.display(description="Test", ordering="name")
    def name_column(self, obj):
        where = " · ".join(str(part) for part in (obj.repository, obj.classname) if part)
        if not where:
            return obj.name
        return format_html(
            '{}<div style="color:var(--body-quiet-color);font-size:11px;max-width:18em;overflow:hidden;'
            'text-overflow:ellipsis;white-space:nowrap" title="{}">{}</div>',
            obj.name,
            where,
            where,
        )

    @admin.display(description="Since (UTC)", ordering="status_since")
    def status_since_column(self, obj):
        return when(obj.status_since)

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Quar.", boolean=True, ordering="quarantined")
    def quarantined_column(self, obj):
        """Quarantined now (a short header keeps the wide list on one screen)."""
        return obj.quarantined

    @admin.display(description="Owners")
    def owners_column(self, obj):
        return ", ".join(owner.name for owner in obj.owners.all())

    @admin.display(description="Fail 7d", ordering="failure_rate_last_7d")
    def failure_rate_column(self, obj):
        return EMPTY if obj.failure_rate_last_7d is None else f"{obj.failure_rate_last_7d:.0%}"

    @admin.display(description="PRs 7d", ordering="pull_requests_impacted_last_7d")
    def prs_column(self, obj):
        return EMPTY if obj.pull_requests_impacted_last_7d is None else obj.pull_requests_impacted_last_7d

    @admin.display(description="Triage", ordering="triage_state")
    def triage_column(self, obj):
        """The triage state, and under it who it is assigned to."""
        if not obj.assignee_id:
            return obj.get_triage_state_display()
        return format_html(
            '{}<div style="color:var(--body-quiet-color);font-size:11px">{}</div>',
            obj.get_triage_state_display(),
            obj.assignee.get_username(),
        )

    @admin.display(description="Inv. conf.", ordering="latest_confidence")
    def confidence_column(self, obj):
        """Confidence of the latest investigation, with its band."""
        confidence = getattr(obj, "latest_confidence", None)
        if confidence is None:
            return EMPTY
        return format_html(
            '<span style="white-space:nowrap">{} {}</span>', f"{confidence:.2f}", band_label(confidence)
        )

    @admin.display(description="Trunk page")
    def trunk_link(self, obj):
        url = safe_http_url(obj.html_url)
        if not url:
            return obj.html_url or EMPTY
        return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, url)

    # ---- change form: only the triage fields are written back

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        field = form.base_fields.get("assignee")
        if isinstance(field, forms.ModelChoiceField):  # the assignee foreign key's field
            # Staff can be assigned; a former assignee stays selectable so the form
            # still validates when only the note changes.
            allowed = Q(is_active=True, is_staff=True)
            if obj is not None and obj.assignee_id:
                allowed |= Q(pk=obj.assignee_id)
            User = get_user_model()
            field.queryset = User.objects.filter(allowed).order_by(User.USERNAME_FIELD)
            # Users are managed elsewhere: no add/change/delete/view icons next to the select.
            for flag in ("can_add_related", "can_change_related", "can_delete_related", "can_view_related"):
                setattr(field.widget, flag, False)
        if "triage_note" in form.base_fields:
            form.base_fields["triage_note"].widget.attrs["rows"] = 4
        return form

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Test cases", **(extra_context or {})})

    def save_model(self, request, obj, form, change):
        """Through the triage service: only the triage columns are written (a projection
        may have updated Trunk's since the form was loaded), and it logs the change."""
        if change:
            changed = {name: form.cleaned_data[name] for name in form.changed_data if name in TRIAGE_FIELDS}
            triage_test(obj, by=request.user, **triage_values(changed))

    def log_change(self, request, obj, message):
        """Nothing: triage_test has logged what changed, in the triage format, and a save
        that changed nothing is not logged."""
        return None

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["trunk_url"] = safe_http_url(obj.html_url) if obj is not None else ""
        return super().render_change_form(request, context, add, change, form_url, obj)

    # ---- actions

    def _set_triage(self, request, queryset, action: str, **values: Any) -> tuple[int, int]:
        """Set triage fields on the selected tests (events.triage); returns (changed, unchanged)."""
        result = triage_tests(queryset, by=request.user, via=f"action: {action}", **values)
        return result.changed, result.unchanged

    def _report(self, request, changed: int, unchanged: int, what: str) -> None:
        message = f"{plural(changed, 'test case')} {what}."
        if unchanged:
            message += (
                f" {plural(unchanged, 'selected test case')} already {'was' if unchanged == 1 else 'were'}."
            )
        self.message_user(request, message, messages.SUCCESS if changed else messages.INFO)

    @admin.action(description="Assign to me", permissions=["change"])
    def assign_to_me(self, request, queryset):
        changed, unchanged = self._set_triage(request, queryset, "assign to me", assignee=request.user)
        self._report(request, changed, unchanged, "assigned to you")

    @admin.action(description="Assign to a user…", permissions=["change"])
    def assign_to_user(self, request, queryset):
        """Intermediate page: choose the user, then apply to the same selection."""
        form = AssignForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            user = form.cleaned_data["assignee"]
            changed, unchanged = self._set_triage(request, queryset, f"assign to {user}", assignee=user)
            self._report(request, changed, unchanged, f"assigned to {user}")
            return None  # back to the change list
        count = queryset.count()
        context = {
            **self.admin_site.each_context(request),
            "title": "Assign test cases",
            "opts": self.model._meta,
            "form": form,
            "count": count,
            "tests": list(queryset.prefetch_related(None)[:20]),
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action": "assign_to_user",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/events/testcase/assign_to_user.html", context)

    def _mark(self, request, queryset, state: TestCase.Triage) -> None:
        changed, unchanged = self._set_triage(request, queryset, f"mark {state.label.lower()}", state=state)
        self._report(request, changed, unchanged, f"marked “{state.label}”")

    @admin.action(description="Set triage state: investigating", permissions=["change"])
    def mark_investigating(self, request, queryset):
        self._mark(request, queryset, TestCase.Triage.INVESTIGATING)

    @admin.action(description="Set triage state: fixed", permissions=["change"])
    def mark_fixed(self, request, queryset):
        self._mark(request, queryset, TestCase.Triage.FIXED)

    @admin.action(description="Set triage state: won't fix", permissions=["change"])
    def mark_wont_fix(self, request, queryset):
        self._mark(request, queryset, TestCase.Triage.WONT_FIX)

    @admin.action(description="Set triage state: new", permissions=["change"])
    def mark_new(self, request, queryset):
        self._mark(request, queryset, TestCase.Triage.NEW)

    @admin.action(description="Clear assignee", permissions=["change"])
    def clear_assignee(self, request, queryset):
        changed, unchanged = self._set_triage(request, queryset, "clear assignee", assignee=None)
        self._report(request, changed, unchanged, "unassigned")

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_csv(self, request, queryset) -> StreamingHttpResponse:
        """The dashboard's CSV columns (events.exports), for the selected tests."""
        count = queryset.count()
        response = test_cases_csv_response(queryset, request=request)
        self.message_user(request, f"Exported {plural(count, 'test case')} as CSV.")
        return response
