"""The test detail page: facts, timelines, investigations, history, deliveries, triage."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dashboard import charts
from dashboard.selectors.tests import Interval
from events.demo import payloads
from events.models import TRIAGE_NOTE_MAX_LENGTH, Delivery, Investigation, TestCase
from events.triage import set_verdict, triage_test
from tests.dashboard.test_markdown import elements
from tests.events.factories import MONITOR, at, deliver, fake_test

pytestmark = pytest.mark.django_db

MONITOR_B = uuid.UUID(int=4242)
INVESTIGATION = uuid.UUID(int=31337)


def detail_url(test) -> str:
    return reverse("dashboard:test-detail", args=[test.id])


def triage_url(test) -> str:
    return reverse("dashboard:test-triage", args=[test.id])


def monitor(test, when, status, *, monitor_id=MONITOR, monitor_type="pass_on_retry", evidence=None):
    deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=monitor_id, monitor_type=monitor_type, status=status, evidence=evidence
        )
    )


def change(test, when, previous, new):
    deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


def investigate(test, when, *, summary, failure_message="", facts=(), confidence=0.86, investigation_id=None):
    deliver(
        payloads.investigation_completed(
            test,
            at=when,
            investigation_id=investigation_id or uuid.uuid4(),
            confidence=confidence,
            markdown_summary=summary,
            failure_message=failure_message,
            facts=list(facts),
        )
    )


def quarantine(test, when, *, reason="Flaky on main, ticket QA-1"):
    deliver(
        payloads.quarantining_setting_changed(
            test,
            at=when,
            previous="AUTO",
            updated="ALWAYS_QUARANTINE",
            actor_email="ana@example.com",
            actor_name="Ana Lima",
            reason=reason,
        )
    )


@pytest.fixture
def flaky_test():
    """Seen day 1; FLAKY day 2 -> HEALTHY day 5 -> FLAKY day 10 (a relapse, still open).
    pass_on_retry active day 2, resolved day 5; failure_rate active day 10 (still active).
    One investigation (day 3), one quarantine change (day 4)."""
    test = fake_test(1, name="test_refund_is_idempotent", codeowners=["@Acme/Payments"], variant="linux")
    monitor(test, at(1), "resolved", monitor_id=MONITOR_B, monitor_type="failure_rate")
    monitor(test, at(2), "active", evidence={"failure_rate": 0.42, "threshold": 0.2, "window_days": 7})
    change(test, at(2), "HEALTHY", "FLAKY")
    investigate(
        test,
        at(3),
        investigation_id=INVESTIGATION,
        summary="**Timeout talking to the sandbox.** See [run 4](https://ci.example.com/runs/4).",
        failure_message="AssertionError: expected 200, got 504",
        facts=[
            {"fact_type": "CI_LOGS", "content": "3 of the last 5 runs log `504`.", "confidence": 0.9},
            {"fact_type": "GIT_BLAME", "content": "Changed in *abc123*.", "confidence": 0.4},
        ],
    )
    test.quarantined = True
    quarantine(test, at(4))
    monitor(test, at(5), "resolved", evidence={"retried_runs": [], "window_days": 7})
    change(test, at(5), "FLAKY", "HEALTHY")
    monitor(
        test,
        at(10),
        "active",
        monitor_id=MONITOR_B,
        monitor_type="failure_rate",
        evidence={"retried_runs": [{"run_id": 123456, "attempts": 2}], "window_days": 7},
    )
    change(test, at(10), "HEALTHY", "FLAKY")
    return test


# ---------------------------------------------------------------- access


def test_login_required(client, flaky_test):
    for url in (detail_url(flaky_test), triage_url(flaky_test)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = client.post(triage_url(flaky_test), {"triage_state": "fixed"})
    assert response.status_code == 302
    assert TestCase.objects.get(pk=flaky_test.id).triage_state == "new"


def test_public_dashboard_setting(client, settings, flaky_test):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    assert client.get(detail_url(flaky_test)).status_code == 200
    # Reading is public, editing is not.
    assert client.post(triage_url(flaky_test), {"triage_state": "fixed"}).status_code == 403


def test_public_dashboard_names_no_triager_to_anonymous_visitors(client, settings, flaky_test, user):
    """Staff account names are internal: an anonymous visitor of a public dashboard sees
    that a triager made each change (triage history, verdict), not who."""
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    zed = get_user_model().objects.create_user("zed-the-triager", is_staff=True)
    triage_test(TestCase.objects.get(pk=flaky_test.id), by=zed, state="investigating")
    set_verdict(Investigation.objects.get(pk=INVESTIGATION), by=zed, verdict="confirmed")
    anonymous = client.get(detail_url(flaky_test)).content.decode()
    assert "zed-the-triager" not in anonymous
    assert "Triage state: New → Investigating." in anonymous and "a triager" in anonymous
    client.force_login(user)
    assert (
        client.get(detail_url(flaky_test)).content.decode().count("zed-the-triager") == 3
    )  # 2 rows, 1 verdict


def test_unknown_test_is_404(reader_client):
    url = reverse("dashboard:test-detail", args=[uuid.uuid4()])
    assert reader_client.get(url).status_code == 404


# ---------------------------------------------------------------- the page


def test_detail_page_shows_everything(reader_client, flaky_test):
    response = reader_client.get(detail_url(flaky_test))
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        "<title>test_refund_is_idempotent · flakyboard</title>",
        "tests.suite.Test1",  # classname
        "tests/suite/test_1.py",  # file
        '<a href="https://github.com/acme/checkout" rel="noopener noreferrer nofollow">acme/checkout</a>',
        ">@Acme/Payments</a>",  # owner, as first seen, linking to its tests
        f'href="{reverse("dashboard:tests")}?owner=%40acme%2Fpayments"',
        '<span class="tag variant">linux</span>',
        '<span class="badge quarantined">Quarantined</span>',
        '<span class="badge status-flaky">Flaky</span>',
        f'<a href="https://app.trunk.io/demo/flaky-tests/test/{flaky_test.id}" rel="noopener noreferrer nofollow"',
        # charts from JSON islands, plotly loaded once through the scripts block
        'id="status-chart-data"',
        'id="monitor-chart-data"',
        # episodes: closed one of 3 days, open relapse
        "2026-05-02 00:00",
        "3d 0h",
        '<span class="badge open">open</span>',
        '<span class="badge relapse"',
        # investigation
        "high confidence · 0.86",
        "<strong>Timeout talking to the sandbox.</strong>",
        '<a href="https://ci.example.com/runs/4" rel="noopener noreferrer nofollow">run 4</a>',
        '<pre class="failure" tabindex="0">AssertionError: expected 200, got 504</pre>',
        '<span class="tag fact-type">CI_LOGS</span>',
        '<span class="badge band-low">0.40</span>',
        "<code>504</code>",
        "<em>abc123</em>",
        # monitor events with readable evidence
        "<dt>failure_rate</dt><dd>0.42</dd>",
        "<dt>retried_runs</dt><dd><ul><li>run_id: 123456 · attempts: 2</li></ul></dd>",
        "<dt>retried_runs</dt><dd><code>[]</code></dd>",
        # quarantine change
        "<code>AUTO</code> → <code>ALWAYS_QUARANTINE</code>",
        "Ana Lima",
        "Flaky on main, ticket QA-1",
        # triage, read-only for a reader
        '<span class="triage triage-new">New</span>',
        "Unassigned",
    ):
        assert text in body, text
    assert body.count("vendor/plotly.min.js") == 1
    assert "{#" not in body and "{%" not in body
    assert 'action="/tests/' not in body  # no triage form for a reader
    # Deliveries: listed with their svix ids, linked only for staff.
    svix_ids = list(Delivery.objects.values_list("svix_id", flat=True))
    assert len(svix_ids) == 9 and all(svix_id in body for svix_id in svix_ids)
    assert "/deliveries/" not in body


def test_staff_see_delivery_links_and_the_triage_form(staff_client, flaky_test):
    body = staff_client.get(detail_url(flaky_test)).content.decode()
    delivery = Delivery.objects.order_by("-received_at", "-id").first()
    assert f'href="{reverse("dashboard:delivery-detail", args=[delivery.pk])}"' in body
    assert f'hx-post="{triage_url(flaky_test)}"' in body
    assert 'hx-target="#triage"' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert 'name="triage_state"' in body and 'name="assignee"' in body and 'name="triage_note"' in body


def test_status_timeline_chart(reader_client, flaky_test):
    response = reader_client.get(detail_url(flaky_test))
    figure = response.context["status_chart"]
    now = response.context["now"]
    by_name = {trace["name"]: trace for trace in figure["data"]}
    assert set(by_name) == {"Healthy", "Flaky"}
    assert by_name["Flaky"]["marker"]["color"] == charts.STATUS_COLORS["FLAKY"]
    assert by_name["Healthy"]["marker"]["color"] == charts.STATUS_COLORS["HEALTHY"]
    assert all(trace["orientation"] == "h" for trace in figure["data"])
    assert figure["layout"]["xaxis"]["type"] == "date"
    assert figure["layout"]["title"]["text"]
    assert figure["layout"]["xaxis"]["title"]["text"] == "Time (UTC)"
    # Flaky day 2 -> day 5 (3 days) and day 10 -> now (the open interval ends at now).
    flaky = by_name["Flaky"]
    assert [datetime.fromisoformat(b) for b in flaky["base"]] == [at(2), at(10)]
    assert flaky["x"][0] == timedelta(days=3).total_seconds() * 1000
    assert flaky["x"][1] == pytest.approx((now - at(10)).total_seconds() * 1000)
    assert flaky["customdata"][1][1] == "now"
    assert "hovertemplate" in flaky


def test_monitor_timeline_chart(reader_client, flaky_test):
    figure = reader_client.get(detail_url(flaky_test)).context["monitor_chart"]
    rows = {y for trace in figure["data"] for y in trace["y"]}
    assert rows == {
        f"Pass on retry monitor · {str(MONITOR)[:8]}",
        f"Failure rate monitor · {str(MONITOR_B)[:8]}",
    }
    assert {trace["name"] for trace in figure["data"]} == {"Pass on retry monitor", "Failure rate monitor"}
    # No monitor is drawn in a status colour.
    assert not {t["marker"]["color"] for t in figure["data"]} & set(charts.STATUS_COLORS.values())
    pass_on_retry = next(t for t in figure["data"] if t["name"] == "Pass on retry monitor")
    assert pass_on_retry["x"] == [timedelta(days=3).total_seconds() * 1000]
    failure_rate = next(t for t in figure["data"] if t["name"] == "Failure rate monitor")
    assert failure_rate["customdata"][0][1] == "now (still active)"
    assert figure["layout"]["yaxis"]["title"]["text"] == "Monitor"


def test_chart_builders_empty_cases():
    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert charts.status_timeline([], now=now) is None
    assert charts.monitor_timeline([], now=now) is None
    only_resolved = [{"monitor_id": MONITOR, "type": "failure_rate", "intervals": []}]
    assert charts.monitor_timeline(only_resolved, now=now) is None
    single = charts.status_timeline([Interval("HEALTHY", now - timedelta(days=1), None)], now=now)
    assert [t["name"] for t in single["data"]] == ["Healthy"]


def test_quiet_test_shows_empty_states(reader_client):
    quiet = fake_test(2, name="test_quiet", codeowners=[])
    monitor(quiet, at(1), "resolved")
    body = reader_client.get(detail_url(quiet)).content.decode()
    for text in (
        "No episode: this test has never left healthy.",
        "No investigation for this test yet.",
        "No monitor has been active for this test.",
        "Nobody changed this test's quarantine setting.",
        "No status change yet",
        "(no owner)",
    ):
        assert text in body, text
    assert 'id="status-chart-data"' in body  # a healthy strip from first seen to now


def test_evidence_of_other_shapes(reader_client):
    test = fake_test(4, name="test_evidence")
    monitor(test, at(1), "active", evidence={"matrix": [[1, 2], [3]], "note": None, "deep": {"a": {"b": 1}}})
    monitor(test, at(2), "resolved", evidence=["free", "form", {"x": 1}], monitor_id=MONITOR_B)
    body = reader_client.get(detail_url(test)).content.decode()
    assert "<dt>matrix</dt><dd><code>[[1, 2], [3]]</code></dd>" in body
    assert "<dt>note</dt><dd>null</dd>" in body
    assert "<dt>deep</dt><dd><code>{&quot;a&quot;: {&quot;b&quot;: 1}}</code></dd>" in body
    assert '<pre class="evidence" tabindex="0">[\n  &quot;free&quot;,' in body


def test_evidence_list_is_cut(reader_client):
    """A list of 20,000 runs in the evidence shows its first items and how many more."""
    test = fake_test(5, name="test_huge_evidence")
    monitor(test, at(1), "active", evidence={"runs": [{"run": i, "ok": i % 2 == 0} for i in range(20_000)]})
    body = reader_client.get(detail_url(test)).content.decode()
    # (PostgreSQL's jsonb keeps the keys in its own order: "ok" before "run".)
    assert re.search(r"<li>[^<]*run: 49\b", body) and not re.search(r"run: 50\b", body)
    assert "<li>… 19950 more (truncated)</li>" in body


def test_sections_are_capped_with_a_note(reader_client, flaky_test, monkeypatch):
    for name in (
        "MONITOR_EVENTS_SHOWN",
        "STATUS_CHANGES_SHOWN",
        "DELIVERIES_SHOWN",
        "EPISODES_SHOWN",
        "INVESTIGATIONS_SHOWN",
    ):
        monkeypatch.setattr(f"dashboard.views.tests.{name}", 1)
    investigate(flaky_test, at(11), summary="second")
    response = reader_client.get(detail_url(flaky_test))
    body = response.content.decode()
    assert "Showing the latest 1 of 4 monitor events." in body
    assert "Showing the latest 1 of 3 status changes." in body
    assert "Showing the latest 1 of 10 deliveries." in body
    assert "Showing the latest 1 of 2 episodes." in body
    assert "Showing the latest 1 of 2 investigations." in body
    assert len(response.context["monitor_events"]) == 1
    # Newest first.
    assert response.context["episodes"][0]["started_at"] == at(10)
    assert response.context["investigations"][0].markdown_summary == "second"


# ---------------------------------------------------------------- untrusted content


def test_hostile_content_is_escaped_or_sanitised(staff_client):
    hostile = fake_test(
        3,
        name="<script>alert('name')</script>",
        classname="<img src=x onerror=alert(1)>",
        file_path="<svg onload=alert(1)>",
        codeowners=["<b onmouseover=alert(1)>@x</b>"],
        variant="<i>v</i>",
    )
    monitor(
        hostile,
        at(1),
        "active",
        monitor_type="<script>alert('type')</script>",
        evidence={"</pre><script>alert(1)</script>": "<img src=x onerror=alert(2)>", "n": [{"<a>": "<b>"}]},
    )
    investigate(
        hostile,
        at(2),
        summary="<script>alert(3)</script> [x](javascript:alert(4)) <img src=x onerror=alert(5)> "
        '<a href="javascript:alert(6)">a</a> ![i](data:image/png;base64,AAAA)',
        failure_message="</pre><script>alert(7)</script>",
        facts=[{"fact_type": "<script>x</script>", "content": "[y](javascript:alert(8))", "confidence": 0.1}],
    )
    deliver(
        payloads.quarantining_setting_changed(
            hostile,
            at=at(3),
            previous="<script>",
            updated="ALWAYS_QUARANTINE",
            actor_email="<script>@evil",
            actor_name="<img src=x onerror=alert(9)>",
            reason="<script>alert(10)</script>",
        )
    )
    TestCase.objects.filter(pk=hostile.id).update(
        html_url="javascript:alert(11)", triage_note="<script>alert(12)</script>"
    )
    for client_body in (
        staff_client.get(detail_url(hostile)).content.decode(),
        staff_client.get(reverse("dashboard:tests")).content.decode(),
    ):
        assert "<script>alert" not in client_body
        assert "<script>x" not in client_body
        assert "<img src=x" not in client_body
        assert "<svg" not in client_body
        assert "<b onmouseover" not in client_body
        assert "data:image" not in client_body
        for tag, attrs in elements(client_body):
            assert not any(name.startswith("on") for name in attrs), (tag, attrs)
            for name in ("href", "src", "action", "hx-get", "hx-post"):
                assert not (attrs.get(name) or "").lower().startswith(("javascript:", "data:")), (tag, attrs)
    body = staff_client.get(detail_url(hostile)).content.decode()
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in body
    assert "Open in Trunk" not in body  # a javascript: URL is not linked
    # Chart data islands are JSON with <, > and & escaped, and plotly labels are plain text.
    assert "\\u003cscript\\u003e" in body or "&lt;script" in body
    figure = json.loads(
        body.split('id="monitor-chart-data" type="application/json">')[1].split("</script>")[0]
    )
    assert all("<" not in y for trace in figure["data"] for y in trace["y"])


# ---------------------------------------------------------------- triage


def test_triage_partial_get(reader_client, flaky_test):
    response = reader_client.get(triage_url(flaky_test))
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="triage"')
    assert "<html" not in body and "<form" not in body


def test_reader_cannot_edit_triage(reader_client, flaky_test):
    response = reader_client.post(
        triage_url(flaky_test),
        {"triage_state": "fixed", "triage_note": "done"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 403
    test = TestCase.objects.get(pk=flaky_test.id)
    assert test.triage_state == "new" and test.triage_note == ""
    assert not LogEntry.objects.exists()


def test_staff_edit_triage_with_htmx(staff_client, staff, flaky_test):
    response = staff_client.post(
        triage_url(flaky_test),
        {"triage_state": "investigating", "assignee": staff.pk, "triage_note": "Sandbox timeouts; see QA-1"},
        headers={"HX-Request": "true", "HX-Target": "triage"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="triage"') and "<html" not in body
    assert "Saved." in body
    assert '<option value="investigating" selected>' in body
    test = TestCase.objects.get(pk=flaky_test.id)
    assert (test.triage_state, test.assignee, test.triage_note) == (
        "investigating",
        staff,
        "Sandbox timeouts; see QA-1",
    )
    entry = LogEntry.objects.get()
    assert entry.action_flag == CHANGE and entry.user == staff
    assert entry.object_id == str(flaky_test.id)
    assert entry.content_type.model_class() is TestCase
    # The admin history's triage format (events.triage), as for a change made in the admin.
    assert entry.get_change_message() == (
        f"Triage state: New → Investigating. Assignee: nobody → {staff}. Triage note edited. (dashboard)"
    )


def test_triage_change_lists_only_changed_fields(staff_client, flaky_test):
    staff_client.post(triage_url(flaky_test), {"triage_state": "fixed"}, headers={"HX-Request": "true"})
    assert LogEntry.objects.get().change_message == "Triage state: New → Fixed. (dashboard)"
    # Saving the same values again records nothing.
    staff_client.post(triage_url(flaky_test), {"triage_state": "fixed"}, headers={"HX-Request": "true"})
    assert LogEntry.objects.count() == 1


def test_staff_edit_triage_without_javascript_redirects_back(staff_client, flaky_test):
    response = staff_client.post(triage_url(flaky_test), {"triage_state": "wont_fix"})
    assert response.status_code == 302 and response["Location"] == detail_url(flaky_test)
    assert TestCase.objects.get(pk=flaky_test.id).triage_state == "wont_fix"


def test_invalid_triage_shows_errors_and_saves_nothing(staff_client, flaky_test):
    response = staff_client.post(
        triage_url(flaky_test),
        {"triage_state": "someday", "triage_note": "x"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert 'class="error"' in response.content.decode()
    assert TestCase.objects.get(pk=flaky_test.id).triage_note == ""
    assert not LogEntry.objects.exists()
    response = staff_client.post(triage_url(flaky_test), {"triage_state": "someday"})
    assert response.status_code == 400 and "<html" in response.content.decode()


def test_the_triage_note_is_bounded(staff_client, flaky_test):
    too_long = {"triage_state": "new", "triage_note": "x" * (TRIAGE_NOTE_MAX_LENGTH + 1)}
    response = staff_client.post(triage_url(flaky_test), too_long, headers={"HX-Request": "true"})
    assert "Ensure this value has at most 10000 characters (it has 10001)." in response.content.decode()
    response = staff_client.post(triage_url(flaky_test), too_long)
    assert response.status_code == 400
    assert TestCase.objects.get(pk=flaky_test.id).triage_note == ""
    assert not LogEntry.objects.exists()
    fits = {"triage_state": "new", "triage_note": "x" * TRIAGE_NOTE_MAX_LENGTH}
    assert staff_client.post(triage_url(flaky_test), fits).status_code == 302
    assert len(TestCase.objects.get(pk=flaky_test.id).triage_note) == TRIAGE_NOTE_MAX_LENGTH


def test_change_permission_is_enough(client, django_user_model, flaky_test):
    editor = django_user_model.objects.create_user("editor", password="pw")
    editor.user_permissions.add(Permission.objects.get(codename="change_testcase"))
    client.force_login(editor)
    assert 'hx-post="' in client.get(detail_url(flaky_test)).content.decode()
    response = client.post(triage_url(flaky_test), {"triage_state": "fixed"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert TestCase.objects.get(pk=flaky_test.id).triage_state == "fixed"


def test_triage_post_needs_the_csrf_token(staff, flaky_test):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.post(triage_url(flaky_test), {"triage_state": "fixed"}).status_code == 403
    client.get(detail_url(flaky_test))  # sets the csrftoken cookie, as the page does
    token = client.cookies["csrftoken"].value
    response = client.post(
        triage_url(flaky_test),
        {"triage_state": "fixed"},
        headers={"HX-Request": "true", "X-CSRFToken": token},  # what app.js adds for htmx
    )
    assert response.status_code == 200
    assert TestCase.objects.get(pk=flaky_test.id).triage_state == "fixed"


# ---------------------------------------------------------------- query budget

DETAIL_BUDGET = 21  # 20, and the test's fixes that held (1)


def busiest_test() -> TestCase:
    return (
        TestCase.objects.annotate(events=Count("monitor_events", distinct=True) + Count("status_changes"))
        .order_by("-events", "pk")
        .first()
    )


@pytest.mark.parametrize("size", [10, 40])
def test_detail_query_budget_does_not_grow(staff_client, load_demo, django_assert_max_num_queries, size):
    load_demo(tests=size, days=60)
    test = busiest_test()
    with django_assert_max_num_queries(DETAIL_BUDGET):
        assert staff_client.get(detail_url(test)).status_code == 200


def test_detail_queries_do_not_grow_with_events(staff_client, flaky_test):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries_run:
            assert staff_client.get(detail_url(flaky_test)).status_code == 200
        return len(queries_run)

    before = count()
    for day in range(11, 26):  # 30 more monitor events, 15 more investigations with facts
        monitor(flaky_test, at(day), "resolved")
        monitor(flaky_test, at(day, 12), "active")
        investigate(
            flaky_test, at(day, 13), summary=f"run {day}", facts=[{"fact_type": "CI_LOGS", "content": "x"}]
        )
    assert count() == before <= DETAIL_BUDGET
