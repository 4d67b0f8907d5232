"""The delivery log: read-only, searchable by svix id, type or any id it projected, and
a "reprocess" action (dj-stripe's webhook admin)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from ..models import Delivery, Investigation, MonitorEvent, QuarantineChange, StatusChange
from ..orm import distinct_values
from ..projection.replay import replay
from ..receiver.receive import STORED_HEADERS
from ..untrusted import pretty_body
from .base import ReadOnlyAdmin
from .filters import EventTypeFilter
from .helpers import (
    EMPTY,
    UPDATE_CHUNK,
    OctetLength,
    admin_link,
    outcome_badge,
    parse_uuid,
    plural,
    pre,
    when,
)


class DeliveryChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        # The list never shows bodies (up to 1 MiB each): their size is computed in SQL.
        qs = super().get_queryset(request, exclude_parameters)
        return qs.defer("body", "headers", "error", "user_agent")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """The append-only delivery log. Nobody adds, edits or deletes a delivery here
    (superusers included); "reprocess" re-runs parsing and projection."""

    # What a phone shows first: which delivery, how it went, when it came.
    list_display = (
        "svix_column",
        "outcome_column",
        "received_column",
        "event_type",
        "occurred_column",
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
            {
                "fields": (
                    "occurred_at",
                    "received_at",
                    "processed_at",
                    "redeliveries",
                    "last_redelivered_at",
                    "pruned_at",
                )
            },
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
        "pruned_at",
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
        return outcome_badge(obj.outcome, obj.get_outcome_display().split(" (")[0])

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
        return when(obj.occurred_at)

    @admin.display(description="Received", ordering="received_at")
    def received_column(self, obj):
        return when(obj.received_at)

    @admin.display(description="Size", ordering="body_size")
    def size_column(self, obj):
        size = getattr(obj, "body_size", None)
        return filesizeformat(obj.size if size is None else size)

    @admin.display(description="Error")
    def error_display(self, obj):
        return pre(obj.error) if obj.error else EMPTY

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
        if obj.pruned_at:
            return f"Dropped by retention on {obj.pruned_at:%Y-%m-%d %H:%M} UTC: not replayable."
        return pre(pretty_body(obj.body))

    @admin.display(description="Projected as")
    def projection(self, obj):
        links = []
        for relation in ("status_change", "monitor_event", "investigation", "quarantine_change"):
            try:
                row = getattr(obj, relation)
            except ObjectDoesNotExist:
                continue
            links.append(format_html("{} of test {}", admin_link(row), admin_link(row.test_case)))
        return format_html_join("", "<div>{}</div>", ((link,) for link in links)) if links else EMPTY

    # ---- actions

    @admin.action(description="Reprocess selected deliveries", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        """Parse and project again, with the code path of `manage.py reprocess_deliveries`
        (events.projection.replay). In the order received, like the command."""
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
            f"Reprocessed {plural(len(pks), 'delivery', 'deliveries')}: {summary}."
            + (" Some still fail to apply: see their error." if failed else ""),
            messages.WARNING if failed else messages.SUCCESS,
        )
