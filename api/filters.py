"""Query parameters of the list endpoints, validated strictly.

A bad value is a 400 naming the parameter (DjangoFilterBackend raises the form's errors),
never a silent fallback, a 500 or an empty list that hides the mistake: django-filter's
own BooleanFilter ignores `quarantined=maybe`, so booleans, choices, dates and ids use
the strict fields below.

The test filters go through `dashboard.selectors.tests.filter_test_cases`, the one implementation
shared with the dashboard's tests page and its CSV (TestCaseFilterSet.filter_queryset).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

import django_filters as filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django_filters import fields as filter_fields
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dashboard.selectors.common import owned_by
from dashboard.selectors.tests import SORTS, filter_test_cases
from events.metrics import BANDS_HELP, CONFIDENCE_BANDS, PERIODS, Period, band_q
from events.models import (
    Delivery,
    Investigation,
    InvestigationFact,
    Monitor,
    MonitorEvent,
    QuarantineChange,
    Repository,
    Status,
    StatusChange,
    TestCase,
)

_DIGITS = re.compile(r"[0-9]{1,18}", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
MAX_BIGINT = 2**63 - 1

REPOSITORY_SCHEMA = {
    "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "format": "uuid"}],
}
MOMENT_SCHEMA = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}],
}
SORT_CHOICES = [
    (f"{sign}{key}", "descending" if sign else "ascending") for key in SORTS for sign in ("", "-")
]


# ---------------------------------------------------------------- form fields


class StrictBooleanField(forms.Field):
    """true/false (also 1/0, yes/no, on/off), any case; anything else is an error."""

    TRUE = frozenset({"true", "1", "yes", "on"})
    FALSE = frozenset({"false", "0", "no", "off"})

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValidationError(
            "Must be true or false (got %(value)r).", code="invalid", params={"value": value}
        )


class CaseInsensitiveChoiceField(filter_fields.ChoiceField):
    """A choice compared case-insensitively, cleaned to its canonical spelling."""

    def _pairs(self) -> Iterable[tuple[Any, Any]]:
        # Read back, `choices` is django-filter's iterator of (key, label) pairs; the stubs
        # type the property with everything it accepts when set (mappings, callables).
        return cast("Iterable[tuple[Any, Any]]", self.choices)

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return ""
        canonical = {str(key).casefold(): str(key) for key, _label in self._pairs()}
        return canonical.get(value.strip().casefold(), value)

    def validate(self, value):
        super(forms.ChoiceField, self).validate(value)
        if value and not self.valid_value(value):
            allowed = ", ".join(str(key) for key, _label in self._pairs() if key != "")
            raise ValidationError(
                "Select a valid choice. %(value)s is not one of %(allowed)s.",
                code="invalid_choice",
                params={"value": value, "allowed": allowed},
            )


def repository_lookup(value: str) -> dict | None:
    """`{"pk": ...}` for an integer id, `{"trunk_id": ...}` for a Trunk UUID, else None."""
    value = value.strip()
    if _DIGITS.fullmatch(value):
        number = int(value)
        return {"pk": number} if 0 < number <= MAX_BIGINT else {"pk": 0}
    try:
        return {"trunk_id": uuid.UUID(value)}
    except ValueError:
        return None


class RepositoryField(forms.Field):
    """A repository's integer id or its Trunk UUID; it must exist. Cleans to the pk."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        lookup = repository_lookup(str(value))
        if lookup is None:
            raise ValidationError(
                "Enter a repository id (an integer) or a Trunk repository UUID (got %(value)r).",
                code="invalid",
                params={"value": value},
            )
        pk = Repository.objects.filter(**lookup).values_list("pk", flat=True).first()
        if pk is None:
            raise ValidationError(
                "No repository with id %(value)s.", code="does_not_exist", params={"value": value}
            )
        return pk


class MomentField(forms.Field):
    """An ISO 8601 date-time (a time zone offset or Z; without one it is UTC) or a date.

    A date means the start of that UTC day, or its end when `end_of_day` (so that
    `until=2026-05-03` includes the whole of May 3rd).
    """

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip()
        message = (
            "Enter an ISO 8601 date-time with time zone (2026-05-04T09:12:33Z) or a date (got %(value)r)."
        )
        try:
            if _DATE.fullmatch(text):
                day = datetime.fromisoformat(text).date()
                start = datetime.combine(day, time.min, tzinfo=UTC)
                if not self.end_of_day:
                    return start
                try:
                    return start + timedelta(days=1) - timedelta(microseconds=1)
                except OverflowError:
                    return datetime.max.replace(tzinfo=UTC)
            moment = datetime.fromisoformat(text.upper() if "t" in text else text)
            if timezone.is_naive(moment):
                return moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
        except (ValueError, OverflowError):
            raise ValidationError(message, code="invalid", params={"value": value}) from None


class AssigneeField(forms.Field):
    """A user id, `me` (the requesting user) or `none` (unassigned)."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().casefold()
        if text == "none":
            return "none"
        if text == "me":
            return "me"
        if not _DIGITS.fullmatch(text) or not 0 < int(text) <= MAX_BIGINT:
            raise ValidationError(
                "Enter a user id, `me` or `none` (got %(value)r).", code="invalid", params={"value": value}
            )
        if not get_user_model().objects.filter(pk=int(text)).exists():
            raise ValidationError("No user with id %(value)s.", code="does_not_exist", params={"value": text})
        return int(text)


# ---------------------------------------------------------------- filters


class StrictBooleanFilter(filters.BooleanFilter):
    # The stubs pin a BooleanFilter to NullBooleanField; django-filter takes any form field
    # (a BooleanFilter, not a plain Filter, so that the schema says boolean).
    field_class = StrictBooleanField  # type: ignore[assignment]


class CaseInsensitiveChoiceFilter(filters.ChoiceFilter):
    field_class = CaseInsensitiveChoiceField


class DocumentedFilter(filters.Filter):
    """A filter whose OpenAPI schema is `schema` plus its help text as description
    (drf-spectacular drops the help text of a filter with an overridden schema)."""

    schema: dict = {"type": "string"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        help_text = kwargs.get("help_text")
        # drf-spectacular reads the schema off the filter instance; its stub expects a callable.
        schema = {**self.schema, "description": help_text} if help_text else self.schema
        extend_schema_field(schema)(self)  # type: ignore[type-var]


class RepositoryFilter(DocumentedFilter):
    field_class = RepositoryField
    schema = REPOSITORY_SCHEMA


class MomentFilter(DocumentedFilter):
    field_class = MomentField
    schema = MOMENT_SCHEMA

    def __init__(self, *args, end_of_day: bool = False, **kwargs):
        kwargs.setdefault("lookup_expr", "lte" if end_of_day else "gte")
        super().__init__(*args, end_of_day=end_of_day, **kwargs)


class PeriodFilter(CaseInsensitiveChoiceFilter):
    """`period` = 7d, 30d, 90d or all: event time within the last N days up to now."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [(name, name) for name in PERIODS])
        super().__init__(*args, **kwargs)
        # Documented as its own enum, not as the date-time field it filters on.
        schema = {"type": "string", "enum": list(PERIODS)}
        extend_schema_field({**schema, "description": kwargs.get("help_text", "")})(self)  # type: ignore[type-var]

    def filter(self, qs: QuerySet, value):
        if not value:
            return qs
        assert self.field_name is not None  # the FilterSet names each filter it declares
        return qs.filter(Period(name=value, now=timezone.now()).filter(self.field_name))


class OwnerFilter(filters.CharFilter):
    """Tests owned by a codeowner (any case), or `none` for tests without owners."""

    def filter(self, qs: QuerySet, value):
        if not value:
            return qs
        assert self.field_name is not None  # the FilterSet names each filter it declares
        return qs.filter(owned_by(value, self.field_name))


class AssigneeFilter(DocumentedFilter):
    field_class = AssigneeField

    def filter(self, qs: QuerySet, value):
        if value is None:
            return qs
        if value == "none":
            return qs.filter(assignee__isnull=True)
        if value == "me":
            # `parent` (the FilterSet) is set by django-filter; its stubs do not declare it.
            request = getattr(self.parent, "request", None)  # type: ignore[attr-defined]
            user = getattr(request, "user", None)
            if not user or not user.is_authenticated:
                raise serializers.ValidationError({"assignee": ["`me` needs an authenticated user."]})
            return qs.filter(assignee=user)
        return qs.filter(assignee=value)


OWNER_HELP = "Codeowner, case-insensitive (`@acme/web`), or `none` for tests without owners."
REPOSITORY_HELP = "Repository: its integer `id` or its Trunk UUID (`trunk_id`). It must exist."
PERIOD_HELP = "Only events whose event time is within the last 7, 30 or 90 days (`all`: no limit)."


class StrictFilterSet(filters.FilterSet):
    """A FilterSet whose (lower, upper) parameter pairs must not be inverted."""

    ranges: tuple[tuple[str, str], ...] = ()

    def is_valid(self) -> bool:
        if not super().is_valid():
            return False
        data = self.form.cleaned_data
        for lower, upper in self.ranges:
            if data.get(lower) is not None and data.get(upper) is not None and data[lower] > data[upper]:
                self.form.add_error(upper, f"Must not be before `{lower}`.")
        return self.form.is_valid()


# ---------------------------------------------------------------- test cases


class TestCaseFilterSet(StrictFilterSet):
    """The dashboard's test filters plus assignee and changed since/until."""

    __test__ = False

    repository = RepositoryFilter(help_text=REPOSITORY_HELP)
    status = CaseInsensitiveChoiceFilter(
        choices=Status.choices, help_text="Current status, case-insensitive."
    )
    owner = filters.CharFilter(help_text=OWNER_HELP)
    quarantined = StrictBooleanFilter(help_text="Quarantined by Trunk now: true or false.")
    variant = filters.CharFilter(help_text="Exact variant name (empty: every variant).")
    triage = CaseInsensitiveChoiceFilter(choices=TestCase.Triage.choices, help_text="Triage state.")
    assignee = AssigneeFilter(
        help_text="Assigned user: a user id, `me` (the requesting user) or `none` (unassigned)."
    )
    changed_since = MomentFilter(
        field_name="status_since",
        help_text="Status set at or after this time (ISO 8601 date-time or date, UTC).",
    )
    changed_until = MomentFilter(
        field_name="status_since",
        end_of_day=True,
        help_text="Status set at or before this time (a date includes that whole UTC day).",
    )
    q = filters.CharFilter(help_text="Text search in name, classname and file path (case-insensitive).")
    sort = CaseInsensitiveChoiceFilter(
        choices=SORT_CHOICES,
        help_text="Order by name, status (severity), status_since, failure_rate, prs_impacted or "
        "impact (the impact score: `-impact` lists what to fix first); `-` in front for "
        "descending; ties by name, then id. Default `-status_since`.",
    )
    ordering = CaseInsensitiveChoiceFilter(
        choices=SORT_CHOICES, help_text="Same as `sort` (DRF's name for it)."
    )

    ranges: tuple[tuple[str, str], ...] = (("changed_since", "changed_until"),)

    def is_valid(self) -> bool:
        if not super().is_valid():
            return False
        data = self.form.cleaned_data
        if data.get("sort") and data.get("ordering") and data["sort"] != data["ordering"]:
            self.form.add_error("ordering", "Give `sort` or `ordering`, not two different orders.")
        return self.form.is_valid()

    def filter_queryset(self, queryset: QuerySet[TestCase]) -> QuerySet[TestCase]:
        data = self.form.cleaned_data
        tests = filter_test_cases(
            queryset,
            repository=data.get("repository"),
            status=data.get("status") or None,
            owner=data.get("owner") or None,
            quarantined=data.get("quarantined"),
            variant=data.get("variant") or None,
            triage=data.get("triage") or None,
            q=data.get("q") or None,
            sort=data.get("sort") or data.get("ordering") or None,
        )
        for name in ("assignee", "changed_since", "changed_until"):
            tests = self.filters[name].filter(tests, data.get(name))
        return tests


# ---------------------------------------------------------------- events


class EventFilterSet(StrictFilterSet):
    """Filters every event list shares: its test, the test's repository and owner, time."""

    test_case = filters.UUIDFilter(field_name="test_case_id", help_text="Trunk's test case id.")
    repository = RepositoryFilter(field_name="test_case__repository", help_text=REPOSITORY_HELP)
    owner = OwnerFilter(field_name="test_case", help_text=OWNER_HELP)
    since = MomentFilter(
        field_name="occurred_at", help_text="Event time at or after this (ISO 8601 date-time or date, UTC)."
    )
    until = MomentFilter(
        field_name="occurred_at",
        end_of_day=True,
        help_text="Event time at or before this (a date includes that whole UTC day).",
    )
    period = PeriodFilter(field_name="occurred_at", help_text=PERIOD_HELP)

    ranges: tuple[tuple[str, str], ...] = (("since", "until"),)


class StatusChangeFilterSet(EventFilterSet):
    status = CaseInsensitiveChoiceFilter(
        field_name="new_status", choices=Status.choices, help_text="New status, case-insensitive."
    )
    previous_status = CaseInsensitiveChoiceFilter(
        choices=Status.choices, help_text="Previous status, case-insensitive."
    )
    monitor = filters.UUIDFilter(field_name="monitor_id", help_text="Id of the monitor that triggered it.")
    monitor_type = filters.CharFilter(help_text="Type of the monitor that triggered it (`pass_on_retry`).")

    class Meta:
        model = StatusChange
        fields: list[str] = []


class MonitorEventFilterSet(EventFilterSet):
    monitor = filters.UUIDFilter(field_name="monitor_id", help_text="Trunk's monitor id.")
    monitor_type = filters.CharFilter(field_name="monitor__type", help_text="Monitor type (`failure_rate`).")
    status = CaseInsensitiveChoiceFilter(
        choices=MonitorEvent.MonitorStatus.choices, help_text="`active` or `resolved`."
    )

    class Meta:
        model = MonitorEvent
        fields: list[str] = []


class InvestigationFilterSet(EventFilterSet):
    confidence_min = filters.NumberFilter(
        field_name="confidence", lookup_expr="gte", help_text="Overall confidence at least this (0 to 1)."
    )
    confidence_max = filters.NumberFilter(
        field_name="confidence", lookup_expr="lte", help_text="Overall confidence at most this (0 to 1)."
    )
    band = CaseInsensitiveChoiceFilter(
        choices=[(band, band) for band in CONFIDENCE_BANDS],
        help_text=f"Confidence band: {BANDS_HELP}.",
        method="filter_band",
    )
    fact_type = filters.CharFilter(
        help_text="Investigations with at least one fact of this type (`GIT_BLAME`), case-insensitive.",
        method="filter_fact_type",
    )

    ranges: tuple[tuple[str, str], ...] = (("since", "until"), ("confidence_min", "confidence_max"))

    class Meta:
        model = Investigation
        fields: list[str] = []

    def filter_band(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(band_q(value)) if value else qs

    def filter_fact_type(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return qs
        facts = InvestigationFact.objects.filter(investigation=OuterRef("pk"), fact_type__iexact=value)
        return qs.filter(Exists(facts))


class QuarantineChangeFilterSet(EventFilterSet):
    updated_quarantining_setting = filters.CharFilter(
        field_name="updated_setting", help_text="New setting (`ALWAYS_QUARANTINE`, ...)."
    )

    class Meta:
        model = QuarantineChange
        fields: list[str] = []


class DeliveryFilterSet(StrictFilterSet):
    outcome = CaseInsensitiveChoiceFilter(choices=Delivery.Outcome.choices, help_text="Processing outcome.")
    type = filters.CharFilter(
        field_name="event_type", help_text="Event type (`v2.test_case.status_changed`)."
    )
    svix_id = filters.CharFilter(help_text="Svix message id (`msg_...`).")
    since = MomentFilter(field_name="received_at", help_text="Received at or after this (ISO 8601).")
    until = MomentFilter(
        field_name="received_at", end_of_day=True, help_text="Received at or before this (ISO 8601)."
    )

    ranges: tuple[tuple[str, str], ...] = (("since", "until"),)

    class Meta:
        model = Delivery
        fields: list[str] = []


class MonitorFilterSet(StrictFilterSet):
    type = filters.CharFilter(help_text="Monitor type (`pass_on_retry`, `failure_rate`, ...).")

    class Meta:
        model = Monitor
        fields: list[str] = []
