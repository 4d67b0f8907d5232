"""The overview page: counts, trends and the recent changes that refresh themselves."""

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import render

from events.metrics import impact_help
from events.models import StatusChange

from .. import charts
from ..access import dashboard_reader
from ..forms import Scope, scope_from
from ..http import HtmxHttpRequest
from ..selectors import deliveries, investigations, monitors, owners, quarantine, status, tests
from ..shared_pages import render_shared
from .fixes import fixes_section


@dashboard_reader
def overview(request: HtmxHttpRequest) -> HttpResponse:
    scope = scope_from(request)
    recent = status.recent_status_changes(repository=scope.repository_id)
    if request.htmx and request.htmx.target == "recent-changes":
        return render(request, "dashboard/overview.html#recent-changes", {"recent": recent, "scope": scope})
    return render_shared(
        request, "dashboard/overview.html", lambda: _content(scope, recent), {"scope": scope}
    )


def _content(scope: Scope, recent: QuerySet[StatusChange]) -> dict:
    """The page's figures, charts and lists (shared between readers: shared_pages)."""
    period, repository = scope.period, scope.repository_id
    trend = status.status_trend(period=period, repository=repository)
    transitions = status.transitions_per_day(period=period, repository=repository)
    top_owners = owners.problem_tests_by_owner(repository=repository)
    return {
        "scope": scope,
        "summary": status.status_summary(period=period, repository=repository),
        "active_monitors": monitors.active_monitor_count(repository=repository),
        "investigations": investigations.investigation_count(period=period, repository=repository),
        "deliveries": deliveries.delivery_health(repository=repository, now=period.now),
        "median_time_to_fix": status.median_time_to_fix(period=period, repository=repository),
        "trend_chart": charts.status_trend(trend, period=period.name, repository=repository),
        "transitions_chart": charts.transitions(
            transitions, days=[row["day"] for row in trend] or sorted({r["day"] for r in transitions})
        ),
        "owners_chart": charts.top_owners(top_owners, period=period.name, repository=repository),
        "fix_first": tests.fix_first(repository=repository, now=period.now),
        "impact": impact_help(),
        "recent": recent,
        "quarantine": quarantine.quarantine_summary(repository=repository, now=period.now),
        "fixes": fixes_section(period=period, repository=repository),
    }
