"""The delivery log (staff only): every stored delivery, and one delivery as received."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from events.untrusted import pretty_body

from ..access import dashboard_reader
from ..forms import DeliveryFilterForm, scope_from
from ..http import HtmxHttpRequest
from ..selectors import deliveries as selectors
from ..selectors.tests import no_test_yet

PER_PAGE = 50


def staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Raw payloads and headers are for staff, even when the dashboard is public:
    anonymous users are sent to log in, other users get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@dashboard_reader
@staff_only
def deliveries(request: HtmxHttpRequest) -> HttpResponse:
    scope = scope_from(request)
    form = DeliveryFilterForm(request.GET)
    filters = form.filters()
    rows = selectors.delivery_list(period=scope.period, repository=scope.repository_id, **filters)
    # One COUNT (the paginator caches it) and one page of rows, whatever the table size.
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    filtered = filters["outcome"] is not None or filters["event_type"] is not None or filters["last_24h"]
    # no_test_yet: called by the template only when the page is empty
    context = {"scope": scope, "form": form, "page": page, "filtered": filtered, "no_test_yet": no_test_yet}
    partial = "#table" if request.htmx and request.htmx.target == "table" else ""
    if not partial:  # the outage card is outside the swapped table
        context["gaps"] = selectors.delivery_gaps(now=scope.period.now)
    response = render(request, f"dashboard/deliveries.html{partial}", context)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@dashboard_reader
@staff_only
def delivery_detail(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = get_object_or_404(selectors.delivery_with_projections(delivery_id))
    projected = []
    for relation in selectors.PROJECTIONS:
        row = getattr(delivery, relation, None)
        if row is not None:
            projected.append({"kind": relation, "row": row, "test": row.test_case})
    # One delivery as received: neither the period nor the repository changes it, so
    # the page has no selectors; the links back keep them (the navigation reads the URL).
    scope = scope_from(request)
    context = {
        "back_url": scope.url(reverse("dashboard:deliveries")),
        "delivery": delivery,
        "body": pretty_body(delivery.body),
        "headers": sorted(delivery.headers.items()) if isinstance(delivery.headers, dict) else [],
        "projected": projected,
    }
    return render(request, "dashboard/delivery_detail.html", context)
