"""Test helpers: deliver payloads through the real ingest path with real signatures."""

import json
import uuid
from datetime import UTC, datetime

from events.demo import payloads
from events.receiver.receive import IngestResult, ingest_delivery
from tests.conftest import svix_headers

REPO = payloads.FakeRepository(
    uuid.UUID("6f1c2a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f"), "https://github.com/acme/checkout"
)
MONITOR = uuid.UUID("0b6f1d7e-5a43-4c1e-9a57-2f7d2c1e8a10")


def fake_test(n: int = 1, **overrides) -> payloads.FakeTest:
    fields = {
        "id": uuid.UUID(int=n),
        "name": f"test_case_{n}",
        "classname": f"tests.suite.Test{n}",
        "file_path": f"tests/suite/test_{n}.py",
        "repository": REPO,
        "codeowners": ["@acme/payments"],
    }
    fields.update(overrides)
    return payloads.FakeTest(**fields)


def deliver(payload, *, msg_id: str | None = None) -> IngestResult:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return ingest_delivery(body.encode(), svix_headers(body, msg_id=msg_id))


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 5, day, hour, tzinfo=UTC)
