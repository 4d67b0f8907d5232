"""Shared fixtures: a configured webhook secret and a `signed_post` that goes through the
real URL with a real Svix signature."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from svix.webhooks import Webhook

from events import demo

TEST_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCBvZiB0cnVuaw=="
WEBHOOK_URL = "/webhooks/trunk/"


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.TRUNK_WEBHOOK_SECRETS = [TEST_SECRET]
    # No collectstatic in tests: serve assets by name, without the manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _owner_rollups_follow_owner_links(request, monkeypatch):
    """Stand-in for the one line that events/projections.py `_link_owners` needs (to be
    added on the ingest branch, which owns that file): `rollups.refresh_owners(test_id)`
    after the links are written, so that the owner rollups follow a test's new owners.

    Harmless once the line is there (the refresh is idempotent). Then delete this fixture,
    the `without_owner_links_shim` marker, and the xfail of
    tests/events/test_owner_rollups.py::test_owner_links_change_refreshes_the_owner_rollups
    (strict: it fails as soon as the line is in, as a reminder)."""
    if request.node.get_closest_marker("without_owner_links_shim"):
        return
    from events import projections, rollups

    link_owners = projections._link_owners

    def link_owners_then_refresh(test_id, owner_ids, *, replace):
        link_owners(test_id, owner_ids, replace=replace)
        rollups.refresh_owners(test_id)

    monkeypatch.setattr(projections, "_link_owners", link_owners_then_refresh)


def svix_headers(
    body: str, *, msg_id: str | None = None, secret: str = TEST_SECRET, at: datetime | None = None
) -> dict:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, at, body),
    }


@pytest.fixture
def signed_post(client):
    """POST a payload (dict or str) to the receiver with a valid signature."""

    def post(payload, *, msg_id=None, secret=TEST_SECRET, at=None, url=WEBHOOK_URL, extra_headers=None):
        body = payload if isinstance(payload, str) else json.dumps(payload)
        headers = svix_headers(body, msg_id=msg_id, secret=secret, at=at)
        headers.update(extra_headers or {})
        return client.post(url, data=body, content_type="application/json", headers=headers)

    return post


def stale(minutes: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


# A fixed "now" keeps the generated history identical from run to run.
DEMO_NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
def load_demo(db):
    """load_demo(tests=20, days=30): deliver a generated history; returns the plan size."""

    def load(*, tests: int = 20, days: int = 30, seed: int = 7, repositories: int = 2) -> int:
        from tests.events.factories import deliver  # imports Django models: after setup

        messages = demo.generate_history(
            now=DEMO_NOW, tests=tests, days=days, seed=seed, repositories=repositories
        )
        plan = demo.plan_deliveries(messages, seed=seed, id_prefix=f"msg_t{seed}_{tests}_")
        for msg_id, payload in plan:
            deliver(json.dumps(payload), msg_id=msg_id)
        return len(plan)

    return load
