"""Owners' targets (METRICS "Time to triage", "Owner targets", "Attainment"): exact
attainment and breaching on a hand-built history (through the receiver) with triage
actions through events.triage, at controlled times."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from dashboard.selectors import targets as selectors
from events import metrics
from events.demo import payloads
from events.metrics import Period
from events.models import Investigation, Owner, OwnerTarget, TestCase, TriageEvent
from events.rollups.triaged import refresh_first_triage
from events.triage import VIA_DASHBOARD, set_verdict, triage_test
from tests.events.factories import MONITOR, at, deliver, fake_test

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 25, tzinfo=UTC)
WEB = "@acme/web"


def change(test, when, previous, new):
    return deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


def triage_at(test, when, by, **values):
    """A triage action through the service, stamped `when` (the service's `at`)."""
    test_case = TestCase.objects.get(pk=test.id)
    assert triage_test(test_case, by=by, via=VIA_DASHBOARD, at=when, **values)


@pytest.fixture
def triager(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "pw", is_staff=True)


@pytest.fixture
def history(triager):
    """@acme/web:
    t1 H->F day 1, triaged day 4 00:00 (exactly 3 days: met), fixed day 10 (9 days: met);
    t2 H->F day 2, triaged day 5 01:00 (3 days 1 h: missed), open (23 days: fix missed,
       breaching the fix target);
    t3 H->F day 20, never triaged, open (5 days: triage missed and breaching, fix undecided);
    t4 H->F day 24, never triaged, open (1 day: both undecided);
    t6 first seen FLAKY -> BROKEN day 5 (start unknown: out of attainment), open: breaching.
    (no owner): t5 H->F day 3, noted day 2 (before the start: not its triage), fixed day 20
       (17 days: missed by default, met with a 20-day target)."""
    tests = {n: fake_test(n, codeowners=[WEB] if n != 5 else []) for n in range(1, 7)}
    change(tests[1], at(1), "HEALTHY", "FLAKY")
    change(tests[1], at(10), "FLAKY", "HEALTHY")
    change(tests[2], at(2), "HEALTHY", "FLAKY")
    change(tests[3], at(20), "HEALTHY", "FLAKY")
    change(tests[4], at(24), "HEALTHY", "FLAKY")
    change(tests[5], at(3), "HEALTHY", "FLAKY")
    change(tests[5], at(20), "FLAKY", "HEALTHY")
    change(tests[6], at(5), "FLAKY", "BROKEN")
    triage_at(tests[1], at(4), triager, state="investigating")
    triage_at(tests[2], at(5, 1), triager, assignee=triager)
    triage_at(tests[5], at(2), triager, note="seen")
    return tests


def figures(row):
    return (row.triage_met, row.triage_missed, row.fix_met, row.fix_missed, row.breaching)


def test_attainment_and_breaching_per_owner(history):
    rows = selectors.owner_targets(period=Period("30d", NOW))
    assert set(rows) == {WEB.casefold(), ""}
    web = rows[WEB.casefold()]
    assert figures(web) == (1, 2, 1, 1, 3)
    assert web.triage_attainment == pytest.approx(1 / 3) and web.fix_attainment == 0.5
    assert not web.own and web.targets == metrics.default_targets() == metrics.Targets(3, 14)
    assert figures(rows[""]) == (0, 1, 0, 1, 0)


def test_the_same_as_target_met_episode_by_episode(history):
    """The SQL counts agree with events.metrics.target_met over the episodes."""
    from events.models import Episode

    targets = metrics.default_targets()
    first = {}
    for event in TriageEvent.objects.order_by("at"):
        first.setdefault(event.test_case_id, []).append(event.at)
    met = {"triage": [0, 0], "fix": [0, 0]}
    for episode in Episode.objects.filter(test_case__owners__key=WEB.casefold(), start_known=True):
        triaged = next((t for t in first.get(episode.test_case_id, []) if t >= episode.started_at), None)
        for kind, done, target in (
            ("triage", triaged, targets.triage),
            ("fix", episode.ended_at, targets.fix),
        ):
            outcome = metrics.target_met(started_at=episode.started_at, done_at=done, target=target, now=NOW)
            if outcome is not None:
                met[kind][0 if outcome else 1] += 1
    web = selectors.owner_targets(period=Period("30d", NOW))[WEB.casefold()]
    assert met == {"triage": [web.triage_met, web.triage_missed], "fix": [web.fix_met, web.fix_missed]}


def test_boundary_exactly_three_days(history, triager):
    """Triaged exactly 3 days after the start: met; a millisecond later: missed."""
    period = Period("30d", NOW)
    assert selectors.owner_targets(period=period)[WEB.casefold()].triage_met == 1
    TriageEvent.objects.filter(test_case_id=history[1].id).update(at=at(4) + timedelta(milliseconds=1))
    refresh_first_triage([history[1].id])  # what the service does after writing one
    web = selectors.owner_targets(period=period)[WEB.casefold()]
    assert (web.triage_met, web.triage_missed) == (0, 3)
    # Untriaged, exactly 3 days old: not decided yet (left out); a moment later: missed.
    t7 = fake_test(7, codeowners=["@solo"])
    change(t7, at(22), "HEALTHY", "FLAKY")
    solo = selectors.owner_targets(period=Period("30d", at(25)))["@solo"]
    assert (solo.triage_met, solo.triage_missed, solo.breaching) == (0, 0, 0)
    solo = selectors.owner_targets(period=Period("30d", at(25) + timedelta(seconds=1)))["@solo"]
    assert (solo.triage_met, solo.triage_missed, solo.breaching) == (0, 1, 1)


def test_a_verdict_is_a_triage_action(history, triager):
    """t3 (day 20, untriaged): a verdict on its investigation on day 21 triages it."""
    assert selectors.owner_targets(period=Period("30d", NOW))[WEB.casefold()].triage_missed == 2
    investigation_id = uuid.UUID(int=300)
    deliver(
        payloads.investigation_completed(
            history[3],
            at=at(20, 6),
            investigation_id=investigation_id,
            confidence=0.9,
            markdown_summary="race",
            failure_message="boom",
            facts=[],
        )
    )
    investigation = Investigation.objects.get(pk=investigation_id)
    assert set_verdict(investigation, by=triager, verdict="confirmed", via=VIA_DASHBOARD, at=at(21))
    web = selectors.owner_targets(period=Period("30d", NOW))[WEB.casefold()]
    assert (web.triage_met, web.triage_missed, web.breaching) == (2, 1, 2)


def test_per_owner_override(history):
    OwnerTarget.objects.create(owner_key="", fix_days=20)
    OwnerTarget.objects.create(owner_key=WEB.casefold(), triage_days=4)
    rows = selectors.owner_targets(period=Period("30d", NOW))
    assert figures(rows[""]) == (0, 1, 1, 0, 0)
    assert rows[""].own and rows[""].targets == metrics.Targets(3, 20)
    web = rows[WEB.casefold()]
    # t2 now met its 4-day triage target; t3 (5 days, untriaged) still missed.
    assert figures(web) == (2, 1, 1, 1, 3) and web.targets == metrics.Targets(4, 14)


def test_period_owner_and_repository_filters(history):
    # 7d: only t3 (day 20) and t4 (day 24) started inside; breaching is "now", whatever the period.
    web = selectors.owner_targets(period=Period("7d", NOW))[WEB.casefold()]
    assert figures(web) == (0, 1, 0, 0, 3)
    assert set(selectors.owner_targets(period=Period("30d", NOW), owner_key="")) == {""}
    assert selectors.owner_targets(period=Period("30d", NOW), repository=10_000) == {}


def test_weekly_attainment(history):
    weeks = selectors.weekly_attainment(owner_key=WEB.casefold(), period=Period("30d", NOW))
    # 2026-05-01 is a Friday: t1, t2 in the ISO week of Apr 27; t3 in the week of May 18.
    assert [
        (w.week.date().isoformat(), w.triage_met, w.triage_missed, w.fix_met, w.fix_missed) for w in weeks
    ] == [
        ("2026-04-27", 1, 1, 1, 1),
        ("2026-05-18", 0, 1, 0, 0),
    ]
    assert weeks[0].triage_attainment == 0.5 and weeks[1].fix_attainment is None


def test_breaching_episodes_oldest_first(history, triager):
    rows = selectors.breaching_episodes(owner_key=WEB.casefold(), now=NOW)
    assert [(r["test"].name, r["breached"], r["start_known"]) for r in rows] == [
        ("test_case_2", ["fix"], True),
        ("test_case_6", ["triage", "fix"], False),
        ("test_case_3", ["triage"], True),
    ]
    assert rows[0]["assignee"] == triager and rows[0]["age"] == NOW - at(2)


def test_selector_query_counts(history, django_assert_num_queries):
    with django_assert_num_queries(2):
        selectors.owner_targets(period=Period("30d", NOW))
    with django_assert_num_queries(2):
        selectors.weekly_attainment(owner_key=WEB.casefold(), period=Period("all", NOW))
    with django_assert_num_queries(2):
        selectors.breaching_episodes(owner_key=WEB.casefold(), now=NOW)


def test_triage_history_newest_first_bounded(history, triager):
    test = TestCase.objects.get(pk=history[1].id)
    for n in range(25):
        triage_test(test, by=triager, note=f"note {n}")
    rows, total = selectors.triage_history(test)
    assert total == 26 and len(rows) == selectors.TRIAGE_HISTORY_SHOWN
    assert rows[0].message.startswith("Triage note edited") and rows[-1].at >= rows[0].at - timedelta(days=1)
    assert selectors.triage_history(TestCase.objects.get(pk=history[4].id)) == ([], 0)


# ---------------------------------------------------------------- the pages


def owner_url(key):
    return reverse("dashboard:codeowner-detail", args=[Owner.objects.get(key=key).pk])


def cells(body: str) -> list[str]:
    """The texts of the codeowners table's rows (tags dropped, spaces squeezed)."""
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


@pytest.mark.parametrize("days", [metrics.TARGET_MAX_DAYS + 1, 10**6, 2**31 - 1, 2**40])
def test_huge_stored_targets_read_as_the_longest(history, reader_client, days):
    """A row stored outside the admin (which refuses more than TARGET_MAX_DAYS): past
    timedelta's range or the calendar's, the codeowners pages and the endpoint answered 500."""
    if days > 2**31 - 1 and connection.vendor == "postgresql":
        pytest.skip("PostgreSQL's integer column refuses it: such a row cannot be stored there")
    OwnerTarget.objects.create(owner_key="", triage_days=days, fix_days=days)
    OwnerTarget.objects.create(owner_key=WEB.casefold(), fix_days=days)
    longest = metrics.TARGET_MAX_DAYS
    rows = selectors.owner_targets(period=Period("all", NOW))
    assert rows[""].targets == metrics.Targets(longest, longest)
    assert rows[WEB.casefold()].targets == metrics.Targets(3, longest)
    web = Owner.objects.get(key=WEB.casefold())
    for url in ("/codeowners/", "/codeowners/none/", f"/codeowners/{web.pk}/", "/api/v1/stats/targets/"):
        assert reader_client.get(url, {"period": "all"}).status_code == 200, url


def test_codeowners_columns_and_sorts(history, reader_client):
    body = reader_client.get(reverse("dashboard:codeowners"), {"period": "all"}).content.decode()
    for label in ("Triage target met", "Fix target met", "Breaching now"):
        assert label in body
    # Now (December 2026) every target of these May episodes has passed: @acme/web met
    # 1 of 4 (t1), (no owner) 0 of 1; @acme/web has 4 open episodes past a target.
    rows = cells(body)
    assert rows[0].startswith("@acme/web") and rows[0].endswith("25% of 4 25% of 4 4")
    assert rows[1].startswith("(no owner)") and rows[1].endswith("0% of 1 0% of 1 0")
    assert 'href="?sort=triage&amp;period=all"' in body
    OwnerTarget.objects.create(owner_key="", fix_days=20)
    own = cells(reader_client.get(reverse("dashboard:codeowners"), {"period": "all"}).content.decode())
    assert own[1].endswith("0% of 1 · 3 d 100% of 1 · 20 d 0")  # t5's 17 days meet its own 20
    by_triage = reader_client.get(reverse("dashboard:codeowners"), {"period": "all", "sort": "triage"})
    rows = cells(by_triage.content.decode())
    assert rows[0].startswith("(no owner)") and rows[1].startswith("@acme/web")
    assert 'aria-sort="ascending"' in by_triage.content.decode()
    assert 'href="?sort=severity&amp;period=all"' in by_triage.content.decode()  # back to the default
    by_breaching = reader_client.get(reverse("dashboard:codeowners"), {"period": "all", "sort": "breaching"})
    assert cells(by_breaching.content.decode())[0].startswith("@acme/web")


def test_owner_page_targets_trend_and_breaching(history, reader_client):
    OwnerTarget.objects.create(owner_key=WEB.casefold(), triage_days=5)
    response = reader_client.get(owner_url(WEB.casefold()), {"period": "all"})
    body = response.content.decode()
    assert "this owner&#x27;s own targets" in body or "this owner's own targets" in body
    assert "<strong>5 days</strong>" in body and "<strong>14 days</strong>" in body
    # t2 (triaged after 3 days 1 h) met a 5-day target now: 2 of 4.
    assert "50%" in body and "2 of 4 episodes" in body
    section = body[body.index('id="breaching"') : body.index('id="owner-tests-heading"')]
    names = re.findall(r">(test_case_\d+)</a>", section)
    assert names == ["test_case_2", "test_case_6", "test_case_3", "test_case_4"]
    assert "since at least" in section and "alice" in section
    chart = response.context["targets_chart"]
    assert [trace["name"] for trace in chart["data"]] == ["Triaged within 5 d", "Fixed within 14 d"]
    # "all": the last 104 weeks; the weeks with a decided episode (t6's start is unknown).
    assert chart["data"][0]["x"] == ["2026-04-27", "2026-05-18"]
    assert chart["data"][0]["y"] == [100.0, 0.0] and chart["data"][1]["y"] == [50.0, 0.0]
    assert chart["data"][1]["customdata"] == ["1 of 2", "0 of 2"]
    none_page = reader_client.get(reverse("dashboard:codeowner-detail", args=["none"]), {"period": "all"})
    assert "the default targets" in none_page.content.decode()


def test_owner_page_escapes_names_and_has_empty_states(reader_client):
    hostile = "<script>alert(1)</script>"
    change(fake_test(9, name=hostile, codeowners=["@quiet"]), at(1), "HEALTHY", "FLAKY")
    body = reader_client.get(owner_url("@quiet"), {"period": "all"}).content.decode()
    assert hostile not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def grow(extra: int, by) -> None:
    for n in range(100, 100 + extra):
        test = fake_test(n, codeowners=[WEB, f"@team{n % 3}"])
        change(test, at(3), "HEALTHY", "FLAKY")
        if n % 2:
            change(test, at(8), "FLAKY", "HEALTHY")
        triage_at(test, at(4), by, state="investigating")


@pytest.mark.parametrize("extra", [0, 6])
def test_page_query_counts_do_not_grow(history, triager, reader_client, django_assert_num_queries, extra):
    grow(extra, triager)
    OwnerTarget.objects.create(owner_key="@team1", fix_days=30)
    # session and user (2), repositories (1), owner_stats (4), targets (1), counts (3: a
    # probe for triage actions after now, the unsettled episodes, the target tally),
    # fixes by owner (2: the fix tally and the recent episodes)
    with django_assert_num_queries(12):
        assert reader_client.get(reverse("dashboard:codeowners"), {"period": "all"}).status_code == 200
    # session and user (2), repositories (1), the owner (1), tests (3), owner_stats (4:
    # one owner), trend (1), targets (1), attainment (3, as above), weekly, breaching (2),
    # fixes and the relapse curves (6: each the fix tally and the recent episodes)
    url = owner_url(WEB.casefold())
    with django_assert_num_queries(23):
        assert reader_client.get(url, {"period": "all"}).status_code == 200


def test_test_page_triage_history(history, triager, staff_client, admin_client, django_user_model):
    test = TestCase.objects.get(pk=history[1].id)
    url = test.get_absolute_url()
    body = staff_client.get(url).content.decode()
    assert "Triage history" in body and "Triage state: New → Investigating. (dashboard)" in body
    assert "alice" in body and "Showing the latest" not in body
    for n in range(24):
        triage_test(test, by=triager, note=f"note {n}", via=VIA_DASHBOARD)
    body = staff_client.get(url).content.decode()
    section = body[body.index('id="triage-history-title"') : body.index('id="status-title"')]
    assert section.count("<tr>") == 1 + selectors.TRIAGE_HISTORY_SHOWN
    assert "Showing the latest 20 of 25 triage actions" in section
    admin_link = f"/admin/events/triageevent/?test_case__id__exact={test.pk}"
    assert admin_link in section  # staff: the admin's full list
    assert admin_link in admin_client.get(url).content.decode()
    reader_client = Client()  # not the `client` fixture: staff_client is that one
    reader_client.force_login(django_user_model.objects.create_user("reader", password="pw"))
    as_reader = reader_client.get(url).content.decode()
    assert "Showing the latest 20 of 25" in as_reader and admin_link not in as_reader
    # Newest first: the oldest (the state change of the fixture) is not among the 20.
    assert "Investigating" not in section
    untriaged = staff_client.get(TestCase.objects.get(pk=history[4].id).get_absolute_url())
    assert "Nobody has triaged this test yet." in untriaged.content.decode()


def test_test_page_queries_do_not_grow_with_its_triage_history(history, triager, staff_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    test = TestCase.objects.get(pk=history[1].id)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert staff_client.get(test.get_absolute_url()).status_code == 200
        return len(ctx.captured_queries)

    queries()  # warm the caches (content types, session)
    few = queries()
    for n in range(30):
        triage_test(test, by=triager, note=f"note {n}")
    assert queries() == few


# ---------------------------------------------------------------- the target tally


def target_tally() -> list:
    from tests.events.state import projected_state

    return projected_state()["target_tally"]


def assert_the_tally_answers_as_the_episodes():
    """Over all history, the target tally (every repository) gives the figures the owner
    episodes give (the one repository every test of the fixture is in), for every owner
    and each alone, at nows before, around and long after the targets' deadlines; and
    the tally is what a count from scratch gives."""
    from events.models import TargetTally
    from events.rollups.targets import rebuild_target_tally

    repository = TestCase.objects.values_list("repository_id", flat=True).first()
    assert set(TestCase.objects.values_list("repository_id", flat=True)) == {repository}
    for now in [at(24, 12), at(25), at(27), at(30), at(31, 5), NOW + timedelta(days=400)]:
        tallied = selectors.owner_targets(period=Period("all", now))
        counted = selectors.owner_targets(period=Period("all", now), repository=repository)
        assert {k: figures(v) for k, v in tallied.items()} == {k: figures(v) for k, v in counted.items()}, now
        for key in (WEB.casefold(), "", "@nobody"):
            one = selectors.owner_targets(period=Period("all", now), owner_key=key)
            assert {k: figures(v) for k, v in one.items()} == {
                k: figures(v) for k, v in counted.items() if k == key
            }, (now, key)
    kept = target_tally()
    TargetTally.objects.all().delete()
    rebuild_target_tally()
    assert target_tally() == kept


def test_the_target_tally_answers_as_the_episodes(history, triager):
    assert_the_tally_answers_as_the_episodes()
    # Own targets for one owner; a late status change reopening t1's history; triage
    # actions on t3 (its first) and on t2 (not its first: changes nothing).
    OwnerTarget.objects.create(owner_key=WEB.casefold(), triage_days=6, fix_days=30)
    change(history[1], at(12), "HEALTHY", "BROKEN")
    triage_at(history[3], at(22, 5), triager, note="looking")
    triage_at(history[2], at(23), triager, note="again")
    assert_the_tally_answers_as_the_episodes()
    assert any(days == 3 for _k, kind, days, _n in target_tally() if kind == "triage")


def test_a_triage_action_after_now_sends_the_figures_to_the_episodes(
    history, triager, django_assert_num_queries
):
    triage_at(history[4], NOW + timedelta(hours=1), triager, note="from the future")
    default, own = selectors.targets_by_owner()
    with django_assert_num_queries(2):  # the probe, then the episodes
        rows = selectors.owner_targets(period=Period("all", NOW), targets=(default, own))
    repository = TestCase.objects.values_list("repository_id", flat=True).first()
    counted = selectors.owner_targets(period=Period("all", NOW), repository=repository)
    assert {k: figures(v) for k, v in rows.items()} == {k: figures(v) for k, v in counted.items()}
