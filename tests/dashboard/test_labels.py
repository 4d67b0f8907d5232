"""One label per concept on every page and chart (events.metrics.LABELS), and Trunk's
7-day figures shown "as of" the event that carried them (issue 14)."""

import dataclasses
import re

import pytest
from django.urls import reverse

from events.demo import payloads
from events.metrics import LABELS, OLD_LABELS
from events.models import Owner, TestCase
from tests.events.factories import MONITOR, at, deliver, fake_test

pytestmark = pytest.mark.django_db


def visible_text(body: str) -> str:
    """The page's text and attribute values (titles, chart JSON), tags removed."""
    return re.sub(r"<[^>]*?>", " ", body) + " ".join(re.findall(r'title="([^"]*)"', body))


def test_no_page_shows_an_old_label_and_each_page_its_labels(staff_client, load_demo):
    load_demo(tests=20, days=30)
    test = TestCase.objects.order_by("pk").first()
    owner = Owner.objects.order_by("pk").first()
    pages = {
        "/": [
            "median_time_to_fix",
            "active_monitors",
            "quarantined",
            "median_quarantine_age",
            "ready_to_release",
        ],
        "/tests/": ["failure_rate", "prs_impacted", "status_since", "quarantined"],
        "/codeowners/": ["median_time_to_fix", "oldest_open", "relapses", "quarantined"],
        f"/codeowners/{owner.pk}/": ["median_time_to_fix", "oldest_open", "status_since"],
        "/monitors/": ["median_time_to_resolve", "activations", "active_since", "monitor_type"],
        "/investigations/": ["fixed_within_14_days"],
        "/deliveries/": [],
        "/quarantine/": ["quarantined_since", "quarantine_age", "ready_to_release", "active_monitors"],
        "/digest/": ["relapses", "fixes_verified", "triage_target_met", "fix_target_met", "ready_to_release"],
        test.get_absolute_url(): ["failure_rate", "prs_impacted", "status_since", "quarantined"],
    }
    for url, keys in pages.items():
        body = staff_client.get(url, {"period": "all"}).content.decode()
        text = visible_text(body)
        for old in OLD_LABELS:
            assert old not in text, (url, old)
        for key in keys:
            assert LABELS[key] in text, (url, key)


def test_the_label_filter_refuses_an_unknown_concept():
    from dashboard.templatetags.dashboard import label

    assert label("failure_rate") == "Failure rate 7d"
    with pytest.raises(KeyError):
        label("failure rate")


# ---------------------------------------------------------------- "as of"


def test_trunks_figures_as_of_the_event_that_carried_them(reader_client):
    newer = fake_test(5, failure_rate_last_7d=0.25, pull_requests_impacted_last_7d=4)
    older = dataclasses.replace(newer, failure_rate_last_7d=0.9, pull_requests_impacted_last_7d=40)
    kwargs = {"monitor_id": MONITOR, "monitor_type": "failure_rate", "status": "active"}
    deliver(payloads.monitor_status_changed(newer, at=at(10, 14), **kwargs))
    deliver(payloads.monitor_status_changed(older, at=at(3), **kwargs))  # late and older: ignored
    test = TestCase.objects.get(pk=newer.id)
    assert (test.failure_rate_last_7d, test.attributes_at) == (0.25, at(10, 14))

    body = reader_client.get(test.get_absolute_url()).content.decode()
    assert "25%" in body and "Trunk's figures as of" in body
    assert re.search(r"Trunk's figures as of <time[^>]*>2026-05-10 14:00 UTC</time>", body)

    body = reader_client.get(reverse("dashboard:tests")).content.decode()
    assert body.count('title="Trunk&#x27;s figure over the 7 days before the last event') == 2
    assert 'title="0.25, as of 2026-05-10 14:00 UTC"' in body
    assert 'title="as of 2026-05-10 14:00 UTC">4<' in body


def deliver_tests(numbers: range) -> None:
    """A failure-rate monitor activation for each of these fake tests."""
    for n in numbers:
        deliver(
            payloads.monitor_status_changed(
                fake_test(n + 1, failure_rate_last_7d=0.1),
                at=at(4),
                monitor_id=MONITOR,
                monitor_type="failure_rate",
                status="active",
            )
        )


def test_as_of_keeps_the_tests_table_queries_constant(reader_client, django_assert_max_num_queries):
    deliver_tests(range(3))
    with django_assert_max_num_queries(12) as few:
        reader_client.get(reverse("dashboard:tests"))
    deliver_tests(range(3, 30))
    with django_assert_max_num_queries(len(few.captured_queries)):
        reader_client.get(reverse("dashboard:tests"))
