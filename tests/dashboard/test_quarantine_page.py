"""The quarantine ledger (/quarantine/) and the overview's quarantine figures
(docs/metrics.md, "Quarantine"), on data delivered through the receiver."""

import re
import uuid
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.selectors import quarantine as selectors
from events.demo import payloads
from events.metrics import READY_TO_RELEASE_HEALTHY
from events.models import Owner, Repository, TestCase
from tests.events.factories import MONITOR, deliver, fake_test

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
OTHER_REPO = payloads.FakeRepository(uuid.UUID(int=77), "https://github.com/acme/other")
HX = {"HX-Request": "true", "HX-Target": "ledger"}


SEEN_MONITOR = uuid.UUID(int=999)


def seen(test, when, *, status="resolved", monitor=SEEN_MONITOR):
    deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=monitor, monitor_type="failure_rate", status=status
        )
    )


def change(test, when, previous, new):
    deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


def setting(test, when, *, previous, updated, name, email, reason):
    deliver(
        payloads.quarantining_setting_changed(
            test,
            at=when,
            previous=previous,
            updated=updated,
            actor_email=email,
            actor_name=name,
            reason=reason,
        )
    )


@pytest.fixture
def ledger():
    """Days before now:
    t1 (@acme/payments): quarantined since 40, HEALTHY since first seen: ready.
    t2 (@Acme/Web): FLAKY since 12, quarantined at 10 by a setting change (hostile name, reason).
    t3 (no owner): quarantined since 20, HEALTHY since 15, a monitor active: not ready.
    t4: not quarantined. t5: quarantined since 30, HEALTHY since 5 only: not ready.
    t6 (another repository): quarantined since 25, ready."""
    now = timezone.now()

    def ago(days):
        return now - timedelta(days=days)

    t1 = fake_test(1, quarantined=True)
    seen(t1, ago(40))
    seen(t1, ago(3))
    t2 = fake_test(2, codeowners=["@Acme/Web"])
    change(t2, ago(12), "HEALTHY", "FLAKY")
    setting(
        fake_test(2, codeowners=["@Acme/Web"], quarantined=True),
        ago(10),
        previous="AUTO_QUARANTINE",
        updated="ALWAYS_QUARANTINE",
        name=HOSTILE,
        email="ann@example.com",
        reason=HOSTILE,
    )
    t3 = fake_test(3, codeowners=[], quarantined=True)
    change(t3, ago(20), "HEALTHY", "FLAKY")
    change(t3, ago(15), "FLAKY", "HEALTHY")
    seen(t3, ago(14), status="active", monitor=uuid.UUID(int=998))
    seen(fake_test(4), ago(20))
    t5 = fake_test(5, quarantined=True)
    change(t5, ago(30), "HEALTHY", "FLAKY")
    change(t5, ago(5), "FLAKY", "HEALTHY")
    seen(fake_test(6, repository=OTHER_REPO, quarantined=True), ago(25))
    return {"now": now, "ago": ago}


def names(response) -> list[str]:
    return [test.name for test in response.context["page"]]


def test_every_quarantined_test_oldest_quarantine_first(reader_client, ledger):
    response = reader_client.get(reverse("dashboard:quarantine"))
    assert response.status_code == 200
    assert names(response) == ["test_case_1", "test_case_5", "test_case_6", "test_case_3", "test_case_2"]
    rows = {test.name: test for test in response.context["page"]}
    ago = ledger["ago"]
    assert rows["test_case_1"].quarantined_since == ago(40).replace(
        microsecond=ago(40).microsecond // 1000 * 1000
    )
    assert rows["test_case_2"].quarantined_since.date() == ago(10).date()
    # The age is now - since.
    assert abs(rows["test_case_1"].age - timedelta(days=40)) < timedelta(minutes=1)
    assert abs(rows["test_case_2"].age - timedelta(days=10)) < timedelta(minutes=1)
    assert rows["test_case_3"].active_monitors == 1 and rows["test_case_1"].active_monitors == 0
    body = response.content.decode()
    assert "40d 0h" in body and "10d 0h" in body


def test_who_and_why_from_the_latest_setting_change_escaped(reader_client, ledger):
    body = reader_client.get(reverse("dashboard:quarantine")).content.decode()
    assert HOSTILE not in body
    assert body.count(ESCAPED) == 2  # the actor's name and the reason
    assert "ann@example.com" in body and "ALWAYS_QUARANTINE" in body
    # A test Trunk quarantined without a setting change says so.
    assert "no setting change received" in body


def test_latest_setting_change_wins(reader_client, ledger):
    later = fake_test(2, codeowners=["@Acme/Web"], quarantined=True)
    setting(
        later,
        ledger["ago"](2),
        previous="ALWAYS_QUARANTINE",
        updated="ALWAYS_QUARANTINE",
        name="Bob",
        email="bob@example.com",
        reason="still flaky",
    )
    row = next(
        t
        for t in reader_client.get(reverse("dashboard:quarantine")).context["page"]
        if t.name == "test_case_2"
    )
    assert row.change.actor_name == "Bob" and row.change.reason == "still flaky"


def test_owners_link_to_their_pages_keeping_the_scope(reader_client, ledger):
    web = Owner.objects.get(key="@acme/web")
    body = reader_client.get(reverse("dashboard:quarantine"), {"period": "7d"}).content.decode()
    assert f'href="/codeowners/{web.pk}/?period=7d"' in body
    assert 'href="/codeowners/none/?period=7d"' in body


def test_ready_to_release(reader_client, ledger):
    response = reader_client.get(reverse("dashboard:quarantine"), {"ready": "1"})
    assert names(response) == ["test_case_1", "test_case_6"]


def test_ready_to_release_boundary(ledger):
    """HEALTHY for exactly 14 days is ready; a monitor resolved is no longer in the way."""
    now = timezone.now()
    t7 = fake_test(7, quarantined=True)
    change(t7, now - timedelta(days=20), "HEALTHY", "FLAKY")
    change(t7, now - READY_TO_RELEASE_HEALTHY, "FLAKY", "HEALTHY")
    seen(t7, now - timedelta(days=16), status="active", monitor=uuid.UUID(int=997))
    ready = {t.name for t in selectors.ledger(ready=True, now=now)}
    assert "test_case_7" not in ready  # its monitor is still active
    seen(t7, now - timedelta(days=1), monitor=uuid.UUID(int=997))
    ready = {t.name for t in selectors.ledger(ready=True, now=now)}
    assert "test_case_7" in ready
    later = now + timedelta(seconds=1)
    change(t7, now - timedelta(seconds=1), "HEALTHY", "FLAKY")
    assert "test_case_7" not in {t.name for t in selectors.ledger(ready=True, now=later)}


def test_owner_and_repository_filters(reader_client, ledger):
    url = reverse("dashboard:quarantine")
    assert names(reader_client.get(url, {"owner": "@ACME/web"})) == ["test_case_2"]
    assert names(reader_client.get(url, {"owner": "none"})) == ["test_case_3"]
    other = Repository.objects.get(html_url=OTHER_REPO.html_url)
    assert names(reader_client.get(url, {"repository": other.pk})) == ["test_case_6"]
    main = Repository.objects.exclude(pk=other.pk).get()
    assert names(reader_client.get(url, {"repository": main.pk, "ready": "1"})) == ["test_case_1"]
    # An unknown owner is dropped (a stale link still opens).
    assert len(names(reader_client.get(url, {"owner": "@nobody"}))) == 5


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-since", ["test_case_2", "test_case_3", "test_case_6", "test_case_5", "test_case_1"]),
        ("name", ["test_case_1", "test_case_2", "test_case_3", "test_case_5", "test_case_6"]),
        ("-monitors", ["test_case_3", "test_case_1", "test_case_2", "test_case_5", "test_case_6"]),
        ("-status_since", ["test_case_5", "test_case_2", "test_case_3", "test_case_6", "test_case_1"]),
        ("status_since", ["test_case_1", "test_case_6", "test_case_3", "test_case_2", "test_case_5"]),
        ("bogus", ["test_case_1", "test_case_5", "test_case_6", "test_case_3", "test_case_2"]),
    ],
)
def test_sorts(reader_client, ledger, sort, expected):
    assert names(reader_client.get(reverse("dashboard:quarantine"), {"sort": sort})) == expected


def test_sort_headers_toggle(reader_client, ledger):
    body = reader_client.get(reverse("dashboard:quarantine")).content.decode()
    assert 'aria-sort="ascending"' in body and 'href="?sort=-since"' in body
    body = reader_client.get(reverse("dashboard:quarantine"), {"sort": "-monitors"}).content.decode()
    assert 'aria-sort="descending"' in body and 'href="?sort=monitors"' in body


def test_htmx_answers_the_table_only(reader_client, ledger):
    response = reader_client.get(reverse("dashboard:quarantine"), {"ready": "1"}, headers=HX)
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="ledger"') and "<html" not in body
    assert "test_case_1" in body and "test_case_5" not in body
    assert "HX-Target" in response["Vary"]


def test_paginated(reader_client, ledger, monkeypatch):
    from dashboard.views import quarantine as view

    monkeypatch.setattr(view, "PER_PAGE", 2)
    url = reverse("dashboard:quarantine")
    first = reader_client.get(url)
    assert names(first) == ["test_case_1", "test_case_5"]
    assert first.context["page"].paginator.num_pages == 3
    assert names(reader_client.get(url, {"page": 3})) == ["test_case_2"]
    assert 'rel="next"' in first.content.decode()


@pytest.mark.parametrize("size", [3, 12])
def test_query_count_does_not_grow(reader_client, django_assert_num_queries, size):
    now = timezone.now()
    for n in range(1, size + 1):
        test = fake_test(n, quarantined=True, codeowners=[f"@acme/team{n}", "@acme/web"])
        seen(test, now - timedelta(days=n))
        seen(test, now - timedelta(days=n), status="active", monitor=uuid.UUID(int=900 + n))
        setting(
            test,
            now - timedelta(days=n),
            previous="",
            updated="ALWAYS_QUARANTINE",
            name="A",
            email="a@x",
            reason="r",
        )
    # session, user, count, page, owners, latest changes, repositories, owner choices
    with django_assert_num_queries(8):
        response = reader_client.get(reverse("dashboard:quarantine"))
    assert response.context["page"].paginator.count == size
    # The table alone: no scope form to fill (its repositories).
    with django_assert_num_queries(7):
        body = reader_client.get(reverse("dashboard:quarantine"), {"owner": "@acme/web"}, headers=HX).content
    assert body.decode().count('<td class="test-cell">') == size


def test_empty_states(reader_client, ledger):
    TestCase.objects.update(quarantined=False, quarantined_since=None)
    body = reader_client.get(reverse("dashboard:quarantine")).content.decode()
    assert "No test is quarantined now" in body
    body = reader_client.get(reverse("dashboard:quarantine"), {"ready": "1"}).content.decode()
    assert "No quarantined test matches these filters" in body and "healthy for 14 days" in body


def test_empty_without_any_test_explains_how_to_connect(reader_client):
    body = reader_client.get(reverse("dashboard:quarantine")).content.decode()
    assert "No test is quarantined now" in body
    assert reader_client.get(reverse("dashboard:quarantine")).status_code == 200


def test_in_the_navigation(reader_client, ledger):
    body = reader_client.get(reverse("dashboard:overview"), {"period": "7d"}).content.decode()
    nav = body.split('<nav aria-label="Main">')[1].split("</nav>")[0]
    assert 'href="/quarantine/?period=7d"' in nav
    page = reader_client.get(reverse("dashboard:quarantine")).content.decode()
    assert 'aria-current="page">Quarantine</a>' in page


def test_needs_login(client):
    response = client.get(reverse("dashboard:quarantine"))
    assert response.status_code == 302


# ---------------------------------------------------------------- the overview's figures


def test_summary_counts_median_age_and_ready(ledger):
    summary = selectors.quarantine_summary(now=ledger["now"])
    assert summary.quarantined == 5 and summary.ready_to_release == 2
    # Ages 40, 30, 25, 20, 10 days: the median is 25.
    assert abs(summary.median_age - timedelta(days=25)) < timedelta(seconds=1)
    other = Repository.objects.get(html_url=OTHER_REPO.html_url)
    main = Repository.objects.exclude(pk=other.pk).get().pk
    summary = selectors.quarantine_summary(repository=main, now=ledger["now"])
    # 40, 30, 20, 10: the mean of the two middle ones.
    assert summary.quarantined == 4 and summary.ready_to_release == 1
    assert abs(summary.median_age - timedelta(days=25)) < timedelta(seconds=1)
    summary = selectors.quarantine_summary(owner="none", now=ledger["now"])
    assert (summary.quarantined, summary.ready_to_release) == (1, 0)
    assert abs(summary.median_age - timedelta(days=20)) < timedelta(seconds=1)


def test_summary_without_quarantined_tests(django_assert_num_queries):
    with django_assert_num_queries(1):
        summary = selectors.quarantine_summary(now=timezone.now())
    assert summary == selectors.QuarantineSummary(quarantined=0, median_age=None, ready_to_release=0)


def test_summary_two_queries(ledger, django_assert_num_queries):
    with django_assert_num_queries(2):
        selectors.quarantine_summary(now=ledger["now"])


def test_overview_cards_open_the_ledger_with_their_numbers(reader_client, ledger):
    other = Repository.objects.get(html_url=OTHER_REPO.html_url)
    for scope in ({"period": "7d"}, {"period": "all", "repository": other.pk}):
        body = reader_client.get(reverse("dashboard:overview"), scope).content.decode()
        cards = re.findall(
            r'<a class="card stat quarantine-stat" href="([^"]+)">.*?<span class="label">([^<]+)</span>\s*'
            r'<span class="value">([^<]+)</span>',
            body,
            re.S,
        )
        # (Quarantined now is the first row's Quarantined card.)
        assert [label for _, label, _ in cards] == [
            "Median quarantine age",
            "Ready to release",
        ]
        for href, label, value in cards:
            href = unescape(href)
            assert href.startswith("/quarantine/") and f"period={scope['period']}" in href
            if label == "Median quarantine age":
                continue
            assert ("ready=1" in href) == (label == "Ready to release")
            count = reader_client.get(href).context["page"].paginator.count
            assert count == int(value), (href, label)
    body = reader_client.get(reverse("dashboard:overview")).content.decode()
    assert "25d 0h" in body


def test_no_period_selector_but_the_period_travels_on(reader_client, ledger):
    body = reader_client.get(reverse("dashboard:quarantine"), {"period": "7d"}).content.decode()
    assert 'name="period"' in body and '<select name="period"' not in body
    assert '<input type="hidden" name="period" value="7d">' in body
    # The same rows whatever the period: every figure is as of now.
    url = reverse("dashboard:quarantine")
    assert names(reader_client.get(url, {"period": "7d"})) == names(reader_client.get(url, {"period": "all"}))


# ---------------------------------------------------------------- the test's page


def test_test_page_shows_since_age_and_the_setting_changes(reader_client, ledger):
    test = TestCase.objects.get(name="test_case_2")
    body = reader_client.get(test.get_absolute_url(), {"period": "7d"}).content.decode()
    since = test.quarantined_since
    assert f'<time datetime="{since.isoformat()}">{since:%Y-%m-%d %H:%M} UTC</time>' in body
    assert "(1\xa0week, 3\xa0days;" in body
    assert 'href="/quarantine/?period=7d">the quarantine ledger</a>' in body
    # Who, when, from what to what and why, escaped.
    history = body.split('id="quarantine-title"')[1].split("</section>")[0]
    assert "<code>AUTO_QUARANTINE</code> → <code>ALWAYS_QUARANTINE</code>" in history
    assert ESCAPED in history and HOSTILE not in history and "ann@example.com" in history
    assert f"{since:%Y-%m-%d %H:%M}" in history


def test_test_page_of_a_test_not_quarantined(reader_client, ledger):
    body = reader_client.get(TestCase.objects.get(name="test_case_4").get_absolute_url()).content.decode()
    assert "the quarantine ledger" not in body
