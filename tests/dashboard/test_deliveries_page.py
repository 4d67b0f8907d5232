"""The delivery log (staff only): the filterable table and one delivery as received."""

import json
import uuid

import pytest
from django.urls import reverse

from events.delivery_log import delivery_changes_allowed
from events.demo import payloads
from events.models import Delivery, Repository
from tests.events.factories import MONITOR, at, deliver, fake_test

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
HX = {"HX-Request": "true", "HX-Target": "table"}
URL = "/deliveries/"


def status_change(test, day=2, msg_id=None):
    return deliver(
        payloads.status_changed(
            test,
            at=at(day),
            previous="HEALTHY",
            new="FLAKY",
            monitor_id=MONITOR,
            monitor_type="pass_on_retry",
        ),
        msg_id=msg_id,
    )


@pytest.fixture
def deliveries():
    """One of each outcome but failed: processed (twice delivered), invalid JSON,
    ignored (unknown type), and invalid (no type)."""
    processed = status_change(fake_test(1), msg_id="msg_processed").delivery
    status_change(fake_test(1), msg_id="msg_processed")  # a redelivery
    invalid = deliver("this is not json").delivery
    ignored = deliver({"type": "test_case.something_new", "timestamp": "2026-05-02T00:00:00Z"}).delivery
    untyped = deliver({"hello": "world"}).delivery
    return {"processed": processed, "invalid": invalid, "ignored": ignored, "untyped": untyped}


def ids(response) -> set[int]:
    return {d.pk for d in response.context["page"]}


# ---------------------------------------------------------------- access


@pytest.mark.parametrize("url", [URL, "/deliveries/1/"])
def test_anonymous_is_sent_to_log_in(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", [URL, "/deliveries/1/"])
def test_non_staff_forbidden(reader_client, url):
    assert reader_client.get(url).status_code == 403


@pytest.mark.parametrize("url", [URL, "/deliveries/1/"])
def test_public_dashboard_still_needs_staff(client, settings, url):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_public_dashboard_non_staff_forbidden(reader_client, settings):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    assert reader_client.get(URL).status_code == 403


def test_nav_link_only_for_staff(reader_client, staff):
    assert 'href="/deliveries/"' not in reader_client.get("/").content.decode()
    reader_client.force_login(staff)
    assert 'href="/deliveries/"' in reader_client.get("/").content.decode()


# ---------------------------------------------------------------- the table


def test_empty_state(staff_client):
    body = staff_client.get(URL).content.decode()
    assert "No delivery matches in this period." in body


def test_table(staff_client, deliveries):
    response = staff_client.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert ids(response) == {d.pk for d in deliveries.values()}
    for outcome in ("processed", "invalid", "ignored"):
        assert f'class="badge outcome outcome-{outcome}"' in body
    assert f'href="/deliveries/{deliveries["processed"].pk}/"' in body
    assert "<code>v2.test_case.status_changed</code>" in body and "(no type)" in body
    assert "2026-05-02 00:00:00" in body  # event time
    processed = next(d for d in response.context["page"] if d.pk == deliveries["processed"].pk)
    assert processed.redeliveries == 1
    assert "4 deliveries, newest first." in body
    assert "plotly" not in body  # no chart, no plotly.js


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"outcome": "invalid"}, {"invalid", "untyped"}),
        ({"outcome": "ignored"}, {"ignored"}),
        ({"type": "v2.test_case.status_changed"}, {"processed"}),
        ({"type": "(none)"}, {"invalid", "untyped"}),
        ({"outcome": "invalid", "type": "test_case.something_new"}, set()),
        ({"outcome": "bogus", "type": "no.such.type"}, {"processed", "invalid", "ignored", "untyped"}),
    ],
)
def test_filters(staff_client, deliveries, params, expected):
    response = staff_client.get(URL, params)
    assert response.status_code == 200
    assert ids(response) == {deliveries[name].pk for name in expected}


def test_period_uses_received_time(staff_client, deliveries):
    with delivery_changes_allowed():
        Delivery.objects.filter(pk=deliveries["invalid"].pk).update(
            received_at=Delivery.objects.get(pk=deliveries["invalid"].pk).received_at.replace(year=2020)
        )
    assert deliveries["invalid"].pk not in ids(staff_client.get(URL))
    assert deliveries["invalid"].pk in ids(staff_client.get(URL, {"period": "all"}))


def test_repository_scope(staff_client, deliveries):
    other = payloads.FakeRepository(uuid.UUID(int=77), "https://github.com/acme/other")
    elsewhere = status_change(fake_test(9, repository=other)).delivery
    repo = Repository.objects.get(html_url=other.html_url)
    assert ids(staff_client.get(URL, {"repository": repo.pk})) == {elsewhere.pk}


def test_table_partial_for_htmx(staff_client, deliveries):
    response = staff_client.get(URL, {"outcome": "ignored"}, headers=HX)
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="table"') and "<html" not in body
    assert "1 delivery, newest first." in body and "outcome-processed" not in body
    assert "HX-Request" in response["Vary"]
    empty = staff_client.get(URL, {"outcome": "failed"}, headers=HX).content.decode()
    assert "No delivery matches these filters in this period." in empty


def test_filter_form(staff_client, deliveries):
    body = staff_client.get(URL).content.decode()
    assert 'hx-target="#table"' in body and 'hx-push-url="true"' in body
    assert '<option value="(none)">(no type)</option>' in body
    assert '<option value="test_case.something_new">test_case.something_new</option>' in body


def test_pagination(staff_client):
    for n in range(55):
        status_change(fake_test(100 + n), msg_id=f"msg_{n:03}")
    full = staff_client.get(URL).content.decode()
    assert "Page 1 of 2" in full
    page2 = staff_client.get(URL, {"page": 2}, headers=HX).content.decode()
    assert "Page 2 of 2" in page2 and page2.count("<tr>") == 1 + 5


# ---------------------------------------------------------------- one delivery


def test_detail_pretty_prints_json_and_links_to_the_test(staff_client, deliveries):
    delivery = deliveries["processed"]
    response = staff_client.get(reverse("dashboard:delivery-detail", args=[delivery.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert json.dumps(json.loads(delivery.body), indent=2).replace('"', "&quot;") in body
    assert "<code>svix-signature</code>" in body and "msg_processed" in body
    assert "Status change" in body and f'href="/tests/{uuid.UUID(int=1)}/"' in body
    assert "Redeliveries</dt><dd>1 (last" in body


def test_detail_raw_body_and_error(staff_client, deliveries):
    body = staff_client.get(reverse("dashboard:delivery-detail", args=[deliveries["invalid"].pk])).content
    text = body.decode()
    assert '<pre class="payload" tabindex="0">this is not json</pre>' in text
    assert "body is not JSON" in text and "<h2>Error</h2>" in text
    assert "only processed deliveries are projected" in text


def test_detail_hostile_payload_escaped(staff_client):
    delivery = status_change(fake_test(7, name=HOSTILE, codeowners=[HOSTILE])).delivery
    response = staff_client.get(reverse("dashboard:delivery-detail", args=[delivery.pk]))
    body = response.content.decode()
    assert ESCAPED in body and "<script>alert" not in body
    raw = deliver(f"<b>{HOSTILE}</b> not json").delivery
    body = staff_client.get(reverse("dashboard:delivery-detail", args=[raw.pk])).content.decode()
    assert ESCAPED in body and "<script>alert" not in body and "<b>" not in body
    listing = staff_client.get(URL).content.decode()
    assert "<script>alert" not in listing


def test_detail_404(staff_client):
    assert staff_client.get(reverse("dashboard:delivery-detail", args=[999])).status_code == 404


@pytest.mark.parametrize("size", [10, 40])
def test_query_budget_does_not_grow(staff_client, load_demo, django_assert_max_num_queries, size):
    load_demo(tests=size, days=30)
    # session and user (2), repositories (1), type choices (1), count and page (2), the
    # gaps: the window's totals and its longest gaps (2)
    with django_assert_max_num_queries(8):
        assert staff_client.get(URL, {"period": "all"}).status_code == 200
    with django_assert_max_num_queries(5):
        params = {"period": "all", "outcome": "processed", "type": "v2.test_case.status_changed", "page": 2}
        assert staff_client.get(URL, params, headers=HX).status_code == 200
    delivery = Delivery.objects.filter(investigation__isnull=False).first()
    # session and user (2), the delivery with its projections (1), repositories (1)
    with django_assert_max_num_queries(4):
        assert staff_client.get(reverse("dashboard:delivery-detail", args=[delivery.pk])).status_code == 200


def test_the_health_card_counts_the_last_24_hours_exactly(staff_client):
    """delivery_health counts each outcome from its own index (dashboard/selectors/
    deliveries.py): every figure is still the rows the deliveries page lists with
    received=24h (and that outcome), at both ends of the window, for every outcome."""
    from datetime import UTC, datetime, timedelta

    from dashboard.selectors.deliveries import HEALTH_WINDOW, delivery_health, delivery_list
    from events.metrics import Period

    now = datetime(2026, 5, 20, 12, tzinfo=UTC)
    assert delivery_health(now=now) == {"total": 0, "invalid": 0, "failed": 0, "pending": 0}
    tick = timedelta(microseconds=1)
    # Per outcome, a different number inside the window, and one just outside each end.
    inside = {"processed": 3, "ignored": 1, "invalid": 2, "failed": 4, "pending": 5}
    times = [now - HEALTH_WINDOW + tick, now, now - timedelta(hours=3)]
    for outcome, n in inside.items():
        received = [times[i % len(times)] for i in range(n)] + [now - HEALTH_WINDOW, now + tick]
        for i, when in enumerate(received):
            Delivery.objects.create(
                svix_id=f"msg_{outcome}_{i}", body="{}", received_at=when, outcome=outcome
            )
    health = delivery_health(now=now)
    assert health == {"total": 15, "invalid": 2, "failed": 4, "pending": 5}
    period = Period.parse(None, now=now)
    assert health["total"] == delivery_list(period=period, last_24h=True).count()
    for outcome in ("invalid", "failed", "pending"):
        assert health[outcome] == delivery_list(period=period, outcome=outcome, last_24h=True).count()
    # A moment later the oldest (7: one in three of each outcome) have left the window
    # and the one just after `now` of each outcome (5) has entered it.
    later = delivery_health(now=now + tick)
    assert later == {"total": 15 - 7 + 5, "invalid": 2 - 1 + 1, "failed": 4 - 2 + 1, "pending": 5 - 2 + 1}
