"""REST API v1 routes (filled in by the API issue)."""

app_name = "api"

urlpatterns: list = []
