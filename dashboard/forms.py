"""GET forms: they validate query parameters; the dashboard falls back to defaults on
bad values (a shared link with a stale value still opens), the API answers 400."""

from dataclasses import dataclass
from functools import cache
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django import forms
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from events.metrics import BAND_LABELS, DEFAULT_PERIOD, NO_OWNER, PERIOD_LABELS, Period
from events.models import Delivery, Owner, Repository, Status, TestCase, Verdict
from events.orm import distinct_values

from .selectors import deliveries, investigations, quarantine
from .selectors.common import NO_OWNER_PARAM
from .selectors.tests import SORTS

PERIOD_CHOICES = list(PERIOD_LABELS.items())


_F = TypeVar("_F", bound=forms.Field)


def _field_of(form: forms.BaseForm, name: str, kind: type[_F]) -> _F:
    """The form's field `name`, checked to be a `kind` (to set its choices or queryset)."""
    field = form.fields[name]
    if not isinstance(field, kind):
        raise TypeError(f"{type(form).__name__}.{name} is not a {kind.__name__}")
    return field


class ScopeForm(forms.Form):
    """The period and repository selectors shared by every page (query string)."""

    period = forms.ChoiceField(choices=PERIOD_CHOICES, required=False)
    repository = forms.ModelChoiceField(
        queryset=Repository.objects.order_by("name"), required=False, empty_label="All repositories"
    )


@dataclass(frozen=True)
class Scope:
    form: ScopeForm
    period: Period
    repository: Repository | None
    # Whether the period changes a figure of the page: if not, the page shows no period
    # selector, but its links still carry the period (the scope follows to the next page).
    period_applies: bool = True

    @property
    def repository_id(self) -> int | None:
        return self.repository.pk if self.repository else None

    @property
    def period_label(self) -> str:
        """ "Last 30 days", "All time"."""
        return dict(PERIOD_CHOICES)[self.period.name]

    @property
    def label(self) -> str:
        """ "Last 30 days · acme/web": what the page's numbers cover."""
        return f"{self.period_label} · {self.repository}" if self.repository else self.period_label

    @property
    def params(self) -> dict[str, object]:
        """The scope as link parameters, for `scoped_url` (the default period left out,
        as a link without it means it)."""
        period = None if self.period.name == DEFAULT_PERIOD else self.period.name
        return {"period": period, "repository": self.repository_id}

    def url(self, url: str) -> str:
        """`url` keeping this scope (see `scoped_url`)."""
        return scoped_url(url, self.params)

    @property
    def query(self) -> str:
        """The scope as query parameters ("period=7d&repository=3"), for links that keep it."""
        params = {"period": self.period.name} | (
            {"repository": self.repository.pk} if self.repository else {}
        )
        return urlencode(params)


def scope_from(request: HttpRequest, *, period_applies: bool = True) -> Scope:
    """The page's scope from its query string; `period_applies=False` for a page whose
    figures do not depend on the period (it shows no period selector)."""
    form = ScopeForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    period = Period.parse(data.get("period") or None)
    # Show the effective values in the selectors, even when the URL had bad ones.
    form = ScopeForm(initial={"period": period.name, "repository": data.get("repository")}, data=None)
    return Scope(form=form, period=period, repository=data.get("repository"), period_applies=period_applies)


SCOPE_KEYS = ("period", "repository")


def scoped_url(url: str, scope: dict[str, object], **filters: object) -> str:
    """`url` with the scope's parameters (`{"period": "7d", "repository": 3}`; None or ""
    left out) set once: a period or repository already in `url` is replaced, its other
    parameters (the list's own filters) and fragment are kept; `filters` are set too."""
    parts = urlsplit(url)
    replaced = {*SCOPE_KEYS, *filters}
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in replaced]
    params += [(k, str(v)) for k, v in filters.items() if v not in (None, "")]
    params += [(k, str(scope[k])) for k in SCOPE_KEYS if scope.get(k) not in (None, "")]
    return urlunsplit(parts._replace(query=urlencode(params)))


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
    sort = forms.ChoiceField(choices=[(s, s) for key in SORTS for s in (key, f"-{key}")], required=False)

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
        _field_of(self, "owner", forms.ChoiceField).choices = [
            ("", "Any owner"),
            (NO_OWNER_PARAM, NO_OWNER),
            *owners,
        ]
        # Jumps through the variant index (a DISTINCT would read all of it).
        variants = [v for v in distinct_values(TestCase, "variant", limit=None) if v]
        _field_of(self, "variant", forms.ChoiceField).choices = [
            ("", "Any variant"),
            *((v, v) for v in variants),
        ]

    def filters(self) -> dict:
        """Keyword arguments for selectors.tests.filter_test_cases (invalid fields dropped)."""
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


# ---- codeowners, monitors, investigations, deliveries
# (imports kept in this section so that parallel additions to this module merge cleanly)


BAND_CHOICES = [("", "Any confidence"), *BAND_LABELS.items()]
NO_TYPE = "(none)"  # `type=(none)`: deliveries whose payload had no type


def _owner_choices() -> list[tuple[str, str]]:
    owners = Owner.objects.order_by("key").values_list("key", "name")
    return [("", "Any owner"), (NO_OWNER_PARAM, NO_OWNER), *owners]


def _fact_type_choices() -> list[tuple[str, str]]:
    return [("", "Any fact type"), *((t, t) for t in investigations.fact_types())]


def _event_type_choices() -> list[tuple[str, str]]:
    return [("", "Any type"), *((t or NO_TYPE, t or "(no type)") for t in deliveries.delivery_event_types())]


class _Filters(forms.Form):
    """A GET filter form whose invalid fields are dropped (a stale link still opens).

    Choices read from the database are fetched at most once per form (validating a
    value and rendering the select share them), and only when needed."""

    lazy_choices: dict = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, choices in self.lazy_choices.items():
            _field_of(self, name, forms.ChoiceField).choices = cache(choices)

    def valid_data(self) -> dict:
        self.is_valid()
        return {k: v for k, v in getattr(self, "cleaned_data", {}).items() if k not in self.errors}


class OwnerTestsForm(_Filters):
    """The status filter of a codeowner's tests table."""

    status = forms.ChoiceField(choices=[("", "Any status"), *Status.choices], required=False)

    def filters(self) -> dict:
        return {"status": self.valid_data().get("status") or None}


class _OwnerInAnyCase(_Filters):
    """Filters with an `owner` choice, given in any case (owners compare case-insensitively)."""

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and data.get("owner"):
            data = data.copy()
            data["owner"] = data["owner"].casefold()
        super().__init__(data, *args, **kwargs)


class InvestigationFilterForm(_OwnerInAnyCase):
    """Filters of the investigations list (the repository is the page's scope)."""

    band = forms.ChoiceField(choices=BAND_CHOICES, required=False, label="Confidence")
    owner = forms.ChoiceField(required=False)
    fact_type = forms.ChoiceField(required=False, label="Fact type")
    lazy_choices = {"owner": _owner_choices, "fact_type": _fact_type_choices}

    def filters(self) -> dict:
        data = self.valid_data()
        return {
            "band": data.get("band") or None,
            "owner": data.get("owner") or None,
            "fact_type": data.get("fact_type") or None,
        }


class DeliveryFilterForm(_Filters):
    """Filters of the deliveries table."""

    outcome = forms.ChoiceField(choices=[("", "Any outcome"), *Delivery.Outcome.choices], required=False)
    type = forms.ChoiceField(required=False)
    received = forms.ChoiceField(
        choices=[("", "In the period"), ("24h", "In the last 24 hours")], required=False
    )
    lazy_choices = {"type": _event_type_choices}

    def filters(self) -> dict:
        data = self.valid_data()
        event_type = data.get("type") or None
        return {
            "outcome": data.get("outcome") or None,
            "event_type": "" if event_type == NO_TYPE else event_type,
            "last_24h": data.get("received") == "24h",
        }


class VerdictForm(forms.Form):
    """A verdict on an investigation: confirmed, rejected, or "" for none."""

    verdict = forms.ChoiceField(choices=[("", "none"), *Verdict.choices], required=False)

    def clean_verdict(self) -> str:
        # "" clears the verdict, so it must be asked for ("No verdict" sends verdict=""):
        # a POST without the field (a careless script, a form that lost its button) had
        # cleared an existing verdict silently.
        if "verdict" not in self.data:
            raise forms.ValidationError("Choose confirmed, rejected or no verdict.")
        return self.cleaned_data["verdict"]


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
        assignee = _field_of(self, "assignee", forms.ModelChoiceField)
        assignee.queryset = get_user_model().objects.filter(is_active=True).order_by("username")
        assignee.empty_label = "Unassigned"


# ---- the quarantine ledger


class QuarantineFilterForm(_OwnerInAnyCase):
    """Filters and sort of the quarantine ledger (the repository is the page's scope)."""

    owner = forms.ChoiceField(required=False)
    ready = forms.ChoiceField(
        choices=[("", "All quarantined"), ("1", "Ready to release")], required=False, label="Show"
    )
    sort = forms.ChoiceField(
        choices=[(s, s) for key in quarantine.SORTS for s in (key, f"-{key}")], required=False
    )
    lazy_choices = {"owner": _owner_choices}

    def filters(self) -> dict:
        data = self.valid_data()
        return {
            "owner": data.get("owner") or None,
            "ready": data.get("ready") == "1",
            "sort": data.get("sort") or None,
        }


def owner_choices() -> list[tuple[str, str]]:
    """The owner choices of the filters ("" any owner, "none" tests without owners, then
    each owner's key and name): the digest's owner selector. One query."""
    return _owner_choices()
