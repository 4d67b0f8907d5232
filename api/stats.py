"""The stats endpoints (/api/v1/stats/...): the numbers behind each dashboard chart and
section, from the same dashboard.selectors functions, with the dashboard's `period`,
`repository` (and, where it applies, `owner`) parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from dashboard.selectors import (
    calibration,
    investigations,
    monitors,
    owners,
    quarantine,
    status,
    targets,
)
from dashboard.selectors import fixes as fix_selectors
from dashboard.selectors.common import NO_OWNER_PARAM
from events.metrics import DEFAULT_PERIOD, HISTOGRAM_BINS, PERIODS, Period, band_counts, default_targets

from . import filters, serializers

LIST_ACTIONS = frozenset({"list"})
_View = TypeVar("_View", bound=Callable[..., Any])


class StatsParams(forms.Form):
    # null_label and null_value are optional (django-filter's settings); its stubs require them.
    period = filters.CaseInsensitiveChoiceField(  # type: ignore[call-arg]
        choices=[(p, p) for p in PERIODS], required=False
    )
    repository = filters.RepositoryField(required=False)


STATS_PARAMETERS = [
    OpenApiParameter(
        "period",
        OpenApiTypes.STR,
        enum=list(PERIODS),
        default=DEFAULT_PERIOD,
        description="The dashboard's period: events within the last 7, 30 or 90 days, or all. "
        "Current-state numbers are always now; only their change uses the period.",
    ),
    OpenApiParameter(
        "repository",
        filters.REPOSITORY_SCHEMA,
        description=filters.REPOSITORY_HELP + " Without it: every repository.",
    ),
]


def stats_schema(
    summary: str, response: Any, parameters: list[OpenApiParameter] | None = None
) -> Callable[[_View], _View]:
    return extend_schema(
        summary=summary,
        parameters=[*STATS_PARAMETERS, *(parameters or [])],
        responses=response,
        tags=["stats"],
    )


class OwnerStatsParams(StatsParams):
    """The stats parameters and `owner` (any case, or `none`: tests without owners)."""

    owner = forms.CharField(required=False, max_length=255)


def owner_key(owner: str | None) -> str | None:
    """The owner key an `owner` parameter names: an owner in any case, `none` for tests
    without owners ("", as /test-cases/), or None without the parameter."""
    if not owner:
        return None
    return "" if owner.casefold() == NO_OWNER_PARAM else owner.casefold()


OWNER_PARAMETER = OpenApiParameter(
    "owner", OpenApiTypes.STR, description=filters.OWNER_HELP + " Without it: every owner."
)


class StatsViewSet(viewsets.ViewSet):
    """The numbers behind each dashboard chart, from the same dashboard.selectors functions,
    with the same `period` and `repository` parameters (an invalid one is a 400 here,
    where the dashboard falls back to its default)."""

    def _params(self, request: Request, form_class: type[StatsParams] = StatsParams) -> dict:
        form = form_class(request.query_params)
        if not form.is_valid():
            raise ValidationError(
                {name: [str(error) for error in errors] for name, errors in form.errors.items()}
            )
        period = Period(name=form.cleaned_data["period"] or DEFAULT_PERIOD, now=timezone.now())
        extra = {
            name: form.cleaned_data[name] for name in form.fields if name not in ("period", "repository")
        }
        return {"period": period, "repository": form.cleaned_data["repository"], **extra}

    @staticmethod
    def _meta(params: dict) -> dict:
        period = params["period"]
        return {
            "period": period.name,
            "period_start": period.start,
            "now": period.now,
            "repository": params["repository"],
        }

    @stats_schema(
        "Tests by status now, change over the period, median time to fix", serializers.SummarySerializer
    )
    @action(detail=False, methods=["get"])
    def summary(self, request: Request) -> Response:
        params = self._params(request)
        data = status.status_summary(**params)
        data["median_time_to_fix_seconds"] = serializers.seconds(status.median_time_to_fix(**params))
        return Response(serializers.SummarySerializer({**self._meta(params), **data}).data)

    @stats_schema("Tests by status per day, and status changes per day", serializers.StatusTrendSerializer)
    @action(detail=False, methods=["get"], url_path="status-trend")
    def status_trend(self, request: Request) -> Response:
        params = self._params(request)
        data = {
            "series": status.status_trend(**params),
            "transitions": status.transitions_per_day(**params),
        }
        return Response(serializers.StatusTrendSerializer({**self._meta(params), **data}).data)

    @stats_schema(
        "Per codeowner: tests, flaky, broken, time to fix, relapses", serializers.CodeownersSerializer
    )
    @action(detail=False, methods=["get"])
    def codeowners(self, request: Request) -> Response:
        params = self._params(request)
        rows = [
            {
                **row,
                "owner_filter": row["owner_key"] or NO_OWNER_PARAM,
                "median_time_to_fix_seconds": serializers.seconds(row["median_time_to_fix"]),
            }
            for row in owners.owner_stats(**params)
        ]
        return Response(serializers.CodeownersSerializer({**self._meta(params), "results": rows}).data)

    @stats_schema(
        "Per codeowner: triage and fix targets, their attainment, episodes breaching now",
        serializers.TargetsStatsSerializer,
        [OWNER_PARAMETER],
    )
    @action(detail=False, methods=["get"])
    def targets(self, request: Request) -> Response:
        params = self._params(request, OwnerStatsParams)
        key = owner_key(params.pop("owner"))
        rows = targets.owner_target_rows(**params, owner_key=key)
        data = serializers.targets_data(rows, default_targets())
        return Response(serializers.TargetsStatsSerializer({**self._meta(params), **data}).data)

    @stats_schema(
        "Monitor activations, active pairs, time to resolve, flapping", serializers.MonitorStatsSerializer
    )
    @action(detail=False, methods=["get"])
    def monitors(self, request: Request) -> Response:
        params = self._params(request)
        data = monitors.monitor_summary(**params)
        active = data["active_now"]
        data.update(
            active_now_total=monitors.active_monitor_count(repository=params["repository"]),
            active_now=list(active[:100]),
            median_time_to_resolve=[
                {"type": kind, "median_time_to_resolve_seconds": serializers.seconds(median)}
                for kind, median in sorted(data["median_time_to_resolve"].items())
            ],
        )
        return Response(serializers.MonitorStatsSerializer({**self._meta(params), **data}).data)

    @stats_schema(
        "Investigation confidence: histogram, bands, per day, facts by type", serializers.ConfidenceSerializer
    )
    @action(detail=False, methods=["get"])
    def confidence(self, request: Request) -> Response:
        params = self._params(request)
        data = investigations.investigation_summary(**params)
        histogram = data["histogram"]
        data.update(
            histogram=[
                # The last bin's end is 1.0 (included): its upper bound is open in the filter.
                {"start": start, "end": end if end is not None else 1.0, "count": n}
                for (start, end), n in zip(HISTOGRAM_BINS, histogram, strict=True)
            ],
            bands=band_counts(histogram),
        )
        return Response(serializers.ConfidenceSerializer({**self._meta(params), **data}).data)

    @stats_schema(
        "Quarantine: tests quarantined now, their median quarantine age, how many are ready to release",
        serializers.QuarantineStatsSerializer,
        [OWNER_PARAMETER],
    )
    @action(detail=False, methods=["get"])
    def quarantine(self, request: Request) -> Response:
        # Every figure is as of now: the period is accepted (like every stats endpoint) but
        # changes nothing.
        params = self._params(request, OwnerStatsParams)
        owner = (params["owner"] or "").strip().casefold() or None
        summary = quarantine.quarantine_summary(
            repository=params["repository"], owner=owner, now=params["period"].now
        )
        data = {
            "owner": owner,
            "quarantined": summary.quarantined,
            "median_age_seconds": serializers.seconds(summary.median_age),
            "ready_to_release": summary.ready_to_release,
            "ready_to_release_healthy_days": summary.ready_days,
        }
        return Response(serializers.QuarantineStatsSerializer({**self._meta(params), **data}).data)

    @stats_schema(
        "Is Trunk's AI right? Calibration against verdicts, per fact type, and fixed within 14 days",
        serializers.CalibrationSerializer,
    )
    @action(detail=False, methods=["get"])
    def calibration(self, request: Request) -> Response:
        params = self._params(request)
        data = calibration.calibration(**params)
        return Response(serializers.CalibrationSerializer({**self._meta(params), **data}).data)

    @stats_schema(
        "Fixes that held: verified, relapsed and pending fixes, the verification rate, the relapse curve",
        serializers.FixesSerializer,
        [OWNER_PARAMETER],
    )
    @action(detail=False, methods=["get"])
    def fixes(self, request: Request) -> Response:
        params = self._params(request, OwnerStatsParams)
        owner = params.pop("owner") or None
        key = owner_key(owner)
        period, repository = params["period"], params["repository"]
        data = {
            "owner": owner,
            **fix_selectors.fix_counts(period=period, repository=repository, owner_key=key),
            "curve": fix_selectors.relapse_curve(now=period.now, repository=repository),
            "owner_curve": None
            if key is None
            else fix_selectors.relapse_curve(now=period.now, repository=repository, owner_key=key),
        }
        return Response(serializers.FixesSerializer({**self._meta(params), **data}).data)
