"""The subscription form (admin): a destination that is validated and never shown back,
owners and repositories one per line, triggers as checkboxes."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from .destinations import masked, validate_destination
from .models import TRIGGERS, Subscription

MAX_LINES = 200


def _lines(value: str, *, what: str) -> str:
    lines = [line.strip() for line in (value or "").splitlines() if line.strip()]
    if len(lines) > MAX_LINES:
        raise ValidationError(f"At most {MAX_LINES} {what}, one per line.")
    for line in lines:
        if len(line) > 255 or any(ch.isspace() for ch in line) and line.lower() != "(no owner)":
            raise ValidationError(f"One {what[:-1]} per line, without spaces: {line[:80]!r} is not one.")
    return "\n".join(lines)


class SubscriptionForm(forms.ModelForm):
    destination_url = forms.CharField(
        label="Destination",
        required=False,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "size": 80}),
        help_text="An apprise URL (slack://..., workflows://... for Teams, discord://..., json://host/path, "
        "mailto://... via SMTP) or mailto:team@example.com through flakyboard's own email "
        "settings. It holds secrets: it is never shown again after saving. Leave empty to keep "
        "the current one.",
    )
    triggers = forms.MultipleChoiceField(
        choices=list(TRIGGERS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="For real-time alerts. None ticked: every trigger.",
    )

    class Meta:
        model = Subscription
        fields = ("name", "enabled", "mode", "owners", "repositories", "triggers")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.destination:
            self.fields["destination_url"].help_text = (
                f"Now: {self.instance.destination_hint or masked(self.instance.destination)}. "
                + self.fields["destination_url"].help_text
            )

    def clean_owners(self) -> str:
        return _lines(self.cleaned_data.get("owners", ""), what="owners")

    def clean_repositories(self) -> str:
        return _lines(self.cleaned_data.get("repositories", ""), what="repositories")

    def clean_destination_url(self) -> str:
        url = (self.cleaned_data.get("destination_url") or "").strip()
        if not url:
            if not self.instance.destination:
                raise ValidationError("A destination is required.")
            return ""
        validate_destination(url)
        return url

    def save(self, commit: bool = True) -> Subscription:
        subscription = super().save(commit=False)
        url = self.cleaned_data.get("destination_url")
        if url:
            subscription.destination = url
            subscription.destination_hint = masked(url)[:300]
        if commit:
            subscription.save()
        return subscription
