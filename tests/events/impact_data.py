"""Hand-built tests for the impact score (events.metrics, docs/metrics.md "Fix first"),
delivered through the real ingest path relative to the real clock (event times must be
plausible), shared by the definition, dashboard and API tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from events.demo import payloads
from tests.events.factories import MONITOR, deliver, fake_test


def change(test: payloads.FakeTest, when: datetime, previous: str, new: str) -> None:
    deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


@dataclass(frozen=True)
class ImpactData:
    now: datetime
    tests: dict[str, payloads.FakeTest]


def worked_example_time() -> datetime:
    """Now, to the second (the scores are read as of this moment)."""
    return datetime.now(UTC).replace(microsecond=0)


def build(now: datetime | None = None) -> ImpactData:
    """The worked example of docs/metrics.md and the tests that rank around it:

    - broken_old: BROKEN, 7 PRs, 12 %, episode open 10 days (FLAKY 10 d 2 h ago, BROKEN
      3 days ago) after a first episode that ended 20 days before (1 relapse):
      20 + 7 + 2.4 + 5 + 5 = 39.4.
    - broken_old_quarantined: the same, quarantined: 39.4 x 0.25 = 9.85.
    - flaky_new: FLAKY since 1 hour, 7 PRs, 12 %: 10 + 7 + 2.4 = 19.4.
    - flaky_relapsing: as flaky_new, but the third episode, both relapses: 19.4 + 10 = 29.4.
    - healthy: fixed 5 days ago, 30 PRs: 0.
    """
    now = now or worked_example_time()
    day = timedelta(days=1)
    figures = {"failure_rate_last_7d": 0.12, "pull_requests_impacted_last_7d": 7}
    tests = {
        "broken_old": fake_test(101, name="impact_broken_old", codeowners=["@acme/web"], **figures),
        "broken_old_quarantined": fake_test(
            102, name="impact_broken_old_quarantined", codeowners=[], quarantined=True, **figures
        ),
        "flaky_new": fake_test(103, name="impact_flaky_new", codeowners=["@acme/api"], **figures),
        "flaky_relapsing": fake_test(104, name="impact_flaky_relapsing", **figures),
        "healthy": fake_test(
            105, name="impact_healthy", failure_rate_last_7d=0.5, pull_requests_impacted_last_7d=30
        ),
    }
    for key in ("broken_old", "broken_old_quarantined"):
        test = tests[key]
        change(test, now - 40 * day, "HEALTHY", "FLAKY")
        change(test, now - 30 * day, "FLAKY", "HEALTHY")
        change(test, now - 10 * day - timedelta(hours=2), "HEALTHY", "FLAKY")
        change(test, now - 3 * day, "FLAKY", "BROKEN")
    change(tests["flaky_new"], now - timedelta(hours=1), "HEALTHY", "FLAKY")
    relapsing = tests["flaky_relapsing"]
    change(relapsing, now - 20 * day, "HEALTHY", "FLAKY")
    change(relapsing, now - 15 * day, "FLAKY", "HEALTHY")
    change(relapsing, now - 10 * day, "HEALTHY", "FLAKY")
    change(relapsing, now - 5 * day, "FLAKY", "HEALTHY")
    change(relapsing, now - timedelta(hours=1), "HEALTHY", "FLAKY")
    change(tests["healthy"], now - 9 * day, "HEALTHY", "BROKEN")
    change(tests["healthy"], now - 5 * day, "BROKEN", "HEALTHY")
    return ImpactData(now=now, tests=tests)


EXPECTED = {
    "broken_old": 39.4,
    "flaky_relapsing": 29.4,
    "flaky_new": 19.4,
    "broken_old_quarantined": 9.85,
    "healthy": 0.0,
}
# Fix first: highest impact first, HEALTHY left out.
FIX_FIRST_ORDER = ["broken_old", "flaky_relapsing", "flaky_new", "broken_old_quarantined"]
