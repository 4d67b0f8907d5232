"""The stats endpoints: summary, status trend, codeowners, monitors, confidence,
quarantine, calibration, fixes."""

from __future__ import annotations

from rest_framework import serializers

from events.metrics import (
    AUTO_OUTCOME_WINDOW,
    BANDS_HELP,
    CALIBRATION_MIN_VERDICTS,
    CONFIDENCE_BANDS,
    NO_OWNER,
    PERIODS,
)
from events.models import Status


class StatsMetaSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=list(PERIODS))
    period_start = serializers.DateTimeField(allow_null=True, help_text="Null for `all`.")
    now = serializers.DateTimeField()
    repository = serializers.IntegerField(allow_null=True, help_text="Repository id the numbers cover.")


class StatusCountSerializer(serializers.Serializer):
    now = serializers.IntegerField(help_text="Tests with this status now.")
    change = serializers.IntegerField(help_text="Count now minus count at the start of the period.")


class StatusCountsSerializer(serializers.Serializer):
    HEALTHY = StatusCountSerializer()
    FLAKY = StatusCountSerializer()
    BROKEN = StatusCountSerializer()


class SummarySerializer(StatsMetaSerializer):
    status = StatusCountsSerializer()
    total = serializers.IntegerField(help_text="Tests known now.")
    quarantined = serializers.IntegerField(help_text="Tests quarantined now.")
    median_time_to_fix_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Median time to fix over the episodes that ended inside the period, except those whose start is unknown (the test was first seen already FLAKY or BROKEN).",
    )


# The per-day series (status trend, transitions, monitor activations, confidence per day)
# have a row or a few a day (730 days for two years of `all`): built directly, as their
# fields would build them (ISO date, int, float, the stored text), they cost about a tenth
# of going field by field, which made the size of the response, not the queries, most of
# these endpoints' time at L. tests/api/test_stats.py checks both give the same.


class TrendDaySerializer(serializers.Serializer):
    day = serializers.DateField(help_text="UTC day.")
    HEALTHY = serializers.IntegerField()
    FLAKY = serializers.IntegerField()
    BROKEN = serializers.IntegerField()

    def to_representation(self, instance: dict) -> dict:
        return {
            "day": instance["day"].isoformat(),
            "HEALTHY": int(instance["HEALTHY"]),
            "FLAKY": int(instance["FLAKY"]),
            "BROKEN": int(instance["BROKEN"]),
        }


class TransitionDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    new_status = serializers.ChoiceField(choices=Status.choices)
    count = serializers.IntegerField()

    def to_representation(self, instance: dict) -> dict:
        return {
            "day": instance["day"].isoformat(),
            "new_status": str(instance["new_status"]),
            "count": int(instance["count"]),
        }


class StatusTrendSerializer(StatsMetaSerializer):
    series = TrendDaySerializer(many=True, help_text="Tests by status at the end of each day.")
    transitions = TransitionDaySerializer(many=True, help_text="Status changes per day by new status.")


class OwnerStatsSerializer(serializers.Serializer):
    owner = serializers.CharField(help_text=f'As first seen; "{NO_OWNER}" for tests without owners.')
    owner_filter = serializers.CharField(
        help_text="The `owner` value of /test-cases/ that lists these tests."
    )
    tests = serializers.IntegerField()
    flaky = serializers.IntegerField()
    broken = serializers.IntegerField()
    quarantined = serializers.IntegerField()
    median_time_to_fix_seconds = serializers.FloatField(allow_null=True)
    oldest_open_since = serializers.DateTimeField(
        allow_null=True, help_text="Start of the oldest open episode of a test FLAKY or BROKEN now."
    )
    relapses = serializers.IntegerField(help_text="Episodes starting in the period within 30 days of a fix.")


class CodeownersSerializer(StatsMetaSerializer):
    results = OwnerStatsSerializer(many=True)


class ActivationDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    type = serializers.CharField(help_text="Monitor type.")
    count = serializers.IntegerField()

    def to_representation(self, instance: dict) -> dict:  # built directly: see above
        return {
            "day": instance["day"].isoformat(),
            "type": str(instance["type"]),
            "count": int(instance["count"]),
        }


class ActivePairSerializer(serializers.Serializer):
    monitor_id = serializers.UUIDField()
    monitor_type = serializers.CharField(source="monitor.type")
    test_case = serializers.UUIDField(source="test_case_id")
    test_case_name = serializers.CharField(source="test_case.name")
    since = serializers.DateTimeField(
        source="active_since",
        help_text="Active since: the first `active` event of the pair's unbroken run of `active` events.",
    )


class ResolveTimeSerializer(serializers.Serializer):
    type = serializers.CharField()
    median_time_to_resolve_seconds = serializers.FloatField()


class FlappingSerializer(serializers.Serializer):
    monitor_id = serializers.UUIDField()
    type = serializers.CharField()
    test_case = serializers.UUIDField(source="test_case_id")
    test_case_name = serializers.CharField(source="test_case__name")
    activations = serializers.IntegerField()


class MonitorStatsSerializer(StatsMetaSerializer):
    activations = ActivationDaySerializer(many=True, help_text="`active` events per day and monitor type.")
    active_now_total = serializers.IntegerField(help_text="(monitor, test) pairs active now.")
    active_now = ActivePairSerializer(many=True, help_text="The newest active pairs (at most 100).")
    median_time_to_resolve = ResolveTimeSerializer(many=True)
    flapping = FlappingSerializer(
        many=True, help_text="Pairs activated more than once in the period (top 20)."
    )


class HistogramBinSerializer(serializers.Serializer):
    start = serializers.FloatField()
    end = serializers.FloatField(help_text="Exclusive, except 1.0 in the last bin.")
    count = serializers.IntegerField()


class BandCountsSerializer(serializers.Serializer):
    high = serializers.IntegerField()
    medium = serializers.IntegerField()
    low = serializers.IntegerField()


class ConfidenceDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    count = serializers.IntegerField()
    mean_confidence = serializers.FloatField()

    def to_representation(self, instance: dict) -> dict:  # built directly: see above
        return {
            "day": instance["day"].isoformat(),
            "count": int(instance["count"]),
            "mean_confidence": float(instance["mean_confidence"]),
        }


class FactTypeSerializer(serializers.Serializer):
    fact_type = serializers.CharField()
    count = serializers.IntegerField()
    mean_confidence = serializers.FloatField(allow_null=True)


class ConfidenceSerializer(StatsMetaSerializer):
    total = serializers.IntegerField(help_text="Investigations in the period.")
    histogram = HistogramBinSerializer(many=True, help_text="Overall confidence in tenths.")
    bands = BandCountsSerializer()
    over_time = ConfidenceDaySerializer(many=True)
    facts_by_type = FactTypeSerializer(many=True)


class QuarantineStatsSerializer(StatsMetaSerializer):
    owner = serializers.CharField(
        allow_null=True, help_text="The owner filter the numbers cover (`none`: tests without owners)."
    )
    quarantined = serializers.IntegerField(help_text="Tests quarantined now.")
    median_age_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Median quarantine age (now - quarantined since) of the tests quarantined now; "
        "null when none is.",
    )
    ready_to_release = serializers.IntegerField(
        help_text="Tests quarantined now, HEALTHY for at least `ready_to_release_healthy_days` days, "
        "with no active monitor."
    )
    ready_to_release_healthy_days = serializers.IntegerField(
        help_text="How long a quarantined test must have been HEALTHY to be ready to release."
    )


class CalibrationBinSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="0 to 9: the tenth [low, high).")
    low = serializers.FloatField()
    high = serializers.FloatField(help_text="Exclusive, except 1.0 in the last bin.")
    count = serializers.IntegerField(help_text="Investigations with a verdict in this bin.")
    mean_confidence = serializers.FloatField(allow_null=True, help_text="Null without a verdict.")
    confirmed = serializers.IntegerField()
    share_confirmed = serializers.FloatField(
        allow_null=True, help_text="confirmed / count, 0 to 1; null without a verdict."
    )


class CalibrationFactTypeSerializer(serializers.Serializer):
    fact_type = serializers.CharField()
    verdicts = serializers.IntegerField(
        help_text="Facts of this type with a confidence, on investigations with a verdict."
    )
    brier_score = serializers.FloatField(allow_null=True, help_text="With the facts' own confidence.")
    ece = serializers.FloatField(allow_null=True)
    enough = serializers.BooleanField()
    needed = serializers.IntegerField()


class AutoOutcomeSerializer(serializers.Serializer):
    # Text, not a choice: the same set as InvestigationSerializer's confidence_band would
    # be a second enum name in the schema.
    band = serializers.CharField(help_text=f"Confidence band: {', '.join(CONFIDENCE_BANDS)} ({BANDS_HELP}).")
    fixed = serializers.IntegerField(
        help_text="The episode open at the investigation's event time ended within 14 days after it."
    )
    not_fixed = serializers.IntegerField(help_text="It did not, and the 14 days have passed.")
    too_recent = serializers.IntegerField(help_text="Not fixed yet, and the 14 days have not passed.")
    no_open_episode = serializers.IntegerField(
        help_text="The test had no open episode at the investigation's event time."
    )
    decided = serializers.IntegerField(help_text="fixed + not_fixed.")
    share_fixed = serializers.FloatField(allow_null=True, help_text="fixed / decided; null without any.")


class CalibrationSerializer(StatsMetaSerializer):
    verdicts = serializers.IntegerField(
        help_text="Investigations of the period (event time) with a verdict (confirmed or rejected)."
    )
    min_verdicts = serializers.IntegerField(help_text="The bound below which the dashboard draws nothing.")
    enough = serializers.BooleanField(help_text=f"verdicts >= {CALIBRATION_MIN_VERDICTS}.")
    needed = serializers.IntegerField(help_text="Verdicts still needed to reach the bound (0 when enough).")
    bins = CalibrationBinSerializer(
        many=True, help_text="The reliability diagram: Trunk's confidence in tenths."
    )
    brier_score = serializers.FloatField(
        allow_null=True,
        help_text="Mean of (confidence - outcome)^2, outcome 1 confirmed, 0 rejected; null without a verdict.",
    )
    ece = serializers.FloatField(
        allow_null=True,
        help_text="Expected calibration error: |share confirmed - mean confidence| per bin, weighted by count.",
    )
    fact_types = CalibrationFactTypeSerializer(
        many=True, help_text="The same per fact type, most verdicts first."
    )
    auto_outcome = AutoOutcomeSerializer(
        many=True,
        help_text=f"An automatic outcome, not a verdict: fixed within {AUTO_OUTCOME_WINDOW.days} days, per confidence band.",
    )


# ---------------------------------------------------------------- fixes that held


class CurvePointSerializer(serializers.Serializer):
    day = serializers.IntegerField(help_text="Whole days since the fix (0 to 90).")
    surviving = serializers.FloatField(
        help_text="Kaplan-Meier estimate of the share of fixes still without a new episode after `day` days (0 to 1)."
    )
    at_risk = serializers.IntegerField(
        help_text="Fixes still observed on that day (no new episode yet, not censored)."
    )

    def to_representation(self, instance) -> dict:  # 91 points a curve: built directly, see above
        return {
            "day": int(instance.day),
            "surviving": float(instance.surviving),
            "at_risk": int(instance.at_risk),
        }


class FixesSerializer(StatsMetaSerializer):
    owner = serializers.CharField(
        allow_null=True,
        help_text="The `owner` asked for (its tests only: the counts and `owner_curve`), null without one.",
    )
    verified = serializers.IntegerField(
        help_text="Fixes (closed episodes) that ended inside the period after which the test stayed out of any new episode for 14 days."
    )
    relapsed = serializers.IntegerField(
        help_text="Fixes that ended inside the period followed by a new episode within 14 days."
    )
    pending = serializers.IntegerField(
        help_text="Fixes that ended inside the period less than 14 days ago, without a new episode yet."
    )
    verification_rate = serializers.FloatField(
        allow_null=True, help_text="verified / (verified + relapsed); null without either."
    )
    curve = CurvePointSerializer(
        many=True,
        help_text="The relapse curve over all closed episodes of every owner (not only the period), days 0 to 90; empty without any.",
    )
    owner_curve = CurvePointSerializer(
        many=True, allow_null=True, help_text="The same over the owner's fixes; null without `owner`."
    )
