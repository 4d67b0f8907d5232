"""Build Trunk payloads (the inverse of `parsing`): used by the demo generator, the
`send_webhook` examples, benchmarks and tests, so they all send the same shapes that
../shared/trunk-webhooks.md documents."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeRepository:
    id: uuid.UUID
    html_url: str

    def as_payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "html_url": self.html_url}


@dataclass
class FakeTest:
    id: uuid.UUID
    name: str
    classname: str
    file_path: str
    repository: FakeRepository | None
    codeowners: list[str] = field(default_factory=list)
    variant: str = ""
    quarantined: bool = False
    failure_rate_last_7d: float = 0.0
    pull_requests_impacted_last_7d: int = 0

    @property
    def parent(self) -> str:
        return self.file_path.rsplit("/", 1)[0] if "/" in self.file_path else ""

    def as_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "classname": self.classname,
            "parent": self.parent,
            "file_path": self.file_path,
            "html_url": f"https://app.trunk.io/demo/flaky-tests/test/{self.id}",
            "codeowners": list(self.codeowners),
            "quarantined": self.quarantined,
            "variant": self.variant,
            "failure_rate_last_7d": round(self.failure_rate_last_7d, 4),
            "pull_requests_impacted_last_7d": self.pull_requests_impacted_last_7d,
        }

    def as_v1_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "file_path": self.file_path,
            "html_url": f"https://app.trunk.io/demo/flaky-tests/test/{self.id}",
            "codeowners": list(self.codeowners),
            "quarantine": self.quarantined,
            "variant": self.variant,
            "test_suite": self.parent,  # v1 names the parent suite `test_suite`
            "repository": {"html_url": self.repository.html_url} if self.repository else None,
            "failure_rate_last_7d": round(self.failure_rate_last_7d, 4),
            "pull_requests_impacted_last_7d": self.pull_requests_impacted_last_7d,
        }

    def _common(self) -> dict[str, Any]:
        body: dict[str, Any] = {"test_case": self.as_payload()}
        if self.repository is not None:
            body["repository"] = self.repository.as_payload()
        return body


def status_changed(
    test: FakeTest,
    *,
    at: datetime,
    previous: str,
    new: str,
    monitor_id: uuid.UUID,
    monitor_type: str,
    monitor_status: str = "active",
) -> dict[str, Any]:
    return {
        "type": "v2.test_case.status_changed",
        "timestamp": iso(at),
        "previous_status": previous,
        "new_status": new,
        "triggered_by": {
            "monitor_id": str(monitor_id),
            "monitor_type": monitor_type,
            "monitor_status": monitor_status,
        },
        **test._common(),
    }


def status_changed_v1(
    test: FakeTest, *, at: datetime, previous: str, new: str, reason: str = ""
) -> dict[str, Any]:
    """The legacy v1 shape, without a top-level `type` (as some senders do)."""
    return {
        "status_change": {
            "previous_status": previous.lower(),
            "current_status": {"value": new.lower(), "reason": reason, "timestamp": iso(at)},
        },
        "test_case": {
            **test.as_v1_payload(),
            "status": {"value": new.lower(), "reason": reason, "timestamp": iso(at)},
        },
    }


def monitor_status_changed(
    test: FakeTest,
    *,
    at: datetime,
    monitor_id: uuid.UUID,
    monitor_type: str,
    status: str,
    evidence: Any = None,
) -> dict[str, Any]:
    return {
        "type": "test_case.monitor_status_changed",
        "timestamp": iso(at),
        "monitor": {"id": str(monitor_id), "type": monitor_type, "status": status},
        "evidence": evidence if evidence is not None else {},
        **test._common(),
    }


def investigation_completed(
    test: FakeTest,
    *,
    at: datetime,
    investigation_id: uuid.UUID,
    confidence: float,
    markdown_summary: str,
    failure_message: str,
    facts: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "type": "test_case.investigation_completed",
        "investigation_id": str(investigation_id),
        "confidence": round(confidence, 3),
        "created_at": iso(at),
        "markdown_summary": markdown_summary,
        "failure_message": failure_message,
        "facts": facts,
        **test._common(),
    }


def quarantining_setting_changed(
    test: FakeTest,
    *,
    at: datetime,
    previous: str,
    updated: str,
    actor_email: str,
    actor_name: str,
    reason: str = "",
) -> dict[str, Any]:
    return {
        "type": "test_case.quarantining_setting_changed",
        "quarantine_setting_changed": {
            "actor": {"email": actor_email, "full_name": actor_name},
            "previous_quarantining_setting": previous,
            "updated_quarantining_setting": updated,
            "reason": reason,
            "timestamp": iso(at),
        },
        "test_case": test.as_v1_payload(),
    }
