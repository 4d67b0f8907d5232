"""Shared fixtures: a configured webhook secret and a `signed_post` that goes through the
real URL with a real Svix signature."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from svix.webhooks import Webhook

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
