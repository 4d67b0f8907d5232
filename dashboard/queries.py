"""Read side: every query the dashboard (and later the API) shows. Nouns, no writes."""

from django.db.models import Prefetch, QuerySet

from events.models import Owner, StatusChange, TestCase


def test_cases() -> QuerySet[TestCase]:
    """Tests with what a list row shows, in a fixed number of queries."""
    return (
        TestCase.objects.select_related("repository")
        .prefetch_related(Prefetch("owners", queryset=Owner.objects.order_by("key")))
        .order_by("-status_since", "name")
    )


def status_history(test_case: TestCase, *, limit: int = 200) -> QuerySet[StatusChange]:
    return test_case.status_changes.order_by("-occurred_at", "-id")[:limit]
