"""REST API v1: read-only viewsets over the projections, triage writes on test cases
and investigations (the stats endpoints: api/stats.py).

Thin views (DESIGN.md): parameters are validated by a FilterSet or a form, the data comes
from one selector (dashboard.selectors; a viewset's get_queryset returns a selector's
queryset), a serializer shapes it. Every list runs a fixed
number of queries whatever its page size (select_related / prefetch_related), which
tests/api/test_query_counts.py asserts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from dashboard.selectors import (
    deliveries,
    history,
    investigations,
    monitors,
    repositories,
    targets,
    tests,
)
from events.models import Repository
from events.triage import VIA_API, set_verdict, triage_test, triage_values

from . import filters, serializers, triage_filters
from .pagination import (
    CursorPagination,
    DeliveryCursorPagination,
    PageNumberPagination,
    TriageCursorPagination,
)
from .permissions import StaffOnly

LIST_ACTIONS = frozenset({"list"})
_View = TypeVar("_View", bound=Callable[..., Any])


class ListFiltersOnly(viewsets.GenericViewSet):
    """Apply the filter parameters to lists only: DRF would also filter the object lookup
    of a detail or PATCH request by the query string."""

    def filter_queryset(self, queryset):
        if self.action in LIST_ACTIONS:
            return super().filter_queryset(queryset)
        return queryset


# ---------------------------------------------------------------- repositories

REPOSITORY_ID = OpenApiParameter(
    "id",
    filters.REPOSITORY_SCHEMA,
    OpenApiParameter.PATH,
    description="The repository's integer `id` or its Trunk UUID (`trunk_id`).",
)


@extend_schema_view(
    list=extend_schema(summary="Repositories, with their test counts by status", tags=["repositories"]),
    retrieve=extend_schema(summary="One repository", parameters=[REPOSITORY_ID], tags=["repositories"]),
)
class RepositoryViewSet(
    ListFiltersOnly, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Repositories as Trunk names them. `repositories/{id}/` takes the integer `id` or the
    Trunk UUID; use either as the `repository` parameter of the other endpoints."""

    queryset = repositories.repositories_with_counts()
    serializer_class = serializers.RepositorySerializer
    lookup_field = "id"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return repositories.repositories_with_counts()

    def get_object(self) -> Repository:
        lookup = filters.repository_lookup(str(self.kwargs["id"]))
        if lookup is None:
            raise NotFound("No repository with this id: use the integer id or the Trunk UUID.")
        repository = get_object_or_404(self.get_queryset(), **lookup)
        self.check_object_permissions(self.request, repository)
        return repository


# ---------------------------------------------------------------- test cases


class TestCasePagination(PageNumberPagination):
    """The tests page's paginator: `sort=-impact` pages without sorting every test by its
    score (dashboard.selectors.tests.TestPaginator)."""

    __test__ = False

    django_paginator_class = tests.TestPaginator


@extend_schema_view(
    list=extend_schema(
        summary="Tests, with the dashboard's filters and sort orders",
        description="The filters are the tests page's (`dashboard.selectors.tests.filter_test_cases`), "
        "plus `assignee` and `changed_since` / `changed_until`.",
        tags=["test cases"],
    ),
    retrieve=extend_schema(summary="One test, by Trunk's test case id", tags=["test cases"]),
    partial_update=extend_schema(
        summary="Triage a test",
        description="Only `triage_state`, `assignee` and `triage_note` can be changed (staff, or "
        "users with the `events.change_testcase` permission). Sending any of Trunk's fields is "
        "a 400 naming the field. The change is recorded in the admin history.",
        request=serializers.TriageSerializer,
        responses=serializers.TestCaseSerializer,
        tags=["test cases"],
    ),
)
class TestCaseViewSet(
    ListFiltersOnly, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Tests by Trunk's id (`test-cases/<uuid>/`). PATCH writes triage fields only."""

    __test__ = False

    pagination_class = TestCasePagination

    queryset = tests.test_cases()
    serializer_class = serializers.TestCaseSerializer
    filterset_class = filters.TestCaseFilterSet
    lookup_field = "id"

    def get_queryset(self):
        # The impact score of each row (`impact`), computed for the page's rows (for every
        # row only to sort by it).
        return tests.with_impact(tests.test_cases())

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        test = self.get_object()
        triage = serializers.TriageSerializer(test, data=request.data, partial=True)
        triage.is_valid(raise_exception=True)
        user = request.user
        assert user.is_authenticated, "ReadOrTriage lets only users who may triage write"
        triage_test(test, by=user, via=VIA_API, **triage_values(triage.validated_data))
        fresh = self.get_queryset().get(pk=test.pk)
        return Response(self.get_serializer(fresh).data)

    @extend_schema(
        summary="A test's status and monitor intervals (the timeline chart's data)",
        responses=serializers.TimelineSerializer,
        tags=["test cases"],
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def timeline(self, request: Request, id=None) -> Response:
        test = get_object_or_404(tests.test_case_ids(), pk=self.kwargs["id"])
        data = {
            "test_case": test.pk,
            "status": tests.status_timeline(test),
            "monitors": tests.monitor_timeline(test),
        }
        return Response(serializers.TimelineSerializer(data).data)


# ---------------------------------------------------------------- events


class EventViewSet(ListFiltersOnly, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Time-ordered history, newest first, cursor-paginated. Mounted twice: at the top
    level, and under `test-cases/{test_case_id}/` for one test's history."""

    pagination_class = CursorPagination

    def base_queryset(self, *, test_case_id=None):
        """The history selector's queryset, of one test when `test_case_id` is given."""
        raise NotImplementedError

    def get_queryset(self):
        return self.base_queryset(test_case_id=self.kwargs.get("test_case_id"))

    def list(self, request: Request, *args, **kwargs) -> Response:
        if self.kwargs.get("test_case_id") is not None:
            get_object_or_404(tests.test_case_ids(), pk=self.kwargs["test_case_id"])
        return super().list(request, *args, **kwargs)


@extend_schema_view(list=extend_schema(summary="Status changes, newest first", tags=["history"]))
class StatusChangeViewSet(EventViewSet):
    queryset = history.status_changes()
    serializer_class = serializers.StatusChangeSerializer
    filterset_class = filters.StatusChangeFilterSet

    def base_queryset(self, *, test_case_id=None):
        return history.status_changes(test_case_id=test_case_id)


@extend_schema_view(list=extend_schema(summary="Monitor events, newest first", tags=["history"]))
class MonitorEventViewSet(EventViewSet):
    queryset = history.monitor_events()
    serializer_class = serializers.MonitorEventSerializer
    filterset_class = filters.MonitorEventFilterSet

    def base_queryset(self, *, test_case_id=None):
        return history.monitor_events(test_case_id=test_case_id)


@extend_schema_view(
    list=extend_schema(summary="Investigations with their facts, newest first", tags=["history"]),
    retrieve=extend_schema(summary="One investigation, by Trunk's investigation id", tags=["history"]),
)
class InvestigationViewSet(mixins.RetrieveModelMixin, EventViewSet):
    queryset = investigations.investigation_history()
    serializer_class = serializers.InvestigationSerializer
    filterset_class = filters.InvestigationFilterSet
    lookup_field = "id"

    def base_queryset(self, *, test_case_id=None):
        return investigations.investigation_history(test_case_id=test_case_id)

    @extend_schema(
        summary="Set or clear the verdict on an investigation",
        description='Whether Trunk\'s root cause is right: `confirmed`, `rejected`, or `""` for no '
        "verdict (staff, or users with the `events.change_testcase` permission, as the triage PATCH). "
        "The author and time are kept, and the change is recorded in the test's triage history "
        "and the admin history.",
        request=serializers.VerdictSerializer,
        responses=serializers.InvestigationSerializer,
        tags=["history"],
    )
    @action(detail=True, methods=["put", "patch"], filter_backends=[])
    def verdict(self, request: Request, id=None) -> Response:
        investigation = self.get_object()
        body = serializers.VerdictSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user
        assert user.is_authenticated, "ReadOrTriage lets only users who may triage write"
        set_verdict(investigation, by=user, verdict=body.validated_data["verdict"], via=VIA_API)
        fresh = self.get_queryset().get(pk=investigation.pk)
        return Response(serializers.InvestigationSerializer(fresh).data)


@extend_schema_view(list=extend_schema(summary="Quarantine setting changes, newest first", tags=["history"]))
class QuarantineChangeViewSet(EventViewSet):
    queryset = history.quarantine_changes()
    serializer_class = serializers.QuarantineChangeSerializer
    filterset_class = filters.QuarantineChangeFilterSet

    def base_queryset(self, *, test_case_id=None):
        return history.quarantine_changes(test_case_id=test_case_id)


@extend_schema_view(
    list=extend_schema(
        summary="The triage history: who changed a test's triage, when and what, newest first",
        tags=["history"],
    )
)
class TriageEventViewSet(EventViewSet):
    queryset = targets.triage_events()
    serializer_class = serializers.TriageEventSerializer
    filterset_class = triage_filters.TriageEventFilterSet
    pagination_class = TriageCursorPagination

    def base_queryset(self, *, test_case_id=None):
        return targets.triage_events(test_case_id=test_case_id)


# ---------------------------------------------------------------- monitors


@extend_schema_view(
    list=extend_schema(summary="Monitors, with their active tests now", tags=["monitors"]),
    retrieve=extend_schema(summary="One monitor, by Trunk's monitor id", tags=["monitors"]),
)
class MonitorViewSet(
    ListFiltersOnly, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = monitors.monitor_list()
    serializer_class = serializers.MonitorSerializer
    filterset_class = filters.MonitorFilterSet
    lookup_field = "id"

    def get_queryset(self):
        return monitors.monitor_list()


# ---------------------------------------------------------------- deliveries


@extend_schema_view(
    list=extend_schema(summary="The delivery log, newest received first (staff only)", tags=["deliveries"]),
    retrieve=extend_schema(
        summary="One delivery with its raw body and headers (staff only)", tags=["deliveries"]
    ),
)
class DeliveryViewSet(
    ListFiltersOnly, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Every Svix message as received. Staff only: bodies and headers are raw."""

    queryset = deliveries.deliveries()
    permission_classes = [StaffOnly]
    staff_only = True  # api.schema documents the 403
    filterset_class = filters.DeliveryFilterSet
    pagination_class = DeliveryCursorPagination
    lookup_field = "id"

    def get_queryset(self):
        return deliveries.deliveries(with_body=self.action != "list")

    def get_serializer_class(self):
        if self.action == "retrieve":
            return serializers.DeliveryDetailSerializer
        return serializers.DeliverySerializer


# ---------------------------------------------------------------- unknown URLs


@csrf_exempt  # it changes nothing; without this an unknown PATCH URL is an HTML CSRF 403
def not_found(request: HttpRequest, path: str = "") -> JsonResponse | HttpResponsePermanentRedirect:
    """JSON 404 for any unknown URL under /api/ (Django's would be HTML). A known URL
    missing its trailing slash is redirected like APPEND_SLASH would."""
    if not request.path.endswith("/") and request.method in ("GET", "HEAD"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not not_found:
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(request.path + "/" + (f"?{query}" if query else ""))
    return JsonResponse({"detail": "Not found: no such API endpoint (see /api/docs/)."}, status=404)
