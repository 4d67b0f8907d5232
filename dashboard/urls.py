from django.urls import path

from .views import deliveries, investigations, monitors, overview, owners, tests

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("tests/", tests.test_list, name="tests"),
    path("tests.csv", tests.test_list_csv, name="tests-csv"),
    path("tests/<uuid:test_id>/", tests.test_detail, name="test-detail"),
    path("tests/<uuid:test_id>/triage/", tests.test_triage, name="test-triage"),
    path("codeowners/", owners.codeowners, name="codeowners"),
    path("codeowners/<path:owner>/", owners.codeowner_detail, name="codeowner-detail"),
    path("monitors/", monitors.monitors, name="monitors"),
    path("investigations/", investigations.investigations, name="investigations"),
    path("deliveries/", deliveries.deliveries, name="deliveries"),
    path("deliveries/<int:delivery_id>/", deliveries.delivery_detail, name="delivery-detail"),
]
