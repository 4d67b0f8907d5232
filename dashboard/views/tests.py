"""The tests table (with its CSV) and the test detail page (with its triage edit).

Every section of the detail page is capped and read with a fixed number of queries, so
a test with thousands of events opens as fast as one with ten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, TypeGuard, cast

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import push_url

from events.exports import test_cases_csv_response
from events.metrics import LABELS, Period, band_of
from events.models import Investigation, TestCase
from events.triage import VIA_DASHBOARD, set_verdict, triage_test, triage_values
from events.untrusted import safe_http_url

from .. import charts
from ..access import dashboard_reader
from ..display import attach_display
from ..forms import TestFilterForm, TriageForm, VerdictForm, scope_from
from ..http import HtmxHttpRequest
from ..markdown import render_markdown
from ..selectors import tests as selectors
from ..selectors.targets import triage_history
from ..shared_pages import render_shared
from .fixes import fixes_of_test

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.http.request import _ImmutableQueryDict

PAGE_SIZE = 50
# Caps of the detail page's sections (the newest rows are shown, with a note).
MONITOR_EVENTS_SHOWN = 30
INVESTIGATIONS_SHOWN = 10
QUARANTINE_CHANGES_SHOWN = 50
STATUS_CHANGES_SHOWN = 50
EPISODES_SHOWN = 50
DELIVERIES_SHOWN = 50
EVIDENCE_MAX_CHARS = 4000
EVIDENCE_MAX_ITEMS = 50  # items of a list in the evidence shown one per line (a list may hold 100,000)


# ---------------------------------------------------------------- the tests table


@dataclass(frozen=True)
class Column:
    label: str
    key: str | None = None  # a selectors.SORTS key when the column sorts
    first: str = "-"  # direction of the first click: "" ascending, "-" descending
    numeric: bool = False
    title: str = ""  # the header's tooltip


# Trunk's 7-day figures are as of the latest event that carried the test's attributes
# (TestCase.attributes_at), not as of now: the header and each cell say so.
TRUNK_FIGURE = "Trunk's figure over the 7 days before the last event that carried it; each value's tooltip says as of when"


# The ones that matter most first: on a phone they fit the screen, the rest scroll.
COLUMNS = [
    Column("Test", "name", first=""),
    Column("Status", "status"),
    Column(LABELS["status_since"], "status_since"),
    Column("Repository"),
    Column("Owners"),
    Column(LABELS["quarantined"]),
    Column(LABELS["failure_rate"], "failure_rate", numeric=True, title=TRUNK_FIGURE),
    Column(LABELS["prs_impacted"], "prs_impacted", numeric=True, title=TRUNK_FIGURE),
    Column(LABELS["impact"], "impact", numeric=True),
    Column("Triage"),
]


def _headers(sort: str) -> list[dict]:
    """Column headers: the sort each link asks for (toggles on the current column)."""
    headers = []
    for column in COLUMNS:
        header = {
            "label": column.label,
            "numeric": column.numeric,
            "sort": None,
            "direction": None,
            "title": column.title,
        }
        if column.key:
            if sort.removeprefix("-") == column.key:
                header["direction"] = "descending" if sort.startswith("-") else "ascending"
                header["sort"] = column.key if sort.startswith("-") else f"-{column.key}"
            else:
                header["sort"] = f"{column.first}{column.key}"
        headers.append(header)
    return headers


def _without_empty(params: QueryDict) -> _ImmutableQueryDict:
    """The query string minus empty values: a GET form sends every field, and the links
    and pushed URL read better (and stay shareable) without `q=&status=&...`."""
    cleaned = QueryDict(mutable=True)
    for key, values in params.lists():
        kept = [v for v in values if v.strip()]
        if kept:
            cleaned.setlist(key, kept)
    cleaned._mutable = False  # as Django makes request.GET immutable
    return cast("_ImmutableQueryDict", cleaned)


def _filtered_tests(request: HttpRequest):
    # No figure of the tests table depends on the period (status, failure rate, PRs
    # impacted are now or Trunk's last 7 days): no period selector, the period travels on.
    scope = scope_from(request, period_applies=False)
    form = TestFilterForm(request.GET)
    filters = form.filters()
    tests = selectors.filter_test_cases(selectors.test_cases(), repository=scope.repository_id, **filters)
    return scope, form, filters, tests


@require_GET
@dashboard_reader
def test_list(request: HtmxHttpRequest) -> HttpResponse:
    request.GET = _without_empty(request.GET)

    def content() -> dict:
        # The filters' form reads its choices (owners, variants): only when computing.
        scope, form, filters, tests = _filtered_tests(request)
        sort = filters["sort"] or selectors.DEFAULT_SORT
        # The impact column: computed for the page's rows (and for every row only to sort by it).
        with_impact = selectors.with_impact(tests, now=scope.period.now)
        return {
            "scope": scope,
            "form": form,
            "page": selectors.TestPaginator(with_impact, PAGE_SIZE).get_page(request.GET.get("page")),
            "sort": sort,
            "headers": _headers(sort),
            "filtered": scope.repository is not None
            or any(v is not None for k, v in filters.items() if k != "sort"),
        }

    htmx = request.htmx
    if htmx and htmx.target == "table" and not htmx.history_restore_request:
        response = render(request, "dashboard/test_list.html#table", content())
        # Push the clean URL (empty fields dropped) rather than the raw form submission.
        query = request.GET.urlencode()
        response = push_url(response, request.path + (f"?{query}" if query else ""))
    else:
        scope = scope_from(request, period_applies=False)
        response = render_shared(request, "dashboard/test_list.html", content, {"scope": scope})
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@require_GET
@dashboard_reader
def test_list_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The tests of the current filter as CSV, streamed: rows are read in chunks (with
    one owners query per chunk), so the export never holds every test in memory."""
    _scope, _form, _filters, tests = _filtered_tests(request)
    return test_cases_csv_response(tests, request=request)


# ---------------------------------------------------------------- the test detail page


def can_triage(user: User | AnonymousUser) -> TypeGuard[User]:
    return user.is_authenticated and (user.is_staff or user.has_perm("events.change_testcase"))


class EvidencePair(TypedDict):
    """One key of an evidence object, as the template shows it."""

    key: str
    value: str
    items: list[str] | None  # a list of flat objects: one line per item
    nested: bool


def _evidence(evidence: Any) -> tuple[list[EvidencePair] | None, str]:
    """Evidence (untrusted JSON whose shape Trunk does not document) made readable: an
    object as key/value pairs, a list of flat objects under a key as one line per item
    ("run_id: 1 · attempts: 2"), other nested values as compact JSON, anything else as
    pretty-printed JSON. Long values and long lists are cut; the template escapes
    everything."""
    if evidence in (None, {}, []):
        return None, ""
    if isinstance(evidence, dict):
        pairs = []
        for key, value in sorted(evidence.items()):
            pair = EvidencePair(key=str(key), value="", items=None, nested=not _is_scalar(value))
            if isinstance(value, list) and value and all(_is_flat(item) for item in value):
                items = [
                    _cut(" · ".join(f"{k}: {_scalar_text(v)}" for k, v in item.items()))
                    for item in value[:EVIDENCE_MAX_ITEMS]
                ]
                if len(value) > EVIDENCE_MAX_ITEMS:
                    items.append(f"… {len(value) - EVIDENCE_MAX_ITEMS} more (truncated)")
                pair["items"] = items
            else:
                pair["value"] = _cut(_scalar_text(value))
            pairs.append(pair)
        return pairs, ""
    return None, _cut(json.dumps(evidence, indent=2, sort_keys=True, ensure_ascii=False))


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_flat(value) -> bool:
    return isinstance(value, dict) and all(_is_scalar(v) for v in value.values())


def _scalar_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _cut(text: str) -> str:
    return text if len(text) <= EVIDENCE_MAX_CHARS else text[:EVIDENCE_MAX_CHARS] + " … (truncated)"


def _triage_context(request: HttpRequest, test: TestCase, form: TriageForm | None = None, **extra) -> dict:
    editable = can_triage(request.user)
    if editable and form is None:
        form = TriageForm(instance=test, auto_id="triage_%s")
    return {"test": test, "triage_form": form if editable else None, **extra}


def _detail_context(request: HttpRequest, test: TestCase, triage_form: TriageForm | None = None) -> dict:
    now = max(timezone.now(), test.last_event_at)
    timeline = selectors.status_timeline(test, now=now)
    monitors = selectors.monitor_timeline(test)

    monitor_events = selectors.monitor_events_of(test, limit=MONITOR_EVENTS_SHOWN)
    for event in monitor_events:
        evidence_pairs, evidence_text = _evidence(event.evidence)
        attach_display(
            event,
            evidence_pairs=evidence_pairs,
            evidence_text=evidence_text,
            label=charts.monitor_label(event.monitor.type, event.monitor_id),
        )

    investigations = selectors.investigations_of(test, limit=INVESTIGATIONS_SHOWN)
    for investigation in investigations:
        attach_display(
            investigation,
            band=band_of(investigation.confidence),
            summary_html=render_markdown(investigation.markdown_summary),
        )
        for fact in investigation.facts.all():
            attach_display(
                fact,
                content_html=render_markdown(fact.content),
                band=band_of(fact.confidence) if fact.confidence is not None else None,
            )

    episodes = selectors.episodes(test)
    episode_rows = [
        {
            "started_at": e.started_at,
            "ended_at": e.ended_at,
            "duration": (e.ended_at or now) - e.started_at,
            "relapse": e.relapse,
            "start_known": e.start_known,
        }
        for e in reversed(episodes[-EPISODES_SHOWN:])
    ]
    deliveries = selectors.deliveries_of(test)
    totals = selectors.history_counts(test, deliveries=deliveries)
    return {
        **_triage_context(request, test, triage_form),
        **dict(zip(("triage_history", "triage_history_total"), triage_history(test), strict=True)),
        "now": now,
        "owners": selectors.owners_of(test),
        "trunk_url": safe_http_url(test.html_url),
        "repository_url": safe_http_url(test.repository.html_url) if test.repository else "",
        "status_chart": charts.status_timeline(timeline, now=now),
        "monitor_chart": charts.monitor_timeline(monitors, now=now, start=test.first_event_at),
        "monitor_events": monitor_events,
        "monitor_events_total": totals["monitor_events"],
        "investigations": investigations,
        "investigations_total": totals["investigations"],
        "quarantine_changes": selectors.quarantine_changes_of(test, limit=QUARANTINE_CHANGES_SHOWN),
        "quarantine_changes_total": totals["quarantine_changes"],
        "episodes": episode_rows,
        "episodes_total": len(episodes),
        "relapses": sum(e.relapse for e in episodes),
        "status_changes": selectors.status_history(test, limit=STATUS_CHANGES_SHOWN),
        "status_changes_total": totals["status_changes"],
        "deliveries": deliveries[:DELIVERIES_SHOWN],
        "deliveries_total": totals["deliveries"],
        "test_fixes": fixes_of_test(test, period=Period.parse(request.GET.get("period"), now=now)),
        "caps": {
            "monitor_events": MONITOR_EVENTS_SHOWN,
            "investigations": INVESTIGATIONS_SHOWN,
            "quarantine_changes": QUARANTINE_CHANGES_SHOWN,
            "status_changes": STATUS_CHANGES_SHOWN,
            "episodes": EPISODES_SHOWN,
            "deliveries": DELIVERIES_SHOWN,
        },
    }


def _get_test(test_id) -> TestCase:
    return get_object_or_404(selectors.test_case_for_page(), pk=test_id)


@require_GET
@dashboard_reader
def test_detail(request: HttpRequest, test_id) -> HttpResponse:
    test = _get_test(test_id)
    if can_triage(request.user):
        # Their page holds the triage and verdict forms, with their CSRF token: their own.
        return render(request, "dashboard/test_detail.html", _detail_context(request, test))
    # Readers who cannot triage see the same page: shared (shared_pages).
    return render_shared(
        request, "dashboard/test_detail.html", lambda: _detail_context(request, test), {"test": test}
    )


@require_http_methods(["GET", "POST"])
@dashboard_reader
def test_triage(request: HtmxHttpRequest, test_id) -> HttpResponse:
    """GET: the triage partial. POST (staff or events.change_testcase): save the triage
    fields, record the change in the admin log, answer with the partial (htmx) or
    redirect back to the page (a plain form post)."""
    test = _get_test(test_id)
    if request.method == "GET":
        return render(request, "dashboard/test_detail.html#triage", _triage_context(request, test))
    user = request.user
    if not can_triage(user):
        raise PermissionDenied("Only staff can change the triage of a test.")
    form = TriageForm(request.POST, instance=test, auto_id="triage_%s")
    if not form.is_valid():
        if request.htmx:
            return render(request, "dashboard/test_detail.html#triage", _triage_context(request, test, form))
        return render(request, "dashboard/test_detail.html", _detail_context(request, test, form), status=400)
    changed = {name: form.cleaned_data[name] for name in form.changed_data}
    saved = bool(triage_test(test, by=user, via=VIA_DASHBOARD, **triage_values(changed)))
    if not request.htmx:
        return redirect(test)
    context = _triage_context(request, test, TriageForm(instance=test, auto_id="triage_%s"), saved=saved)
    return render(request, "dashboard/test_detail.html#triage", context)


@require_http_methods(["GET", "POST"])
@dashboard_reader
def investigation_verdict(request: HtmxHttpRequest, test_id, investigation_id) -> HttpResponse:
    """GET: one investigation's verdict fragment. POST (who may triage): set the verdict
    (confirmed, rejected, or none) through the triage service, which records author, time
    and the triage history; answer with the fragment (htmx) or redirect back to the test's
    page (a plain form post)."""
    investigations = Investigation.objects.select_related("verdict__by").filter(test_case_id=test_id)
    investigation = get_object_or_404(investigations, pk=investigation_id)
    context: dict[str, Any] = {"investigation": investigation, "verdict_editable": can_triage(request.user)}
    if request.method == "GET":
        return render(request, "dashboard/_verdict.html", context)
    user = request.user
    if not can_triage(user):
        raise PermissionDenied("Only users who may triage can set a verdict.")
    form = VerdictForm(request.POST)
    if not form.is_valid():
        return render(request, "dashboard/_verdict.html", {**context, "error": True}, status=400)
    saved = set_verdict(investigation, by=user, verdict=form.cleaned_data["verdict"], via=VIA_DASHBOARD)
    if not request.htmx:
        return redirect(f"{reverse('dashboard:test-detail', args=[test_id])}#verdict-{investigation.pk}")
    context["investigation"] = investigations.get(pk=investigation.pk)
    return render(request, "dashboard/_verdict.html", {**context, "saved": saved})
