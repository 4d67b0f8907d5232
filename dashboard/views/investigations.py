"""The investigations page: confidence, facts, and a filterable list."""

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from events.metrics import AUTO_OUTCOME_WINDOW, band_of

from .. import charts
from ..access import dashboard_reader
from ..display import attach_display
from ..forms import InvestigationFilterForm, scope_from
from ..http import HtmxHttpRequest
from ..selectors import calibration as calibration_selectors
from ..selectors import investigations as selectors
from ..selectors.tests import no_test_yet
from ..shared_pages import render_shared

PER_PAGE = 25


@dashboard_reader
def investigations(request: HtmxHttpRequest) -> HttpResponse:
    scope = scope_from(request)
    period, repository = scope.period, scope.repository_id

    def list_context() -> dict:
        form = InvestigationFilterForm(request.GET)
        filters = form.filters()
        items = selectors.investigation_list(period=period, repository=repository, **filters)
        page = Paginator(items, PER_PAGE).get_page(request.GET.get("page"))
        for investigation in page:  # one fetched page: the band of each row for its badge
            attach_display(investigation, band=band_of(investigation.confidence))
        return {"scope": scope, "form": form, "page": page, "filtered": any(filters.values())}

    def content() -> dict:
        summary = selectors.investigation_summary(period=period, repository=repository)
        calibration = calibration_selectors.calibration(period=period, repository=repository)
        return list_context() | {
            "summary": summary,
            "no_test_yet": no_test_yet,  # called by the template only when the page is empty
            "histogram_chart": charts.confidence_histogram(
                summary["histogram"], period=period.name, repository=repository
            ),
            "over_time_chart": charts.confidence_over_time(summary["over_time"]),
            "facts_chart": charts.facts_by_type(
                summary["facts_by_type"], period=period.name, repository=repository
            ),
            "calibration": calibration,
            # Drawn only with enough verdicts (below the bound the page says how many more).
            "calibration_chart": charts.reliability_diagram(calibration["bins"])
            if calibration["enough"]
            else None,
            "auto_outcome_days": AUTO_OUTCOME_WINDOW.days,
        }

    if request.htmx and request.htmx.target == "list":
        response = render(request, "dashboard/investigations.html#list", list_context())
    else:
        response = render_shared(request, "dashboard/investigations.html", content, {"scope": scope})
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response
