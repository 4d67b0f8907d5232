from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path

from events.receiver import views as event_views
from flakyboard import observability


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # The static URL is resolved per request: it names the hashed file once collected.
    return HttpResponsePermanentRedirect(static("flakyboard/favicon.svg"))


urlpatterns = [
    # Svix counts a 3xx as a failure, so the receiver answers with or without the slash.
    re_path(r"^webhooks/trunk/?$", event_views.trunk_webhook, name="trunk-webhook"),
    path("healthz", event_views.healthz, name="healthz"),
    path("readyz", observability.readyz, name="readyz"),
    # Prometheus: off (404) unless FLAKYBOARD_METRICS_TOKEN is set; then a bearer token.
    path("metrics", observability.metrics, name="metrics"),
    # Browsers ask for /favicon.ico where a page names no icon (the admin's pages).
    path("favicon.ico", favicon),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("dashboard.urls")),
]
