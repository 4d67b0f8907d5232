"""The codeowners pages: every owner's tests by status and fix figures, and one owner's
tests and trend."""

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from events.metrics import NO_OWNER

from .. import charts
from ..access import dashboard_reader
from ..forms import OwnerTestsForm, Scope, scope_from
from ..http import HtmxHttpRequest
from ..selectors import owners as selectors
from ..selectors import status
from ..selectors.common import NO_OWNER_PARAM
from ..selectors.tests import filter_test_cases, test_cases
from ..shared_pages import render_shared
from . import targets as owner_targets
from .fixes import fixes_section, owners_fixes

TESTS_PER_PAGE = 25


def _for_display(row: dict, scope: Scope) -> dict:
    """An owner_stats row with its links (the owner's page, its tests by status; an owner
    parameter is the key, or "none") and the age of its oldest open episode."""
    param = row["owner_key"] or NO_OWNER_PARAM
    oldest = row["oldest_open_since"]
    return {
        **row,
        "param": param,
        "url": scope.url(_owner_url(row.get("owner_id"))),
        "tests_url": scope.url(charts.tests_url(owner=param)),
        "flaky_url": scope.url(charts.tests_url(owner=param, status="FLAKY")),
        "broken_url": scope.url(charts.tests_url(owner=param, status="BROKEN")),
        "quarantined_url": scope.url(charts.tests_url(owner=param, quarantined="true")),
        "oldest_open_age": scope.period.now - oldest if oldest else None,
    }


def _owner_url(owner_id: int | None) -> str:
    """An owner's page by id, "none" for tests without owners. Not by name: a name may be
    anything (a newline, "..", "none", "//") that a URL cannot carry as a path, or that
    a browser or proxy would rewrite."""
    return reverse("dashboard:codeowner-detail", args=[owner_id or NO_OWNER_PARAM])


@dashboard_reader
def codeowners(request: HttpRequest) -> HttpResponse:
    scope = scope_from(request)

    def content() -> dict:
        rows = selectors.owner_stats(period=scope.period, repository=scope.repository_id)
        shown = [_for_display(row, scope) for row in rows]
        context = {
            "scope": scope,
            "owners": shown,
            "owners_chart": charts.owner_statuses(
                rows, period=scope.period.name, repository=scope.repository_id
            ),
        }
        context |= owners_fixes(context["owners"], period=scope.period, repository=scope.repository_id)
        return context | owner_targets.codeowners_context(shown, scope, request.GET.get("sort"))

    return render_shared(request, "dashboard/codeowners.html", content, {"scope": scope})


@dashboard_reader
def codeowner_detail(request: HtmxHttpRequest, owner: str) -> HttpResponse:
    scope = scope_from(request)
    period, repository = scope.period, scope.repository_id
    if owner.casefold() == NO_OWNER_PARAM:
        key, name, owner_id = "", NO_OWNER, None
    else:
        found = selectors.owner_by_param(owner)
        if found is None:
            raise Http404("No such owner.")
        key, name, owner_id = found.key, found.name, found.pk
    param = key or NO_OWNER_PARAM

    def tests_context() -> dict:
        form = OwnerTestsForm(request.GET)
        tests = filter_test_cases(
            test_cases(), repository=repository, owner=param, sort="-status", **form.filters()
        )
        paginator = Paginator(tests, TESTS_PER_PAGE)
        if repository is None:
            # All repositories: the owner's counts are kept (OwnerCount), no need to count rows.
            paginator.count = selectors.owner_test_count(key, **form.filters())
        return {
            "scope": scope,
            "owner_name": name,
            "owner_url": _owner_url(owner_id),
            # The digest's owner parameter: by id, as the links name owners (or "none").
            "digest_owner": owner_id or NO_OWNER_PARAM,
            "back_url": scope.url(reverse("dashboard:codeowners")),
            "form": form,
            "page": paginator.get_page(request.GET.get("page")),
        }

    def content() -> dict:
        # owner_stats has no row for an owner without tests in the scope: show zeros.
        stats = next(
            iter(selectors.owner_stats(period=period, repository=repository, owner_key=key)),
            {"owner_key": key, "owner": name, "owner_id": owner_id}
            | {"tests": 0, "flaky": 0, "broken": 0, "quarantined": 0}
            | {"median_time_to_fix": None, "oldest_open_since": None, "relapses": 0},
        )
        trend = status.status_trend(period=period, repository=repository, owner_key=key)
        return tests_context() | {
            "stats": _for_display(stats, scope),
            "trend_chart": charts.status_trend(trend, owner=param, period=period.name, repository=repository),
            "fixes": fixes_section(period=period, repository=repository, owner_key=key, owner_name=name),
            **owner_targets.owner_section(key, scope),
        }

    if request.htmx and request.htmx.target == "owner-tests":
        response = render(request, "dashboard/codeowner_detail.html#owner-tests", tests_context())
    else:
        shell = {"scope": scope, "owner_name": name}
        response = render_shared(request, "dashboard/codeowner_detail.html", content, shell)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response
