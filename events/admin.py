"""The Django admin: triage flaky tests, and inspect what Trunk actually sent.

Trunk's data is read-only here. Every projected row is rebuilt from the delivery log
(`manage.py rebuild_projections`), so an edit in the admin would be lost at the next
rebuild and would hide what Trunk said. The only editable data is flakyboard's own:
the triage fields of a test case (state, assignee, note). Every change of them, from
the change form or from an action, is written to the admin history with the old and
new values.

The big change lists (test cases, deliveries, history rows) are built for 100,000+
rows: a fixed number of queries per page whatever the number of rows (related rows
joined or prefetched, the latest investigation as a subquery), filters answered by
indexes, and an estimated count for an unfiltered list on PostgreSQL
(`admin_helpers.EstimatedCountPaginator`).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponse, StreamingHttpResponse
from django.template.defaultfilters import filesizeformat, truncatechars
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext

from events.metrics import band_of as confidence_band

from .admin_helpers import (
    OUTCOME_COLOURS,
    EstimatedCountPaginator,
    OctetLength,
    badge,
    distinct_values,
    parse_uuid,
    related_count,
    status_badge,
)
from .ingest import STORED_HEADERS
from .models import (
    Delivery,
    Investigation,
    InvestigationFact,
    Monitor,
    MonitorEvent,
    MonitorState,
    Owner,
    QuarantineChange,
    Repository,
    Status,
    StatusChange,
    TestCase,
    TestCaseOwner,
)
from .rebuild import replay
from .untrusted import csv_rows, pretty_body, pretty_json, safe_http_url

admin.site.site_header = "flakyboard admin"
admin.site.site_title = "flakyboard admin"
admin.site.index_title = "Triage and Trunk data"
# The test case list is wide (eleven columns): give it the whole window.
admin.site.enable_nav_sidebar = False
EMPTY = admin.site.empty_value_display  # what the admin shows for "no value"

NONE_VALUE = "__none__"  # list filter value for "(none)": never a real owner key or variant
TRIAGE_FIELDS = ("triage_state", "assignee", "triage_note")
UPDATE_CHUNK = 500  # rows per UPDATE ... WHERE pk IN (...): stays under SQLite's variable limit


def _plural(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _admin_link(obj: Any, text: Any = None) -> str:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if text is None else text)


def _pre(text: str) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;word-break:break-word;max-height:40em;overflow:auto;'
        'margin:0;padding:8px;background:var(--darkened-bg);border:1px solid var(--hairline-color)">{}</pre>',
        text,
    )


def _when(moment) -> str:
    """A compact, sortable time for wide lists; the long form in the tooltip."""
    if moment is None:
        return EMPTY
    moment = timezone.localtime(moment)
    return format_html(
        '<span style="white-space:nowrap" title="{}">{}</span>',
        date_format(moment, "DATETIME_FORMAT"),
        date_format(moment, "Y-m-d H:i"),
    )


def _staff_users() -> QuerySet:
    User = get_user_model()
    return User.objects.filter(is_active=True, is_staff=True).order_by(User.USERNAME_FIELD)


# ---------------------------------------------------------------- shared base classes


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
        return _admin_link(obj, date_format(timezone.localtime(obj.occurred_at), "DATETIME_FORMAT"))

    @admin.display(description="Delivery")
    def delivery_link(self, obj):
        url = reverse("admin:events_delivery_change", args=[obj.delivery_id])
        return format_html('<a href="{}">#{}</a>', url, obj.delivery_id)


# ---------------------------------------------------------------- list filters


class DistinctValueFilter(admin.SimpleListFilter):
    """Distinct values of an indexed column, read by index skips (see distinct_values)."""

    field_name = ""

    def lookups(self, request, model_admin):
        return [
            (value or NONE_VALUE, value or "(none)")
            for value in distinct_values(model_admin.model, self.field_name)
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(**{self.field_name: "" if value == NONE_VALUE else value})


class VariantFilter(DistinctValueFilter):
    title = "variant"
    parameter_name = field_name = "variant"


class EventTypeFilter(DistinctValueFilter):
    title = "type"
    parameter_name = field_name = "event_type"


class OwnerFilter(admin.SimpleListFilter):
    """Tests of one owner, through the (owner, test_case) index of TestCaseOwner, or
    tests with no owner at all. Owners are compared by their case-insensitive key."""

    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        return [(NONE_VALUE, "(no owner)"), *Owner.objects.order_by("key").values_list("key", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value == NONE_VALUE:
            return queryset.filter(~Exists(TestCaseOwner.objects.filter(test_case=OuterRef("pk"))))
        links = TestCaseOwner.objects.filter(owner__key=value.casefold())
        return queryset.filter(pk__in=links.values("test_case_id"))


class AssigneeFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        users = [(str(user.pk), str(user)) for user in _staff_users() if user.pk != request.user.pk]
        return [("me", "Mine"), (NONE_VALUE, "Unassigned"), *users]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value == "me":
            return queryset.filter(assignee=request.user)
        if value == NONE_VALUE:
            return queryset.filter(assignee__isnull=True)
        if value.isdigit():
            return queryset.filter(assignee_id=int(value))
        return queryset.none()


class HasInvestigationFilter(admin.SimpleListFilter):
    title = "has investigation"
    parameter_name = "investigated"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        investigated = Exists(Investigation.objects.filter(test_case=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(investigated)
        if self.value() == "no":
            return queryset.filter(~investigated)
        return queryset


class MonitorTypeFilter(admin.SimpleListFilter):
    """Monitor types, listed from the small Monitor table (not a scan of the events)."""

    title = "monitor type"
    parameter_name = "monitor_type"
    lookup = "monitor__type"

    def lookups(self, request, model_admin):
        types = Monitor.objects.order_by("type").values_list("type", flat=True).distinct()
        return [(t, t) for t in types]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(**{self.lookup: self.value()})


class StatusChangeMonitorTypeFilter(MonitorTypeFilter):
    """Status changes carry the type of the monitor that triggered them (not indexed:
    filtering scans the history, listing the choices does not)."""

    lookup = "monitor_type"


class ConfidenceBandFilter(admin.SimpleListFilter):
    """Bands of METRICS.md: high >= 0.8, medium >= 0.5, low < 0.5."""

    title = "confidence"
    parameter_name = "band"

    def lookups(self, request, model_admin):
        return [("high", "High (≥ 0.8)"), ("medium", "Medium (0.5 to 0.8)"), ("low", "Low (< 0.5)")]

    def queryset(self, request, queryset):
        return {
            "high": queryset.filter(confidence__gte=0.8),
            "medium": queryset.filter(confidence__gte=0.5, confidence__lt=0.8),
            "low": queryset.filter(confidence__lt=0.5),
        }.get(self.value(), queryset)


class FactTypeFilter(admin.SimpleListFilter):
    title = "fact type"
    parameter_name = "fact_type"

    def lookups(self, request, model_admin):
        return [(t, t) for t in distinct_values(InvestigationFact, "fact_type")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        facts = InvestigationFact.objects.filter(investigation=OuterRef("pk"), fact_type=self.value())
        return queryset.filter(Exists(facts))


# ---------------------------------------------------------------- test cases: triage


class AssignForm(forms.Form):
    # No preselected user: assigning to the first one in the list by accident is too easy.
    assignee = forms.ModelChoiceField(queryset=None, label="Assign to", empty_label="Choose a user…")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = _staff_users()


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
        return f"{obj.confidence:.2f} ({confidence_band(obj.confidence)})"

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

    list_display = (
        "name_column",
        "repository",
        "status_column",
        "status_since_column",
        "quarantined_column",
        "owners_column",
        "failure_rate_column",
        "prs_column",
        "triage_column",
        "assignee",
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
    inlines = (StatusChangeInline, MonitorEventInline, InvestigationInline, QuarantineChangeInline)
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
        if not obj.classname:
            return obj.name
        return format_html(
            '{}<div style="color:var(--body-quiet-color);font-size:11px;max-width:15em;overflow:hidden;'
            'text-overflow:ellipsis;white-space:nowrap" title="{}">{}</div>',
            obj.name,
            obj.classname,
            obj.classname,
        )

    @admin.display(description="Since", ordering="status_since")
    def status_since_column(self, obj):
        return _when(obj.status_since)

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
        return obj.get_triage_state_display()

    @admin.display(description="Inv. conf.", ordering="latest_confidence")
    def confidence_column(self, obj):
        """Confidence of the latest investigation, with its band."""
        confidence = getattr(obj, "latest_confidence", None)
        if confidence is None:
            return EMPTY
        return format_html(
            '<span style="white-space:nowrap">{} {}</span>', f"{confidence:.2f}", confidence_band(confidence)
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
        if field is not None:
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
        # Never `save()` the whole row: a projection may have updated Trunk's fields
        # since the form was loaded, and those must not be overwritten with old values.
        fields = [name for name in form.changed_data if name in TRIAGE_FIELDS]
        if change and fields:
            obj.save(update_fields=fields)

    def construct_change_message(self, request, form, formsets, add=False):
        """Who and when are the log entry's; this says what, with old and new values."""
        parts = []
        if "triage_state" in form.changed_data:
            old = TestCase.Triage(form.initial.get("triage_state") or TestCase.Triage.NEW).label
            parts.append(f"Triage state: {old} → {TestCase.Triage(form.cleaned_data['triage_state']).label}.")
        if "assignee" in form.changed_data:
            old_id = form.initial.get("assignee")
            old = get_user_model().objects.filter(pk=old_id).first() if old_id else None
            new = form.cleaned_data.get("assignee")
            parts.append(f"Assignee: {old or 'nobody'} → {new or 'nobody'}.")
        if "triage_note" in form.changed_data:
            parts.append("Triage note edited.")
        return " ".join(parts) or "No fields changed."

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["trunk_url"] = safe_http_url(obj.html_url) if obj is not None else ""
        return super().render_change_form(request, context, add, change, form_url, obj)

    # ---- actions

    def _set_triage(self, request, queryset, action: str, **values: Any) -> tuple[int, int]:
        """Set triage fields on the selected tests that differ; log each change.

        Returns (changed, unchanged). Only the triage columns are written.
        """
        differs = Q()
        for field, value in values.items():
            differs |= ~Q(**{field: value})
        base = queryset.prefetch_related(None).order_by()
        with transaction.atomic():
            rows = list(base.filter(differs).values_list("pk", "name", "triage_state", "assignee_id"))
            total = base.count()
            pks = [row[0] for row in rows]
            for start in range(0, len(pks), UPDATE_CHUNK):
                TestCase.objects.filter(pk__in=pks[start : start + UPDATE_CHUNK]).update(**values)
            self._log_triage(request, rows, action, values)
        return len(rows), total - len(rows)

    def _log_triage(self, request, rows, action: str, values: dict[str, Any]) -> None:
        user_ids = {row[3] for row in rows if row[3]}
        new_assignee = values.get("assignee")
        users = {u.pk: str(u) for u in get_user_model().objects.filter(pk__in=user_ids)} if user_ids else {}
        content_type = ContentType.objects.get_for_model(TestCase)
        now = timezone.now()
        entries = []
        for pk, name, state, assignee_id in rows:
            parts = []
            if "triage_state" in values and values["triage_state"] != state:
                old, new = TestCase.Triage(state).label, TestCase.Triage(values["triage_state"]).label
                parts.append(f"Triage state: {old} → {new}.")
            if "assignee" in values and (new_assignee.pk if new_assignee else None) != assignee_id:
                parts.append(f"Assignee: {users.get(assignee_id, 'nobody')} → {new_assignee or 'nobody'}.")
            entries.append(
                LogEntry(
                    action_time=now,
                    user_id=request.user.pk,
                    content_type=content_type,
                    object_id=str(pk),
                    object_repr=name[:200],
                    action_flag=CHANGE,
                    change_message=f"{' '.join(parts)} (action: {action})",
                )
            )
        LogEntry.objects.bulk_create(entries)

    def _report(self, request, changed: int, unchanged: int, what: str) -> None:
        message = f"{_plural(changed, 'test case')} {what}."
        if unchanged:
            message += (
                f" {_plural(unchanged, 'selected test case')} already {'was' if unchanged == 1 else 'were'}."
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
        changed, unchanged = self._set_triage(
            request, queryset, f"mark {state.label.lower()}", triage_state=state
        )
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

    CSV_HEADER = (
        "id",
        "name",
        "classname",
        "file_path",
        "repository",
        "variant",
        "status",
        "status_since",
        "quarantined",
        "owners",
        "failure_rate_last_7d",
        "pull_requests_impacted_last_7d",
        "triage_state",
        "assignee",
        "triage_note",
        "latest_investigation_confidence",
        "trunk_url",
        "dashboard_url",
    )

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_csv(self, request, queryset) -> HttpResponse:
        count = queryset.count()
        tests = queryset.select_related("repository", "assignee").iterator(chunk_size=2000)

        def rows():
            for t in tests:
                yield (
                    t.pk,
                    t.name,
                    t.classname,
                    t.file_path,
                    t.repository or "",
                    t.variant,
                    t.status,
                    t.status_since.isoformat() if t.status_since else "",
                    t.quarantined,
                    "; ".join(o.name for o in t.owners.all()),
                    t.failure_rate_last_7d,
                    t.pull_requests_impacted_last_7d,
                    t.triage_state,
                    t.assignee or "",
                    t.triage_note,
                    t.latest_confidence,
                    t.html_url,
                    request.build_absolute_uri(t.get_absolute_url()),
                )

        response = StreamingHttpResponse(
            csv_rows(self.CSV_HEADER, rows()), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="flakyboard-tests-{stamp}.csv"'
        self.message_user(request, f"Exported {_plural(count, 'test case')} as CSV.")
        return response


# ---------------------------------------------------------------- deliveries


class DeliveryChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        # The list never shows bodies (up to 1 MiB each): their size is computed in SQL.
        qs = super().get_queryset(request, exclude_parameters)
        return qs.defer("body", "headers", "error", "user_agent")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """The append-only delivery log. Nobody adds, edits or deletes a delivery here
    (superusers included); "reprocess" re-runs parsing and projection."""

    list_display = (
        "svix_column",
        "event_type",
        "outcome_column",
        "occurred_column",
        "received_column",
        "redeliveries",
        "size_column",
    )
    list_filter = ("outcome", EventTypeFilter, ("received_at", admin.DateFieldListFilter))
    search_fields = ("svix_id",)
    search_help_text = (
        "A whole svix id (msg_…), part of an event type, or a test, investigation or monitor id (UUID)."
    )
    actions = ("reprocess",)
    fieldsets = (
        (None, {"fields": ("svix_id", "event_type", "outcome_column", "error_display", "projection")}),
        (
            "Times",
            {"fields": ("occurred_at", "received_at", "processed_at", "redeliveries", "last_redelivered_at")},
        ),
        ("Request", {"fields": ("user_agent", "headers_display", "size_column", "body_display")}),
    )
    readonly_fields = (
        "svix_id",
        "event_type",
        "outcome_column",
        "error_display",
        "projection",
        "occurred_at",
        "received_at",
        "processed_at",
        "redeliveries",
        "last_redelivered_at",
        "user_agent",
        "headers_display",
        "size_column",
        "body_display",
    )

    def get_changelist(self, request, **kwargs):
        return DeliveryChangeList

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(body_size=OctetLength("body"))

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.reprocess_delivery")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        ident = parse_uuid(term)
        if ident is None:
            # Arbitrary text never scans the table (about 1.5 KB a row with its body): a
            # svix id is matched exactly (unique index), a type by any part of its name
            # among the few types seen (then the event_type index).
            types = [
                t for t in distinct_values(Delivery, "event_type") if t and term.casefold() in t.casefold()
            ]
            return queryset.filter(Q(svix_id=term) | Q(event_type__in=types)), False
        # A UUID: the deliveries projected for that test / investigation / monitor,
        # found through the history rows' indexes, plus the deliveries that were not
        # projected (invalid, failed, ignored: few, and `outcome` is indexed) whose
        # body contains it.
        ids: set[int] = set()
        for model in (StatusChange, MonitorEvent, Investigation, QuarantineChange):
            ids.update(model.objects.filter(test_case_id=ident).values_list("delivery_id", flat=True))
        ids.update(Investigation.objects.filter(pk=ident).values_list("delivery_id", flat=True))
        ids.update(MonitorEvent.objects.filter(monitor_id=ident).values_list("delivery_id", flat=True))
        # `outcome IN (...)`, not `outcome <> 'processed'`: only an IN can use the index.
        unprojected = [o for o in Delivery.Outcome.values if o != Delivery.Outcome.PROCESSED]
        not_projected = Q(outcome__in=unprojected) & (
            Q(body__contains=str(ident)) | Q(body__contains=str(ident).upper())
        )
        return queryset.filter(Q(pk__in=ids) | Q(svix_id=term) | not_projected), False

    # ---- columns

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Deliveries", **(extra_context or {})})

    @admin.display(description="Outcome", ordering="outcome")
    def outcome_column(self, obj):
        return badge(obj.get_outcome_display().split(" (")[0], OUTCOME_COLOURS.get(obj.outcome, "#868e96"))

    @admin.display(description="Svix id", ordering="svix_id")
    def svix_column(self, obj):
        return format_html(
            '<span style="display:inline-block;max-width:15em;overflow:hidden;text-overflow:ellipsis;'
            'white-space:nowrap;vertical-align:bottom" title="{}">{}</span>',
            obj.svix_id,
            obj.svix_id,
        )

    @admin.display(description="Event time", ordering="occurred_at")
    def occurred_column(self, obj):
        return _when(obj.occurred_at)

    @admin.display(description="Received", ordering="received_at")
    def received_column(self, obj):
        return _when(obj.received_at)

    @admin.display(description="Size", ordering="body_size")
    def size_column(self, obj):
        size = getattr(obj, "body_size", None)
        return filesizeformat(obj.size if size is None else size)

    @admin.display(description="Error")
    def error_display(self, obj):
        return _pre(obj.error) if obj.error else EMPTY

    @admin.display(description="Headers")
    def headers_display(self, obj):
        # Only the headers that ingest stores (svix-*/webhook-*, content type): never
        # anything else that could have been put in the column.
        headers = obj.headers if isinstance(obj.headers, dict) else {}
        rows = [(key, headers[key]) for key in STORED_HEADERS if key in headers]
        if not rows:
            return EMPTY
        return format_html(
            '<table style="margin:0">{}</table>',
            format_html_join("", "<tr><th>{}</th><td><code>{}</code></td></tr>", rows),
        )

    @admin.display(description="Body")
    def body_display(self, obj):
        return _pre(pretty_body(obj.body))

    @admin.display(description="Projected as")
    def projection(self, obj):
        links = []
        for relation in ("status_change", "monitor_event", "investigation", "quarantine_change"):
            try:
                row = getattr(obj, relation)
            except ObjectDoesNotExist:
                continue
            links.append(format_html("{} of test {}", _admin_link(row), _admin_link(row.test_case)))
        return format_html_join("", "<div>{}</div>", ((link,) for link in links)) if links else EMPTY

    # ---- actions

    @admin.action(description="Reprocess selected deliveries", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        """Parse and project again, with the code path of `manage.py reprocess_deliveries`
        (events.rebuild.replay). In the order received, like the command."""
        pks = list(queryset.order_by("received_at", "id").values_list("pk", flat=True))
        outcomes: dict[str, int] = {}
        content_type = ContentType.objects.get_for_model(Delivery)
        for start in range(0, len(pks), UPDATE_CHUNK):
            chunk = pks[start : start + UPDATE_CHUNK]
            for outcome, n in replay(
                Delivery.objects.filter(pk__in=chunk).order_by("received_at", "id")
            ).items():
                outcomes[str(outcome)] = outcomes.get(str(outcome), 0) + n
            now = timezone.now()
            LogEntry.objects.bulk_create(
                LogEntry(
                    action_time=now,
                    user_id=request.user.pk,
                    content_type=content_type,
                    object_id=str(pk),
                    object_repr=f"{svix_id} ({event_type or 'no type'})"[:200],
                    action_flag=CHANGE,
                    change_message=f"Reprocessed: now {outcome}.",
                )
                for pk, svix_id, event_type, outcome in Delivery.objects.filter(pk__in=chunk).values_list(
                    "pk", "svix_id", "event_type", "outcome"
                )
            )
        summary = ", ".join(f"{n} now {o}" for o, n in sorted(outcomes.items()))
        failed = outcomes.get(Delivery.Outcome.FAILED.value, 0)
        self.message_user(
            request,
            f"Reprocessed {_plural(len(pks), 'delivery', 'deliveries')}: {summary}."
            + (" Some still fail to apply: see their error." if failed else ""),
            messages.WARNING if failed else messages.SUCCESS,
        )


# ---------------------------------------------------------------- other models: read-only


@admin.register(Repository)
class RepositoryAdmin(ReadOnlyAdmin):
    list_display = ("name", "url", "trunk_id", "tests", "flaky", "broken")
    fields = readonly_fields = list_display
    search_fields = ("name", "html_url")
    uuid_search_fields = ("trunk_id",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                # Correlated counts (index-only scans of testcase_repository_status_idx),
                # not a join grouped over every test.
                n_tests=related_count(TestCase, "repository"),
                n_flaky=related_count(TestCase, "repository", status=Status.FLAKY),
                n_broken=related_count(TestCase, "repository", status=Status.BROKEN),
            )
        )

    @admin.display(description="URL", ordering="html_url")
    def url(self, obj):
        safe = safe_http_url(obj.html_url)
        return (
            format_html('<a href="{}" rel="noopener noreferrer">{}</a>', safe, safe) if safe else obj.html_url
        )

    def _tests_link(self, obj, count, **params):
        query = urlencode({"repository__id__exact": obj.pk, **params})
        return format_html(
            '<a href="{}?{}">{}</a>', reverse("admin:events_testcase_changelist"), query, count
        )

    @admin.display(description="Tests", ordering="n_tests")
    def tests(self, obj):
        return self._tests_link(obj, obj.n_tests)

    @admin.display(description="Flaky", ordering="n_flaky")
    def flaky(self, obj):
        return self._tests_link(obj, obj.n_flaky, status__exact=Status.FLAKY)

    @admin.display(description="Broken", ordering="n_broken")
    def broken(self, obj):
        return self._tests_link(obj, obj.n_broken, status__exact=Status.BROKEN)


@admin.register(Owner)
class OwnerAdmin(ReadOnlyAdmin):
    list_display = ("name", "key", "first_seen_at", "tests")
    search_fields = ("key", "name")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_tests=related_count(TestCaseOwner, "owner"))

    @admin.display(description="Tests", ordering="n_tests")
    def tests(self, obj):
        url = reverse("admin:events_testcase_changelist")
        return format_html('<a href="{}?{}">{}</a>', url, urlencode({"owner": obj.key}), obj.n_tests)


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


class HistoryAdmin(ReadOnlyAdmin):
    """Common to the per-test history rows: newest first, test and delivery joined."""

    search_fields = ("test_case__name",)
    uuid_search_fields = ("test_case_id",)
    list_select_related = ("test_case",)

    @admin.display(description="Test", ordering="test_case__name")
    def test(self, obj):
        return _admin_link(obj.test_case)

    @admin.display(description="Delivery")
    def delivery_link(self, obj):
        url = reverse("admin:events_delivery_change", args=[obj.delivery_id])
        return format_html('<a href="{}">#{}</a>', url, obj.delivery_id)


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
        return _pre(pretty_json(obj.evidence)) if obj.evidence is not None else EMPTY


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
        return f"{obj.confidence:.2f} ({confidence_band(obj.confidence)})"

    @admin.display(description="Facts", ordering="n_facts")
    def facts(self, obj):
        return obj.n_facts

    @admin.display(description="Summary")
    def summary_excerpt(self, obj):
        return truncatechars(obj.markdown_summary, 120)

    # Markdown from the payload is untrusted: shown as escaped source text.
    @admin.display(description="Summary (Markdown source)")
    def summary_display(self, obj):
        return _pre(obj.markdown_summary) if obj.markdown_summary else EMPTY

    @admin.display(description="Failure message")
    def failure_message_display(self, obj):
        return _pre(obj.failure_message) if obj.failure_message else EMPTY


class FactTypeValueFilter(DistinctValueFilter):
    title = "fact type"
    parameter_name = field_name = "fact_type"


@admin.register(InvestigationFact)
class InvestigationFactAdmin(ReadOnlyAdmin):
    list_display = ("investigation", "position", "fact_type", "confidence")
    list_filter = (FactTypeValueFilter,)
    list_select_related = ("investigation",)
    search_fields = ("fact_type",)
    uuid_search_fields = ("investigation_id",)


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


@admin.register(MonitorState)
class MonitorStateAdmin(HistoryAdmin):
    list_display = ("monitor", "test", "status", "since")
    list_filter = ("status", MonitorTypeFilter)
    list_select_related = ("test_case", "monitor")
    uuid_search_fields = ("test_case_id", "monitor_id")
    ordering = ("-since", "-id")
