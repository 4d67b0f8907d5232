"""The monitors page: activations, what is active now, time to resolve, flapping."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from .. import charts
from ..access import dashboard_reader
from ..forms import scope_from
from ..http import HtmxHttpRequest
from ..selectors import monitors as selectors
from ..selectors.tests import no_test_yet
from ..shared_pages import render_shared

PAIRS_PER_PAGE = 25


def _active_page(request: HttpRequest, pairs, now):
    page = Paginator(pairs, PAIRS_PER_PAGE).get_page(request.GET.get("page"))
    for pair in page:  # one page of rows, already fetched: their age for the template
        pair.age = now - pair.active_since
    return page


@dashboard_reader
def monitors(request: HtmxHttpRequest) -> HttpResponse:
    scope = scope_from(request)
    period, repository = scope.period, scope.repository_id
    if request.htmx and request.htmx.target == "active-pairs":
        pairs = selectors.active_monitor_pairs(repository=repository)
        context = {"scope": scope, "active": _active_page(request, pairs, period.now)}
        response = render(request, "dashboard/monitors.html#active-pairs", context)
        patch_vary_headers(response, ("HX-Request", "HX-Target"))
        return response

    def content() -> dict:
        summary = selectors.monitor_summary(period=period, repository=repository)
        active_by_type = selectors.active_monitors_by_type(repository=repository)
        activations_by_type: dict[str, int] = {}
        for row in summary["activations"]:  # already aggregated per (day, type) in SQL
            activations_by_type[row["type"]] = activations_by_type.get(row["type"], 0) + row["count"]
        medians = summary["median_time_to_resolve"]
        types = sorted(set(activations_by_type) | set(active_by_type) | set(medians))
        return {
            "scope": scope,
            "no_test_yet": no_test_yet,  # called by the template only when the page is empty
            "active": _active_page(request, summary["active_now"], period.now),
            "types": [
                {
                    "type": t,
                    "activations": activations_by_type.get(t, 0),
                    "active_now": active_by_type.get(t, 0),
                    "median_time_to_resolve": medians.get(t),
                }
                for t in types
            ],
            "flapping": summary["flapping"],
            "activations_chart": charts.monitor_activations(
                summary["activations"],
                start=period.start.date() if period.start else None,
                end=period.now.date(),
            ),
            "resolve_chart": charts.monitor_resolve_times(medians),
        }

    response = render_shared(request, "dashboard/monitors.html", content, {"scope": scope})
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response
