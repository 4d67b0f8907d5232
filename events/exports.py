"""The tests CSV: one column list and one row format, for the admin's "Export selected as
CSV" action and the dashboard's CSV of the tests table.

Cells are untrusted text (test names, owners, notes): `events.untrusted.csv_rows` makes
every cell safe from spreadsheet formula injection. Rows are streamed in chunks (one
owners query per chunk), so an export never holds every test in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from .models import Investigation, Owner, TestCase
from .untrusted import csv_rows

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

TEST_CSV_COLUMNS = (
    "id",
    "name",
    "classname",
    "file_path",
    "repository",
    "status",
    "status_since",
    "owners",
    "quarantined",
    "variant",
    "failure_rate_last_7d",
    "pull_requests_impacted_last_7d",
    "triage_state",
    "assignee",
    "triage_note",
    "latest_investigation_confidence",
    "trunk_url",
    "dashboard_url",
)
CHUNK = 1000  # tests per read (and per owners query)
OWNERS_SEPARATOR = ";"


class _ExportAnnotations(TypedDict):
    export_latest_confidence: float | None


def test_cases_csv(tests: QuerySet[TestCase], *, absolute_url: Callable[[str], str]) -> Iterator[str]:
    """The CSV lines (header first) of `tests`, in their order. `absolute_url` turns a
    path into a full URL (the dashboard link column)."""
    latest = (
        Investigation.objects.filter(test_case=OuterRef("pk"))
        .order_by("-occurred_at", "id")
        .values("confidence")[:1]
    )
    rows = (
        tests.select_related("repository", "assignee")
        # Replaces the caller's prefetches: two Prefetch("owners") with different
        # querysets would be an error.
        .prefetch_related(None)
        .prefetch_related(Prefetch("owners", queryset=Owner.objects.order_by("key")))
        .annotate(export_latest_confidence=Subquery(latest))
    )
    return csv_rows(TEST_CSV_COLUMNS, (_row(t, absolute_url) for t in rows.iterator(chunk_size=CHUNK)))


def test_cases_csv_response(tests: QuerySet[TestCase], *, request: HttpRequest) -> StreamingHttpResponse:
    """`test_cases_csv` as a download named flakyboard-tests-<UTC time>.csv."""
    lines = test_cases_csv(tests, absolute_url=request.build_absolute_uri)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="flakyboard-tests-{stamp}.csv"'
    return response


def _row(
    test: WithAnnotations[TestCase, _ExportAnnotations], absolute_url: Callable[[str], str]
) -> tuple[Any, ...]:
    return (
        str(test.pk),
        test.name,
        test.classname,
        test.file_path,
        str(test.repository or ""),
        test.status,
        test.status_since.isoformat() if test.status_since else "",
        OWNERS_SEPARATOR.join(owner.name for owner in test.owners.all()),
        "true" if test.quarantined else "false",
        test.variant,
        test.failure_rate_last_7d,
        test.pull_requests_impacted_last_7d,
        test.triage_state,
        test.assignee.get_username() if test.assignee else "",
        test.triage_note,
        test.export_latest_confidence,
        test.html_url,
        absolute_url(test.get_absolute_url()),
    )
