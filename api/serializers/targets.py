"""Owners' targets and the triage history (METRICS "Time to triage", "Owner targets")."""

from __future__ import annotations

from rest_framework import serializers

from dashboard.selectors.common import NO_OWNER_PARAM
from dashboard.selectors.targets import OwnerTargets
from events.metrics import NO_OWNER, Targets
from events.models import TriageEvent

from .base import usernames_shown
from .stats import StatsMetaSerializer


class TriageEventSerializer(serializers.ModelSerializer):
    """One triage action on a test: who, when, where from, what changed."""

    test_case = serializers.UUIDField(
        source="test_case_id", read_only=True, help_text="Trunk's test case id."
    )
    test_case_name = serializers.CharField(source="test_case.name", read_only=True)
    by = serializers.IntegerField(
        source="by_id", read_only=True, allow_null=True, help_text="User id (null: deleted)."
    )
    by_username = serializers.CharField(
        source="by.username",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="Username of the author (null: deleted, or an anonymous request on a public dashboard).",
    )
    investigation = serializers.UUIDField(
        source="investigation_id", read_only=True, allow_null=True, help_text="Set for a verdict."
    )

    class Meta:
        model = TriageEvent
        fields = [
            "id",
            "test_case",
            "test_case_name",
            "at",
            "by",
            "by_username",
            "via",
            "state_from",
            "state_to",
            "assignee_changed",
            "assignee_from",
            "assignee_to",
            "note_edited",
            "investigation",
            "verdict_from",
            "verdict_to",
            "message",
        ]
        extra_kwargs = {
            "at": {"help_text": "When the action was made (flakyboard's clock)."},
            "via": {"help_text": "`dashboard`, `API`, `admin`, or an admin action."},
            "state_from": {"help_text": "Triage state before; empty when unchanged."},
            "state_to": {"help_text": "Triage state after; empty when unchanged."},
            "assignee_from": {"help_text": "Username before (empty: nobody or unchanged)."},
            "assignee_to": {"help_text": "Username after (empty: nobody or unchanged)."},
            "verdict_from": {"help_text": "Verdict before (`confirmed`, `rejected`, empty: none)."},
            "verdict_to": {"help_text": "Verdict after (`confirmed`, `rejected`, empty: none)."},
        }

    def to_representation(self, instance: TriageEvent) -> dict:
        data = super().to_representation(instance)
        if not usernames_shown(self.context):  # staff account names are internal
            data["by_username"] = None
        return data


class AttainmentSerializer(serializers.Serializer):
    met = serializers.IntegerField(help_text="Episodes started in the period that met the target.")
    missed = serializers.IntegerField(
        help_text="Episodes started in the period whose target time passed without it."
    )
    share = serializers.FloatField(allow_null=True, help_text="met / (met + missed), 0..1; null without any.")


class TargetDaysSerializer(serializers.Serializer):
    triage_days = serializers.IntegerField()
    fix_days = serializers.IntegerField()
    own = serializers.BooleanField(help_text="The owner's own targets (admin), not the defaults.")


class OwnerTargetsSerializer(serializers.Serializer):
    owner = serializers.CharField(help_text=f'As first seen; "{NO_OWNER}" for tests without owners.')
    owner_filter = serializers.CharField(help_text="The `owner` value of /test-cases/ that lists its tests.")
    targets = TargetDaysSerializer()
    triage = AttainmentSerializer(help_text="Triaged within the triage target of the episode's start.")
    fix = AttainmentSerializer(help_text="Fixed (episode ended) within the fix target of its start.")
    breaching_now = serializers.IntegerField(
        help_text="Open episodes past the fix target, or not triaged past the triage target."
    )


class TargetsStatsSerializer(StatsMetaSerializer):
    default_targets = TargetDaysSerializer(
        help_text="FLAKYBOARD_TARGET_TRIAGE_DAYS / _FIX_DAYS (own: false)."
    )
    results = OwnerTargetsSerializer(many=True)


def targets_data(rows: list[OwnerTargets], default: Targets) -> dict:
    """The targets stats' body (without the period's meta) from owner_target_rows."""
    return {
        "default_targets": {**vars(default), "own": False},
        "results": [
            {
                "owner": row.owner,
                "owner_filter": row.owner_key or NO_OWNER_PARAM,
                "targets": {**vars(row.targets), "own": row.own},
                "triage": {
                    "met": row.triage_met,
                    "missed": row.triage_missed,
                    "share": row.triage_attainment,
                },
                "fix": {"met": row.fix_met, "missed": row.fix_missed, "share": row.fix_attainment},
                "breaching_now": row.breaching,
            }
            for row in rows
        ],
    }
