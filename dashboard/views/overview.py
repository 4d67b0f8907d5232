"""The overview page: counts, trends and the recent changes that refresh themselves."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from events.models import Investigation, StatusChange

from .. import charts, queries
from ..access import dashboard_reader
from ..forms import scope_from


@dashboard_reader
def overview(request: HttpRequest) -> HttpResponse:
    scope = scope_from(request)
    period, repository = scope.period, scope.repository_id
    recent = _recent_changes(repository)
    if request.htmx and request.htmx.target == "recent-changes":
        return render(request, "dashboard/overview.html#recent-changes", {"recent": recent, "scope": scope})
    trend = queries.status_trend(period=period, repository=repository)
    transitions = queries.transitions_per_day(period=period, repository=repository)
    owners = queries.flaky_tests_by_owner(repository=repository)
    in_period = period.filter("occurred_at")
    context = {
        "scope": scope,
        "summary": queries.status_summary(period=period, repository=repository),
        "active_monitors": queries.active_monitor_pairs(repository=repository).count(),
        "investigations": Investigation.objects.filter(in_period)
        .filter(**({"test_case__repository": repository} if repository else {}))
        .count(),
        "deliveries": queries.delivery_health(),
        "median_time_to_fix": queries.median_time_to_fix(period=period, repository=repository),
        "trend_chart": charts.status_trend(trend, repository=repository),
        "transitions_chart": charts.transitions(
            transitions, days=[row["day"] for row in trend] or sorted({r["day"] for r in transitions})
        ),
        "owners_chart": charts.top_owners(owners, repository=repository),
        "recent": recent,
    }
    return render(request, "dashboard/overview.html", context)


def _recent_changes(repository: int | None, limit: int = 12):
    changes = StatusChange.objects.select_related("test_case").order_by("-occurred_at", "-id")
    if repository:
        changes = changes.filter(test_case__repository=repository)
    return changes[:limit]
