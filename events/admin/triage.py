"""flakyboard's own triage data in the admin: the triage history (read-only: the triage
service writes it), with an inline on each test, and the owners' targets (editable by
administrators: triagers only view them, migration 0007)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.formats import date_format

from ..metrics import NO_OWNER, TARGET_MAX_DAYS, default_targets
from ..models import Owner, OwnerTarget, TriageEvent
from .base import CappedInlineFormSet, ReadOnlyAdmin, ReadOnlyInline
from .helpers import admin_link


@admin.register(TriageEvent)
class TriageEventAdmin(ReadOnlyAdmin):
    """Who triaged which test when, and what changed: newest first."""

    list_display = ("at", "test", "by", "via", "message")
    list_filter = ("via", ("by", admin.RelatedOnlyFieldListFilter), ("at", admin.DateFieldListFilter))
    list_select_related = ("test_case", "by")
    search_fields = ("test_case__name",)
    uuid_search_fields = ("test_case_id",)
    search_help_text = "Test name, or a test id (UUID)."

    @admin.display(description="Test", ordering="test_case__name")
    def test(self, obj):
        return admin_link(obj.test_case)


class TriageEventInline(ReadOnlyInline):
    """The test's latest triage actions on its change page (the capped template links to
    the full, filtered list)."""

    model = TriageEvent
    formset = CappedInlineFormSet
    template = "admin/events/includes/capped_tabular.html"
    verbose_name_plural = "triage history"
    ordering = ("-at", "-id")
    show_change_link = False
    fields = readonly_fields = ("when", "by", "via", "message")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")

    @admin.display(description="At")
    def when(self, obj):
        return admin_link(obj, date_format(timezone.localtime(obj.at), "DATETIME_FORMAT"))


class OwnerTargetForm(forms.ModelForm):
    """Pick a known owner or type one (stored as its case-insensitive key; "(no owner)"
    for tests without owners); days of at least 1, or empty for the default."""

    owner = forms.CharField(
        max_length=255,
        help_text=f'A codeowner as Trunk sends it (any case, e.g. "@acme/web"), or "{NO_OWNER}" '
        "for tests without owners.",
        widget=forms.TextInput(attrs={"list": "known-owners", "autocomplete": "off"}),
    )

    class Meta:
        model = OwnerTarget
        fields = ("triage_days", "fix_days")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            key = self.instance.owner_key
            self.initial["owner"] = (
                Owner.objects.filter(key=key).values_list("name", flat=True).first() or key or NO_OWNER
            )
        default = default_targets()
        for name, days in (("triage_days", default.triage_days), ("fix_days", default.fix_days)):
            field = self.fields[name]
            field.help_text = f"Whole days, from 1 to {TARGET_MAX_DAYS}. Empty: the default ({days} days)."
            assert isinstance(field, forms.IntegerField)
            field.min_value = 1
            field.max_value = TARGET_MAX_DAYS
            field.widget.attrs.update(min=1, max=TARGET_MAX_DAYS)
            field.validators.extend([_at_least_one, _at_most_the_longest])
        self.known_owners = list(Owner.objects.order_by("key").values_list("name", flat=True)[:500])

    def clean_owner(self) -> str:
        value = self.cleaned_data["owner"].strip()
        if not value:
            raise forms.ValidationError("Enter an owner.")
        key = "" if value.casefold() == NO_OWNER.casefold() else value.casefold()
        longest = OwnerTarget._meta.get_field("owner_key").max_length or 255
        if len(key) > longest:  # "ß" folds to "ss": a 255-character name can double
            raise forms.ValidationError(
                f"This owner is too long: its case-insensitive form has {len(key)} characters "
                f"(at most {longest})."
            )
        clash = OwnerTarget.objects.filter(owner_key=key).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(f"{value} already has targets: change that entry instead.")
        # An owner flakyboard has never seen (a typo) would match no test: its targets
        # would silently do nothing. "(no owner)" is always there; an entry kept under its
        # own key stays editable (its owner may be gone since, e.g. during a rebuild).
        kept = self.instance.pk is not None and key == self.instance.owner_key
        known = key == "" or kept or Owner.objects.filter(key=key).exists()
        if not known:
            raise forms.ValidationError(
                f'No owner "{value}" is known yet: owners come from the tests\' CODEOWNERS in '
                "Trunk's webhooks."
            )
        return key

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and data.get("triage_days") is None and data.get("fix_days") is None:
            raise forms.ValidationError(
                "Set a triage or a fix target (or both); empty both means the defaults."
            )
        return data

    def save(self, commit: bool = True) -> OwnerTarget:
        self.instance.owner_key = self.cleaned_data["owner"]
        return super().save(commit=commit)


def _at_least_one(value: int | None) -> None:
    if value is not None and value < 1:
        raise forms.ValidationError("A target is at least 1 day.")


def _at_most_the_longest(value: int | None) -> None:
    if value is not None and value > TARGET_MAX_DAYS:
        raise forms.ValidationError(f"A target is at most {TARGET_MAX_DAYS} days (ten years).")


@admin.register(OwnerTarget)
class OwnerTargetAdmin(admin.ModelAdmin):
    """An owner's own targets (override FLAKYBOARD_TARGET_TRIAGE_DAYS / _FIX_DAYS)."""

    form = OwnerTargetForm
    list_display = ("owner_display", "triage_display", "fix_display")
    search_fields = ("owner_key",)
    fields = ("owner", "triage_days", "fix_days")
    change_form_template = "admin/events/ownertarget/change_form.html"

    @admin.display(description="Owner", ordering="owner_key")
    def owner_display(self, obj):
        return obj.owner_key or NO_OWNER

    @admin.display(description="Triage within (days)")
    def triage_display(self, obj):
        return obj.triage_days or f"{default_targets().triage_days} (default)"

    @admin.display(description="Fix within (days)")
    def fix_display(self, obj):
        return obj.fix_days or f"{default_targets().fix_days} (default)"
