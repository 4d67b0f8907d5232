"""Repositories and owners: read-only, with their tests counted in SQL and linked to the
test case list."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from ..models import Owner, Repository, Status, TestCase, TestCaseOwner
from ..orm import related_count
from ..untrusted import safe_http_url
from .base import ReadOnlyAdmin


@admin.register(Repository)
class RepositoryAdmin(ReadOnlyAdmin):
    list_display = ("name", "url", "trunk_id", "tests", "flaky", "broken")
    fields = readonly_fields = list_display
    search_fields = ("name", "html_url")
    uuid_search_fields = ("trunk_id",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                # Correlated counts (index-only scans of testcase_repository_status_idx),
                # not a join grouped over every test.
                n_tests=related_count(TestCase, "repository"),
                n_flaky=related_count(TestCase, "repository", status=Status.FLAKY),
                n_broken=related_count(TestCase, "repository", status=Status.BROKEN),
            )
        )

    @admin.display(description="URL", ordering="html_url")
    def url(self, obj):
        safe = safe_http_url(obj.html_url)
        return (
            format_html('<a href="{}" rel="noopener noreferrer">{}</a>', safe, safe) if safe else obj.html_url
        )

    def _tests_link(self, obj, count, **params):
        query = urlencode({"repository__id__exact": obj.pk, **params})
        return format_html(
            '<a href="{}?{}">{}</a>', reverse("admin:events_testcase_changelist"), query, count
        )

    @admin.display(description="Tests", ordering="n_tests")
    def tests(self, obj):
        return self._tests_link(obj, obj.n_tests)

    @admin.display(description="Flaky", ordering="n_flaky")
    def flaky(self, obj):
        return self._tests_link(obj, obj.n_flaky, status__exact=Status.FLAKY)

    @admin.display(description="Broken", ordering="n_broken")
    def broken(self, obj):
        return self._tests_link(obj, obj.n_broken, status__exact=Status.BROKEN)


@admin.register(Owner)
class OwnerAdmin(ReadOnlyAdmin):
    list_display = ("name", "key", "first_seen_at", "tests")
    search_fields = ("key", "name")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_tests=related_count(TestCaseOwner, "owner"))

    @admin.display(description="Tests", ordering="n_tests")
    def tests(self, obj):
        url = reverse("admin:events_testcase_changelist")
        return format_html('<a href="{}?{}">{}</a>', url, urlencode({"owner": obj.key}), obj.n_tests)
