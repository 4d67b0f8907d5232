from django.urls import path, register_converter

from .views import deliveries, digest, investigations, monitors, overview, owners, quarantine, tests


class AnyTextConverter:
    """Any non-empty text, newlines included. An owner may be named anything (Trunk sends
    codeowners as free text): with `path`'s `.+`, reverse() of an owner containing a
    newline failed and made /codeowners/ answer 500."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


register_converter(AnyTextConverter, "anytext")

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("tests/", tests.test_list, name="tests"),
    path("tests.csv", tests.test_list_csv, name="tests-csv"),
    path("tests/<uuid:test_id>/", tests.test_detail, name="test-detail"),
    path("tests/<uuid:test_id>/triage/", tests.test_triage, name="test-triage"),
    path(
        "tests/<uuid:test_id>/investigations/<uuid:investigation_id>/verdict/",
        tests.investigation_verdict,
        name="investigation-verdict",
    ),
    path("codeowners/", owners.codeowners, name="codeowners"),
    # `owner`: the owner's id (the links), "none" (tests without owners) or, as in older
    # links, the owner's name in any case (see views.owners.codeowner_detail).
    path("codeowners/<anytext:owner>/", owners.codeowner_detail, name="codeowner-detail"),
    path("monitors/", monitors.monitors, name="monitors"),
    path("investigations/", investigations.investigations, name="investigations"),
    path("quarantine/", quarantine.quarantine, name="quarantine"),
    path("digest/", digest.digest, name="digest"),
    path("deliveries/", deliveries.deliveries, name="deliveries"),
    path("deliveries/<int:delivery_id>/", deliveries.delivery_detail, name="delivery-detail"),
]
