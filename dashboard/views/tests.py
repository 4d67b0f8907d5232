"""The tests table (with CSV) and the test detail page."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from events.models import TestCase

from .. import queries
from ..access import dashboard_reader
from ..forms import scope_from


@dashboard_reader
def test_list(request: HttpRequest) -> HttpResponse:
    scope = scope_from(request)
    tests = queries.filter_test_cases(queries.test_cases(), repository=scope.repository_id)
    page = Paginator(tests, 50).get_page(request.GET.get("page"))
    return render(request, "dashboard/test_list.html", {"page": page, "scope": scope})


@dashboard_reader
def test_detail(request: HttpRequest, test_id) -> HttpResponse:
    test = get_object_or_404(TestCase.objects.select_related("repository"), pk=test_id)
    return render(
        request, "dashboard/test_detail.html", {"test": test, "history": queries.status_history(test)}
    )
