"""API fixtures: users with tokens, and a history delivered through the real ingest path."""

import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from django.core.cache import caches
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.demo import payloads
from tests.events.factories import MONITOR, REPO, at, deliver, fake_test

MONITOR_B = uuid.UUID(int=999)
OTHER_REPO = payloads.FakeRepository(
    uuid.UUID("11111111-2222-4333-8444-555555555555"), "https://github.com/acme/web"
)


@pytest.fixture(autouse=True)
def _api_settings(settings):
    """Throttles off (a test turns them on), a private dashboard, fresh throttle counters."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": None, "user": None},
    }
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = False
    caches[django_settings.THROTTLE_CACHE].clear()
    yield
    caches[django_settings.THROTTLE_CACHE].clear()


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def reader(db):
    return User.objects.create_user("reader", password="pw-reader-123")


@pytest.fixture
def api(reader):
    """An authenticated client without any permission."""
    return token_client(reader)


@pytest.fixture
def triager(db):
    user = User.objects.create_user("triager")
    user.user_permissions.add(
        Permission.objects.get(codename="change_testcase", content_type__app_label="events")
    )
    return user


@pytest.fixture
def triage_api(triager):
    return token_client(triager)


@pytest.fixture
def staff(db):
    return User.objects.create_user("staff", is_staff=True)


@pytest.fixture
def staff_api(staff):
    return token_client(staff)


@pytest.fixture
def anon():
    return APIClient()


def change(test, when, previous, new, monitor_type="pass_on_retry"):
    return deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type=monitor_type
        )
    )


def monitor(test, when, status, monitor_id=MONITOR, monitor_type="pass_on_retry"):
    return deliver(
        payloads.monitor_status_changed(
            test,
            at=when,
            monitor_id=monitor_id,
            monitor_type=monitor_type,
            status=status,
            evidence={"runs": 3},
        )
    )


def investigation(test, when, confidence, n, facts=("CI_LOGS",)):
    return deliver(
        payloads.investigation_completed(
            test,
            at=when,
            investigation_id=uuid.UUID(int=500 + n),
            confidence=confidence,
            markdown_summary=f"**Summary {n}** <script>x</script>",
            failure_message="AssertionError",
            facts=[
                {"fact_type": kind, "content": f"fact {i}", "confidence": 0.5 + i / 10}
                for i, kind in enumerate(facts)
            ],
        )
    )


def quarantine(test, when, updated="ALWAYS_QUARANTINE"):
    return deliver(
        payloads.quarantining_setting_changed(
            test,
            at=when,
            previous="UNSPECIFIED",
            updated=updated,
            actor_email="dev@acme.test",
            actor_name="Dev",
            reason="flaky on CI",
        )
    )


@pytest.fixture
def history(db):
    """The dashboard tests' history (tests/dashboard/test_selectors.py) plus the other events.

    t1 (@acme/web): H->F day 2, F->B day 4, B->H day 6, H->F day 20 (open); monitor active
        day 2, resolved day 6, active day 19; investigation 0.9 (GIT_BLAME, CI_LOGS) day 21.
    t2 (@acme/web, @acme/api; variant linux, failure rate 0.5, 9 PRs): H->F day 3, F->H day 13;
        investigation 0.3 day 12.
    t3 (no owner; other repository; quarantined): seen day 1; quarantine change day 7.
    t4 (@Acme/Web): first change F->H on day 5.
    """
    t1 = fake_test(1, codeowners=["@acme/web"], failure_rate_last_7d=0.2, pull_requests_impacted_last_7d=3)
    t2 = fake_test(
        2,
        codeowners=["@acme/web", "@acme/api"],
        variant="linux",
        failure_rate_last_7d=0.5,
        pull_requests_impacted_last_7d=9,
    )
    t3 = fake_test(3, codeowners=[], repository=OTHER_REPO, quarantined=True)
    t4 = fake_test(4, codeowners=["@Acme/Web"], failure_rate_last_7d=0.1, pull_requests_impacted_last_7d=1)
    monitor(t1, at(1), "resolved", monitor_id=MONITOR_B, monitor_type="failure_rate")
    change(t1, at(2), "HEALTHY", "FLAKY")
    monitor(t1, at(2), "active")
    change(t1, at(4), "FLAKY", "BROKEN")
    change(t1, at(6), "BROKEN", "HEALTHY")
    monitor(t1, at(6), "resolved")
    monitor(t1, at(19), "active")
    change(t1, at(20), "HEALTHY", "FLAKY")
    investigation(t1, at(21), 0.9, 1, facts=("GIT_BLAME", "CI_LOGS"))
    change(t2, at(3), "HEALTHY", "FLAKY")
    investigation(t2, at(12), 0.3, 2)
    change(t2, at(13), "FLAKY", "HEALTHY")
    monitor(t3, at(1), "resolved", monitor_id=MONITOR_B, monitor_type="failure_rate")
    quarantine(t3, at(7))
    monitor(t4, at(1, 5), "resolved", monitor_id=MONITOR_B, monitor_type="failure_rate")
    change(t4, at(5), "FLAKY", "HEALTHY")
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "repo": REPO, "other_repo": OTHER_REPO}


def build_tests(n: int, *, start: int = 100) -> list:
    """n tests with several events each (status changes, monitor events, an investigation
    with two facts, a quarantine change), spread over owners, two repositories and statuses."""
    tests = []
    for i in range(n):
        test = fake_test(
            start + i,
            codeowners=[f"@acme/team{i % 3}"] if i % 4 else [],
            repository=REPO if i % 2 else OTHER_REPO,
            variant="linux" if i % 5 == 0 else "",
            failure_rate_last_7d=i / (n + 1),
            pull_requests_impacted_last_7d=i,
        )
        change(test, at(2, i % 24), "HEALTHY", "FLAKY")
        monitor(test, at(2, i % 24), "active")
        if i % 3 == 0:
            change(test, at(3, i % 24), "FLAKY", "BROKEN")
        investigation(test, at(4, i % 24), (i % 10) / 10, 1000 + start + i, facts=("CI_LOGS", "GIT_BLAME"))
        quarantine(test, at(5, i % 24))
        tests.append(test)
    return tests
