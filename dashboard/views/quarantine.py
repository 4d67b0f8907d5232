"""The quarantine ledger: every test quarantined now, since when, who and why, and
whether it is ready to release (docs/metrics.md, "Quarantine")."""

from datetime import timedelta

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from events.metrics import LABELS, READY_TO_RELEASE_HEALTHY

from ..access import dashboard_reader
from ..display import attach_display
from ..forms import QuarantineFilterForm, scope_from
from ..http import HtmxHttpRequest
from ..selectors import quarantine as selectors
from ..selectors.tests import no_test_yet
from ..shared_pages import render_shared

PER_PAGE = 50

# (label, sort key or None, direction of the first click: "" ascending, "-" descending, numeric)
COLUMNS = [
    ("Test", "name", "", False),
    (LABELS["quarantined_since"], "since", "", False),
    (LABELS["quarantine_age"], None, "", True),
    ("Who and why", None, "", False),
    ("Status now", "status_since", "-", False),
    ("Owners", None, "", False),
    (LABELS["active_monitors"], "monitors", "-", True),
]


def _headers(sort: str) -> list[dict]:
    """Column headers: the sort each link asks for (toggles on the current column)."""
    headers = []
    for label, key, first, numeric in COLUMNS:
        header = {"label": label, "numeric": numeric, "sort": None, "direction": None}
        if key:
            if sort.removeprefix("-") == key:
                header["direction"] = "descending" if sort.startswith("-") else "ascending"
                header["sort"] = key if sort.startswith("-") else f"-{key}"
            else:
                header["sort"] = f"{first}{key}"
        headers.append(header)
    return headers


@require_GET
@dashboard_reader
def quarantine(request: HtmxHttpRequest) -> HttpResponse:
    # Every figure is as of now: no period selector (the period travels on in links).
    scope = scope_from(request, period_applies=False)
    now = scope.period.now

    def content() -> dict:
        form = QuarantineFilterForm(request.GET)
        filters = form.filters()
        sort = filters["sort"] or selectors.DEFAULT_SORT
        rows = selectors.ledger(repository=scope.repository_id, now=now, **filters)
        page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
        changes = selectors.latest_changes(test.latest_change_id for test in page)  # type: ignore[attr-defined]
        for test in page:  # one fetched page: its age and latest quarantine change
            since = test.quarantined_since
            attach_display(
                test,
                # An event time a little ahead of our clock: quarantined for no time yet.
                age=max(now - since, timedelta(0)) if since else None,
                change=changes.get(test.latest_change_id),  # type: ignore[attr-defined]
            )
        return {
            "scope": scope,
            "form": form,
            "page": page,
            "sort": sort,
            "headers": _headers(sort),
            "now": now,
            "ready_days": READY_TO_RELEASE_HEALTHY.days,
            "filtered": bool(filters["owner"] or filters["ready"]),
            "no_test_yet": no_test_yet,  # called by the template only when the page is empty
        }

    if request.htmx and request.htmx.target == "ledger" and not request.htmx.history_restore_request:
        response = render(request, "dashboard/quarantine.html#ledger", content())
    else:
        response = render_shared(request, "dashboard/quarantine.html", content, {"scope": scope})
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response
