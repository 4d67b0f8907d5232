"""REST API v1 routes, the OpenAPI schema and its Swagger UI (served without a CDN).

No ReDoc page: drf-spectacular's ReDoc template loads Google Fonts, and flakyboard loads
nothing from the network (DESIGN.md).
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from . import stats, subscriptions, views

app_name = "api"


class Router(DefaultRouter):
    """The browsable root at /api/v1/ also links the stats endpoints (they have no list)."""

    include_format_suffixes = False
    STATS = (
        "summary",
        "status-trend",
        "codeowners",
        "monitors",
        "confidence",
        "quarantine",
        "calibration",
        "fixes",
        "targets",
    )

    def get_api_root_view(self, api_urls=None):
        api_root_dict = {
            prefix: self.routes[0].name.format(basename=basename) for prefix, _, basename in self.registry
        }
        api_root_dict.pop("stats")
        api_root_dict.update({f"stats/{name}": f"stats-{name}" for name in self.STATS})
        return self.APIRootView.as_view(api_root_dict=api_root_dict)


router = Router()
router.register("repositories", views.RepositoryViewSet, basename="repository")
router.register("test-cases", views.TestCaseViewSet, basename="test-case")
router.register("status-changes", views.StatusChangeViewSet, basename="status-change")
router.register("monitor-events", views.MonitorEventViewSet, basename="monitor-event")
router.register("monitors", views.MonitorViewSet, basename="monitor")
router.register("investigations", views.InvestigationViewSet, basename="investigation")
router.register("quarantine-changes", views.QuarantineChangeViewSet, basename="quarantine-change")
router.register("triage-events", views.TriageEventViewSet, basename="triage-event")
router.register("deliveries", views.DeliveryViewSet, basename="delivery")
router.register("stats", stats.StatsViewSet, basename="stats")
router.register("subscriptions", subscriptions.SubscriptionViewSet, basename="subscription")

# One test's history: the same viewsets, filtered to the test in the URL.
NESTED = [
    ("status-changes", views.StatusChangeViewSet, "test-case-status-changes"),
    ("monitor-events", views.MonitorEventViewSet, "test-case-monitor-events"),
    ("investigations", views.InvestigationViewSet, "test-case-investigations"),
    ("quarantine-changes", views.QuarantineChangeViewSet, "test-case-quarantine-changes"),
    ("triage-history", views.TriageEventViewSet, "test-case-triage-history"),
]

urlpatterns = [
    *(
        path(f"v1/test-cases/<uuid:test_case_id>/{prefix}/", viewset.as_view({"get": "list"}), name=name)
        for prefix, viewset, name in NESTED
    ),
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up code as a script file: the CSP
    # (CONTENT_SECURITY_POLICY, flakyboard/settings.py) refuses inline scripts, which
    # left the page blank.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^(?P<path>[\s\S]*)\Z", views.not_found),  # any path, newlines too
]
