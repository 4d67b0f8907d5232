"""Repositories as Trunk names them, with their tests' counts (the API's list)."""

from __future__ import annotations

from django.db.models import QuerySet

from events.models import Repository, Status, TestCase
from events.orm import related_count


def repositories_with_counts() -> QuerySet[Repository]:
    """Repositories by name, each with its tests, FLAKY, BROKEN and quarantined counts."""
    # One correlated count per figure, each an index-only scan of the repository's
    # entries in testcase_repository_status_idx. A join with GROUP BY read all the
    # tests (50,000 at L) for every page, and again for the paginator's COUNT.
    return Repository.objects.annotate(
        test_count=related_count(TestCase, "repository"),
        flaky_count=related_count(TestCase, "repository", status=Status.FLAKY),
        broken_count=related_count(TestCase, "repository", status=Status.BROKEN),
        quarantined_count=related_count(TestCase, "repository", quarantined=True),
    ).order_by("name", "id")
