"""Filters of the triage history (/api/v1/triage-events/): by test, author, origin, time."""

from __future__ import annotations

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError

from events.models import TriageEvent

from .filters import _DIGITS, MAX_BIGINT, DocumentedFilter, MomentFilter, StrictFilterSet


class UserIdField(forms.Field):
    """A user id (a positive whole number that fits a bigint; it need not exist)."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip()
        if not _DIGITS.fullmatch(text) or not 0 < int(text) <= MAX_BIGINT:
            raise ValidationError("Enter a user id (got %(value)r).", code="invalid", params={"value": value})
        return int(text)


class UserIdFilter(DocumentedFilter):
    field_class = UserIdField
    schema = {"type": "integer", "minimum": 1}


class TriageEventFilterSet(StrictFilterSet):
    """The triage history: by test, author, origin and time."""

    test_case = filters.UUIDFilter(field_name="test_case_id", help_text="Trunk's test case id.")
    by = UserIdFilter(field_name="by_id", help_text="User id of the author.")
    via = filters.CharFilter(help_text="Where it was made: `dashboard`, `API`, `admin`, ...")
    since = MomentFilter(
        field_name="at", help_text="Made at or after this (ISO 8601 date-time or date, UTC)."
    )
    until = MomentFilter(
        field_name="at",
        end_of_day=True,
        help_text="Made at or before this (a date includes that whole UTC day).",
    )

    ranges: tuple[tuple[str, str], ...] = (("since", "until"),)

    class Meta:
        model = TriageEvent
        fields: list[str] = []
