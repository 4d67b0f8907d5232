"""The receiver's URLs: the webhook endpoint and the health checks.

The whole site (flakyboard.urls) includes them. A receiver-only server
(FLAKYBOARD_RECEIVER_ONLY, bin/start-server's RECEIVER_PORT pool) serves only them, so
that no reader can keep its workers busy: deliveries keep their own capacity however
many people read the dashboard (bench.mixed).
"""

from django.urls import path, re_path

from events.receiver import views as event_views
from flakyboard import observability

urlpatterns = [
    # Svix counts a 3xx as a failure, so the receiver answers with or without the slash.
    re_path(r"^webhooks/trunk/?$", event_views.trunk_webhook, name="trunk-webhook"),
    path("healthz", event_views.healthz, name="healthz"),
    path("readyz", observability.readyz, name="readyz"),
    # Prometheus: off (404) unless FLAKYBOARD_METRICS_TOKEN is set; then a bearer token.
    path("metrics", observability.metrics, name="metrics"),
]
