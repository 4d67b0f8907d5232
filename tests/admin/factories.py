"""Admin test data, made through the real path: signed Svix deliveries into `ingest_delivery`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from events.demo.payloads import (
    FakeRepository,
    FakeTest,
    investigation_completed,
    monitor_status_changed,
    quarantining_setting_changed,
    status_changed,
)
from events.models import Delivery
from events.receiver.receive import Result, ingest_delivery
from tests.conftest import svix_headers

CHECKOUT = FakeRepository(
    uuid.UUID("6f1c2a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f"), "https://github.com/acme/checkout"
)
WEB = FakeRepository(uuid.UUID("0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"), "https://github.com/acme/web")
PASS_ON_RETRY = uuid.UUID("0b6f1d7e-5a43-4c1e-9a57-2f7d2c1e8a10")
FAILURE_RATE = uuid.UUID("1c7a2e8f-6b54-4d2f-8b68-3a8e3d2f9b21")
OWNER_SETS = (["@Acme/Web"], ["@acme/payments", "@acme/web"], [])
BASE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def ingest(payload: dict[str, Any] | str, *, msg_id: str | None = None) -> Delivery:
    """Sign and ingest one payload; the stored delivery."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    result = ingest_delivery(body.encode(), svix_headers(body, msg_id=msg_id))
    assert result.result is Result.STORED, result
    return result.delivery


def make_test(i: int = 0, **overrides: Any) -> FakeTest:
    fields: dict[str, Any] = {
        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"flakyboard-admin-test-{i}"),
        "name": f"test_refund_{i}",
        "classname": f"tests.payments.test_refunds_{i % 5}.RefundTests",
        "file_path": f"tests/payments/test_refunds_{i % 5}.py",
        "repository": CHECKOUT if i % 2 == 0 else WEB,
        "codeowners": list(OWNER_SETS[i % 3]),
        "variant": "" if i % 2 == 0 else "linux",
        "quarantined": i % 4 == 0,
        "failure_rate_last_7d": 0.05 * (i % 7),
        "pull_requests_impacted_last_7d": i % 9,
    }
    fields.update(overrides)
    return FakeTest(**fields)


def flaky(test: FakeTest, at: datetime, *, previous: str = "HEALTHY", new: str = "FLAKY") -> Delivery:
    return ingest(
        status_changed(
            test, at=at, previous=previous, new=new, monitor_id=PASS_ON_RETRY, monitor_type="pass_on_retry"
        )
    )


def investigate(
    test: FakeTest, at: datetime, *, confidence: float = 0.9, summary: str = "Race in refunds"
) -> Delivery:
    return ingest(
        investigation_completed(
            test,
            at=at,
            investigation_id=uuid.uuid4(),
            confidence=confidence,
            markdown_summary=summary,
            failure_message="AssertionError: 1 != 2",
            facts=[
                {"fact_type": "GIT_BLAME", "content": "Changed in abc123", "confidence": 0.7},
                {"fact_type": "CI_LOGS", "content": "Timeout after 30s", "confidence": 0.5},
            ],
        )
    )


def _event(test: FakeTest, k: int, at: datetime, status: list[str]) -> dict[str, Any]:
    """The k-th event of a test: status changes, monitor events, investigations and
    quarantine changes in turn."""
    kind = k % 4
    if kind == 0:
        previous = status[0]
        status[0] = {"HEALTHY": "FLAKY", "FLAKY": "BROKEN", "BROKEN": "HEALTHY"}[previous]
        return status_changed(
            test,
            at=at,
            previous=previous,
            new=status[0],
            monitor_id=PASS_ON_RETRY,
            monitor_type="pass_on_retry",
        )
    if kind == 1:
        return monitor_status_changed(
            test,
            at=at,
            monitor_id=FAILURE_RATE,
            monitor_type="failure_rate",
            status="active" if k % 8 == 1 else "resolved",
            evidence={"failure_rate": 0.3, "window": "7d"},
        )
    if kind == 2:
        return investigation_completed(
            test,
            at=at,
            investigation_id=uuid.uuid4(),
            confidence=(k % 10) / 10 + 0.05,
            markdown_summary=f"**Finding {k}**: shared state between tests",
            failure_message="AssertionError",
            facts=[{"fact_type": "GIT_BLAME", "content": "blame", "confidence": 0.6}],
        )
    return quarantining_setting_changed(
        test,
        at=at,
        previous="UNSPECIFIED",
        updated="ALWAYS_QUARANTINE",
        actor_email="dev@example.com",
        actor_name="Dev Eloper",
        reason="too flaky",
    )


def make_history(n_tests: int, events_per_test: int, *, first: int = 0) -> list[FakeTest]:
    """`n_tests` tests with `events_per_test` events each (all four types in turn),
    ingested as signed deliveries. Event times are distinct and increase per test."""
    tests = []
    for i in range(first, first + n_tests):
        test = make_test(i)
        status = ["HEALTHY"]
        for k in range(events_per_test):
            at = BASE + timedelta(minutes=i) + timedelta(hours=k)
            ingest(_event(test, k, at, status))
        tests.append(test)
    return tests
