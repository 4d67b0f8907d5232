"""Shared fixtures: a configured webhook secret and a `signed_post` that goes through the
real URL with a real Svix signature."""

import base64
import hashlib
import hmac
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
    # Pages are not shared between readers here: a test writes and reads within a second,
    # where a shared page would still show the state before its write (by design:
    # dashboard/shared_pages.py). tests/dashboard/test_shared_pages.py turns it on.
    settings.FLAKYBOARD_SHARED_PAGE_SECONDS = 0
    # No collectstatic in tests: serve assets by name, without the manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def svix_headers(
    body: str | bytes, *, msg_id: str | None = None, secret: str = TEST_SECRET, at: datetime | None = None
) -> dict:
    """Headers that sign `body` as Svix does: with the svix library for text, and for
    bytes that are not UTF-8 (which the library cannot sign) with the same HMAC by hand."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    if isinstance(body, bytes):
        key = base64.b64decode(secret.removeprefix("whsec_") + "==")
        signed = f"{msg_id}.{int(at.timestamp())}.".encode() + body
        signature = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    else:
        signature = Webhook(secret).sign(msg_id, at, body)
    return {"svix-id": msg_id, "svix-timestamp": str(int(at.timestamp())), "svix-signature": signature}


@pytest.fixture
def signed_post(client):
    """POST a payload (dict, str or bytes) to the receiver with a valid signature."""

    def post(payload, *, msg_id=None, secret=TEST_SECRET, at=None, url=WEBHOOK_URL, extra_headers=None):
        body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
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


@pytest.fixture(autouse=True, scope="session")
def _not_a_web_server():
    """The test process must not become a web server (flakyboard.wsgi calls
    bound_database_waits: statement timeouts and the stall breaker would then act on
    every later test). Tests that need one start bin/start-server."""
    yield
    from flakyboard import db

    assert db._bounds is None, "a test imported flakyboard.wsgi: use django.core.wsgi.get_wsgi_application()"
