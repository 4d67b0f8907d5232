"""The weekly digest (docs/metrics.md, "The weekly digest"): every section's figures on a
hand-built history delivered through the receiver, its boundaries and owner scopes, and
the page (/digest/): owners, escaping, the unknown owner, access and a bounded number of
queries."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.selectors.digest import Attainment, WeekFigure, weekly_digest
from events.demo import payloads
from events.models import Owner, TestCase
from events.triage import VIA_DASHBOARD, triage_test
from tests.events.factories import MONITOR, deliver, fake_test

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, tzinfo=UTC)
WEB, API = "@acme/web", "@acme/api"
HOSTILE = "<script>alert(1)</script> @channel"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; @channel"


def may(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 5, day, hour, tzinfo=UTC)


def change(test, when, previous, new):
    deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


def seen(test, when, status="resolved"):
    deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=uuid.UUID(int=999), monitor_type="failure_rate", status=status
        )
    )


@pytest.fixture
def triager(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "pw", is_staff=True)


@pytest.fixture
def history(triager):
    """NOW = June 1 00:00; this week (May 25, June 1], last week (May 18, May 25].

    t1 (web): H->F May 25 00:00, exactly 7 days before NOW: last week's, not this week's.
    t2 (web): H->F May 31, triaged May 31 12:00 (triage met).
    t3 (no owner): May 1-10; H->B May 30 (a relapse: 20 days after; the fix held 14
       days, so verified on May 24: last week).
    t4 (api): May 20-22 (fixed last week; triage missed, fix met); H->F May 28 (a relapse,
       and the May 22 fix relapsed this week; untriaged: triage missed).
    t5 (web): May 5-15: verified on May 29 (this week).
    t6 (web): first seen FLAKY April 1 (start unknown), fixed at NOW exactly (this week).
    t7 (web): quarantined, healthy since first seen April 20: ready to release.
    t8 (no owner): quarantined, healthy since April 20, a monitor active: not ready."""
    tests = {n: fake_test(n, codeowners={3: [], 4: [API], 8: []}.get(n, [WEB])) for n in range(1, 9)}
    change(tests[1], may(25), "HEALTHY", "FLAKY")
    change(tests[2], may(31), "HEALTHY", "FLAKY")
    change(tests[3], may(1), "HEALTHY", "FLAKY")
    change(tests[3], may(10), "FLAKY", "HEALTHY")
    change(tests[3], may(30), "HEALTHY", "BROKEN")
    change(tests[4], may(20), "HEALTHY", "FLAKY")
    change(tests[4], may(22), "FLAKY", "HEALTHY")
    change(tests[4], may(28), "HEALTHY", "FLAKY")
    change(tests[5], may(5), "HEALTHY", "FLAKY")
    change(tests[5], may(15), "FLAKY", "HEALTHY")
    change(tests[6], datetime(2026, 4, 1, tzinfo=UTC), "FLAKY", "BROKEN")
    change(tests[6], NOW, "BROKEN", "HEALTHY")
    quarantined = {n: fake_test(n, codeowners=tests[n].codeowners, quarantined=True) for n in (7, 8)}
    seen(quarantined[7], datetime(2026, 4, 20, tzinfo=UTC))
    seen(quarantined[8], datetime(2026, 4, 20, tzinfo=UTC), status="active")
    assert triage_test(
        TestCase.objects.get(pk=tests[2].id),
        by=triager,
        via=VIA_DASHBOARD,
        at=may(31, 12),
        state="investigating",
    )
    return tests


def names(rows) -> list[str]:
    return [row.test.name for row in rows]


def test_every_section_for_every_test(history):
    digest = weekly_digest(owner_key=None, now=NOW)
    # t1 started exactly 7 days before NOW: last week's, not this week's.
    assert digest.new.started == WeekFigure(this_week=3, last_week=2)
    assert digest.new.relapses == WeekFigure(this_week=2, last_week=0)
    assert names(digest.new.shown) == ["test_case_2", "test_case_3", "test_case_4"]
    relapses = {row.test.name: row.relapse for row in digest.new.shown}
    assert relapses == {"test_case_2": False, "test_case_3": True, "test_case_4": True}
    assert [row.test.status for row in digest.new.shown] == ["FLAKY", "BROKEN", "FLAKY"]
    assert digest.new.shown[0].started_at == may(31)
    # t6 ended at NOW exactly (in); t4 on May 22 (last week).
    assert digest.fixes.fixed == WeekFigure(1, 1)
    assert digest.fixes.verified == WeekFigure(1, 1)  # t5 on May 29; t3 on May 24
    assert digest.fixes.relapsed == WeekFigure(1, 0)  # t4's May 22 fix, on May 28
    # Open now, oldest first (t6's closed at NOW).
    assert digest.open.count == 4
    assert names(digest.open.shown) == ["test_case_1", "test_case_4", "test_case_3", "test_case_2"]
    assert digest.open.shown[0].age == timedelta(days=7)
    assert digest.ready.count == 1
    assert names(digest.ready.shown) == ["test_case_7"]
    # Triage: this week t2 met, t4 missed, t3 undecided; last week t4's first episode
    # missed (t1's deadline had not passed on May 25). Fix: none decided this week; t4's
    # first episode met last week.
    assert digest.targets.triage.this_week == Attainment(met=1, missed=1)
    assert digest.targets.triage.last_week == Attainment(met=0, missed=1)
    assert digest.targets.triage.this_week.percent == 50 and digest.targets.triage.change == 50
    assert digest.targets.fix.this_week.share is None and digest.targets.fix.change is None
    assert digest.targets.fix.last_week == Attainment(met=1, missed=0)
    assert digest.week_start == may(25) and not digest.quiet


def test_an_owner_and_the_tests_without_owners(history):
    web = weekly_digest(owner_key=WEB, now=NOW)
    assert web.new.started == WeekFigure(1, 1) and names(web.new.shown) == ["test_case_2"]
    assert web.new.relapses == WeekFigure(0, 0)
    assert (web.fixes.fixed, web.fixes.verified, web.fixes.relapsed) == (
        WeekFigure(1, 0),
        WeekFigure(1, 0),
        WeekFigure(0, 0),
    )
    assert names(web.open.shown) == ["test_case_1", "test_case_2"]
    assert names(web.ready.shown) == ["test_case_7"]
    assert web.targets.triage.this_week == Attainment(1, 0)

    nobody = weekly_digest(owner_key="", now=NOW)
    assert nobody.new.started == WeekFigure(1, 0) and nobody.new.relapses == WeekFigure(1, 0)
    assert nobody.fixes.verified == WeekFigure(0, 1)
    assert names(nobody.open.shown) == ["test_case_3"] and nobody.ready.count == 0

    api = weekly_digest(owner_key=API, now=NOW)
    assert api.fixes.relapsed == WeekFigure(1, 0) and api.fixes.fixed == WeekFigure(0, 1)
    assert api.targets.triage.this_week == Attainment(0, 1)

    unknown = weekly_digest(owner_key="@nobody", now=NOW)
    assert unknown.quiet and unknown.new.started == WeekFigure(0, 0) and unknown.targets.fix.change is None


def test_the_change_from_last_week(history):
    digest = weekly_digest(owner_key=None, now=NOW)
    assert digest.new.started.change == 1
    assert digest.fixes.verified.change == 0
    assert digest.fixes.relapsed.change == 1
    # Last week's figures are what the digest said a week earlier.
    before = weekly_digest(owner_key=None, now=NOW - timedelta(days=7))
    assert before.new.started.this_week == digest.new.started.last_week
    assert before.fixes.verified.this_week == digest.fixes.verified.last_week
    assert before.targets.triage.this_week == digest.targets.triage.last_week


def test_boundaries_of_the_week(history):
    # One second later, t1's start (May 25 00:00) is still last week's, not this week's.
    later = weekly_digest(owner_key=WEB, now=NOW + timedelta(seconds=1))
    assert later.new.started == WeekFigure(1, 1)
    # One second earlier it is this week's; t6's fix at NOW is not yet made.
    earlier = weekly_digest(owner_key=WEB, now=NOW - timedelta(seconds=1))
    assert earlier.new.started.this_week == 2 and earlier.fixes.fixed.this_week == 0


# ---------------------------------------------------------------- the page


@pytest.fixture
def recent():
    """Relative to the real clock (the page's now): a hostile test of a hostile owner that
    became flaky 2 days ago, and one without owners 3 days ago."""
    now = timezone.now()
    hostile = fake_test(11, name=HOSTILE, codeowners=[HOSTILE])
    change(hostile, now - timedelta(days=2), "HEALTHY", "FLAKY")
    change(fake_test(12, codeowners=[]), now - timedelta(days=3), "HEALTHY", "BROKEN")
    return hostile


def test_page_for_everyone_links_and_escapes(reader_client, recent):
    response = reader_client.get(reverse("dashboard:digest"))
    assert response.status_code == 200
    body = response.content.decode()
    assert response.context["digest"].new.started.this_week == 2
    assert HOSTILE not in body and "<script>alert" not in body
    assert ESCAPED in body
    assert reverse("dashboard:test-detail", args=[recent.id]) in body
    assert 'aria-current="page">Digest</a>' in body


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        (HOSTILE, ["<script>"]),
        (HOSTILE.upper(), ["<script>"]),
        ("none", ["test_case_12"]),
        ("(no owner)", ["test_case_12"]),
    ],
)
def test_page_for_an_owner(reader_client, recent, owner, expected):
    response = reader_client.get(reverse("dashboard:digest"), {"owner": owner})
    assert response.status_code == 200
    shown = [row.test.name for row in response.context["digest"].new.shown]
    assert len(shown) == 1 and expected[0] in shown[0]
    assert HOSTILE not in response.content.decode()


def test_page_for_an_owner_by_id_from_its_page(reader_client, recent):
    owner_page = reader_client.get(reverse("dashboard:codeowner-detail", args=["none"])).content.decode()
    assert "/digest/?owner=none" in owner_page
    owner = Owner.objects.get(key=HOSTILE.casefold())
    response = reader_client.get(reverse("dashboard:digest"), {"owner": str(owner.pk)})
    assert response.context["owner_key"] == HOSTILE.casefold()


def test_unknown_owner_is_an_empty_state(reader_client, recent):
    response = reader_client.get(reverse("dashboard:digest"), {"owner": "<b>nobody</b>"})
    assert response.status_code == 200
    body = response.content.decode()
    assert response.context["digest"] is None
    assert "No owner named" in body and "&lt;b&gt;nobody&lt;/b&gt;" in body and "<b>nobody" not in body


def test_page_needs_a_reader(client, recent, settings):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = False
    response = client.get(reverse("dashboard:digest"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_page_queries_do_not_grow_with_data(reader_client, recent, django_assert_max_num_queries):
    url = reverse("dashboard:digest")
    with django_assert_max_num_queries(13):
        reader_client.get(url, {"owner": HOSTILE})
    now = timezone.now()
    for n in range(20, 45):
        test = fake_test(n, codeowners=[HOSTILE] if n % 2 else [], quarantined=n % 3 == 0)
        change(test, now - timedelta(days=n % 13, hours=1), "HEALTHY", "FLAKY")
        if n % 4:
            change(test, now - timedelta(days=n % 5), "FLAKY", "HEALTHY")
    for owner in (HOSTILE, "none", ""):
        with django_assert_max_num_queries(13):
            assert reader_client.get(url, {"owner": owner}).status_code == 200
