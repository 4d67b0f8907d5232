"""Repositories: the brief form nested in each test, and the list with test counts."""

from __future__ import annotations

from rest_framework import serializers

from events.models import Repository

from .base import OptionalURLField


class RepositoryBriefSerializer(serializers.ModelSerializer):
    html_url = OptionalURLField(help_text="The repository's URL; null when Trunk did not send one.")

    class Meta:
        model = Repository
        fields = ["id", "trunk_id", "name", "html_url"]
        extra_kwargs = {
            "id": {
                "help_text": "flakyboard's id (Trunk gives none for repositories seen only in v1 events)."
            },
            "trunk_id": {"help_text": "Trunk's repository UUID (v2 events); null when unknown."},
        }


class RepositorySerializer(RepositoryBriefSerializer):
    test_count = serializers.IntegerField(read_only=True, help_text="Tests known in the repository.")
    flaky_count = serializers.IntegerField(read_only=True, help_text="Tests FLAKY now.")
    broken_count = serializers.IntegerField(read_only=True, help_text="Tests BROKEN now.")
    quarantined_count = serializers.IntegerField(read_only=True, help_text="Tests quarantined now.")

    class Meta(RepositoryBriefSerializer.Meta):
        fields = [
            *RepositoryBriefSerializer.Meta.fields,
            "test_count",
            "flaky_count",
            "broken_count",
            "quarantined_count",
        ]
