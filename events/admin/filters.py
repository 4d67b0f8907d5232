"""List filters of the change lists.

Every filter is answered by an index (or a small table), and lists its choices without
scanning a big table (see events.orm.distinct_values).

The owner and confidence-band filters use the definitions of events.metrics.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Exists, OuterRef

from .. import metrics
from ..models import Investigation, InvestigationFact, Monitor, Owner, TestCaseOwner
from ..orm import distinct_values
from .helpers import NONE_VALUE, staff_users


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


class AssigneeFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        users = [(str(user.pk), str(user)) for user in staff_users() if user.pk != request.user.pk]
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


class FactTypeValueFilter(DistinctValueFilter):
    title = "fact type"
    parameter_name = field_name = "fact_type"


# ---------------------------------------------------------------- owners and confidence
# The definitions come from events.metrics (docs/metrics.md), as on the dashboard and in
# the API.


class OwnerFilter(admin.SimpleListFilter):
    """Tests of one owner, through the (owner, test_case) index of TestCaseOwner, or
    tests with no owner at all. Owners are compared by their case-insensitive key."""

    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        return [(NONE_VALUE, metrics.NO_OWNER), *Owner.objects.order_by("key").values_list("key", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value == NONE_VALUE:
            return queryset.filter(~Exists(TestCaseOwner.objects.filter(test_case=OuterRef("pk"))))
        links = TestCaseOwner.objects.filter(owner__key=value.casefold())
        return queryset.filter(pk__in=links.values("test_case_id"))


class ConfidenceBandFilter(admin.SimpleListFilter):
    """The confidence bands (events.metrics)."""

    title = "confidence"
    parameter_name = "band"

    def lookups(self, request, model_admin):
        return list(metrics.BAND_LABELS.items())

    def queryset(self, request, queryset):
        band = self.value()
        if band is None or band not in metrics.CONFIDENCE_BANDS:
            return queryset
        return queryset.filter(metrics.band_q(band))


band_label = metrics.band_of
