from django.contrib import admin
from django.urls import include, path, re_path

from events.receiver import views as event_views

urlpatterns = [
    # Svix counts a 3xx as a failure, so the receiver answers with or without the slash.
    re_path(r"^webhooks/trunk/?$", event_views.trunk_webhook, name="trunk-webhook"),
    path("healthz", event_views.healthz, name="healthz"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("dashboard.urls")),
]
