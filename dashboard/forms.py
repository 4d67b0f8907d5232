"""GET forms: they validate query parameters; the dashboard falls back to defaults on
bad values (a shared link with a stale value still opens), the API answers 400."""

from dataclasses import dataclass

from django import forms
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from events.models import Owner, Repository, Status, TestCase

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


def scope_from(request: HttpRequest) -> Scope:
    form = ScopeForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    period = queries.Period.parse(data.get("period") or None)
    # Show the effective values in the selectors, even when the URL had bad ones.
    form = ScopeForm(initial={"period": period.name, "repository": data.get("repository")}, data=None)
    return Scope(form=form, period=period, repository=data.get("repository"))


class TestFilterForm(forms.Form):
    """Filters of the tests page and its CSV; names are the API's too.

    Owner and variant are selects of the known values (one query each, when the form is
    built). Values arrive in any case where case does not matter (`status`, `owner`,
    `quarantined`) and are normalised before validation, so a shared link written by
    hand still works; an unknown value is dropped rather than answered with an error.
    """

    __test__ = False

    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.SearchInput(attrs={"placeholder": "Name, class or file"}),
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *Status.choices], required=False)
    owner = forms.ChoiceField(required=False, label="Owner")
    quarantined = forms.NullBooleanField(
        required=False,
        widget=forms.Select(choices=[("", "Any"), ("true", "Quarantined"), ("false", "Not quarantined")]),
    )
    variant = forms.ChoiceField(required=False)
    triage = forms.ChoiceField(choices=[("", "Any triage"), *TestCase.Triage.choices], required=False)
    sort = forms.ChoiceField(
        choices=[(s, s) for key in queries.SORTS for s in (key, f"-{key}")], required=False
    )

    # How each case-insensitive parameter is normalised before validation.
    NORMALISE = {"status": str.upper, "owner": str.casefold, "quarantined": str.lower}

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and any(data.get(k) for k in self.NORMALISE):
            data = data.copy()
            for key, normalise in self.NORMALISE.items():
                if data.get(key):
                    data[key] = normalise(data[key])
        super().__init__(data, *args, **kwargs)
        owners = Owner.objects.order_by("key").values_list("key", "name")
        self.fields["owner"].choices = [
            ("", "Any owner"),
            (queries.NO_OWNER_PARAM, queries.NO_OWNER),
            *owners,
        ]
        variants = (
            TestCase.objects.exclude(variant="")
            .order_by("variant")
            .values_list("variant", flat=True)
            .distinct()
        )
        self.fields["variant"].choices = [("", "Any variant"), *((v, v) for v in variants)]

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


class TriageForm(forms.ModelForm):
    """flakyboard's own triage data on a test: state, assignee and a note."""

    class Meta:
        model = TestCase
        fields = ["triage_state", "assignee", "triage_note"]
        labels = {"triage_state": "State", "triage_note": "Note"}
        widgets = {
            "triage_note": forms.Textarea(attrs={"rows": 3, "placeholder": "What is known, what is next"})
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        assignee = self.fields["assignee"]
        assignee.queryset = get_user_model().objects.filter(is_active=True).order_by("username")
        assignee.empty_label = "Unassigned"
