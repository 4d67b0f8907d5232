"""GET forms: they validate query parameters; the dashboard falls back to defaults on
bad values (a shared link with a stale value still opens), the API answers 400."""

from dataclasses import dataclass

from django import forms
from django.http import HttpRequest

from events.models import Repository, Status, TestCase

from . import queries

PERIOD_CHOICES = [
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("all", "All time"),
]


class ScopeForm(forms.Form):
    """The period and repository selectors shared by every page (query string)."""

    period = forms.ChoiceField(choices=PERIOD_CHOICES, required=False)
    repository = forms.ModelChoiceField(
        queryset=Repository.objects.order_by("name"), required=False, empty_label="All repositories"
    )


@dataclass(frozen=True)
class Scope:
    form: ScopeForm
    period: queries.Period
    repository: Repository | None

    @property
    def repository_id(self) -> int | None:
        return self.repository.pk if self.repository else None

    @property
    def label(self) -> str:
        """"Last 30 days · acme/web": what the page's numbers cover."""
        period = dict(PERIOD_CHOICES)[self.period.name]
        return f"{period} · {self.repository}" if self.repository else period


def scope_from(request: HttpRequest) -> Scope:
    form = ScopeForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    period = queries.Period.parse(data.get("period") or None)
    # Show the effective values in the selectors, even when the URL had bad ones.
    form = ScopeForm(initial={"period": period.name, "repository": data.get("repository")}, data=None)
    return Scope(form=form, period=period, repository=data.get("repository"))


class TestFilterForm(forms.Form):
    """Filters of the tests page and its CSV; names are the API's too."""

    __test__ = False

    q = forms.CharField(
        required=False, label="Search", widget=forms.TextInput(attrs={"placeholder": "Name, class or file"})
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *Status.choices], required=False)
    owner = forms.CharField(required=False, label="Owner")
    quarantined = forms.NullBooleanField(
        required=False,
        widget=forms.Select(
            choices=[("", "Quarantined or not"), ("true", "Quarantined"), ("false", "Not quarantined")]
        ),
    )
    variant = forms.CharField(required=False)
    triage = forms.ChoiceField(choices=[("", "Any triage"), *TestCase.Triage.choices], required=False)
    sort = forms.ChoiceField(
        choices=[(s, s) for key in queries.SORTS for s in (key, f"-{key}")], required=False
    )

    def clean_status(self):
        return (self.cleaned_data.get("status") or "").upper()

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and data.get("status"):
            data = data.copy()
            data["status"] = data["status"].upper()  # status is case-insensitive
        super().__init__(data, *args, **kwargs)

    def filters(self) -> dict:
        """Keyword arguments for queries.filter_test_cases (invalid fields dropped)."""
        self.is_valid()
        data = {k: v for k, v in getattr(self, "cleaned_data", {}).items() if k not in self.errors}
        return {
            "status": data.get("status") or None,
            "owner": data.get("owner") or None,
            "quarantined": data.get("quarantined"),
            "variant": data.get("variant") or None,
            "triage": data.get("triage") or None,
            "q": (data.get("q") or "").strip() or None,
            "sort": data.get("sort") or None,
        }
