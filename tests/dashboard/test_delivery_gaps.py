"""Outages show on the deliveries page: periods without any delivery that are unusual for
the installation's rate, including one still going on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.selectors.deliveries import delivery_gaps
from events.models import Delivery

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def received(times: list[datetime]) -> None:
    Delivery.objects.bulk_create(
        Delivery(svix_id=f"msg_gap_{i}", body="{}", received_at=at, outcome=Delivery.Outcome.PROCESSED)
        for i, at in enumerate(times)
    )


def every(minutes: int, *, start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(minutes=minutes * i) for i in range(count)]


def test_a_hole_in_a_steady_rate_is_a_gap():
    before = every(5, start=NOW - timedelta(hours=20), count=100)  # until 11h40 ago
    after = every(5, start=before[-1] + timedelta(hours=3), count=100)
    received(before + after)
    found = delivery_gaps(now=after[-1] + timedelta(minutes=5))
    assert found.enough
    [gap] = found.gaps
    assert (gap.start, gap.end) == (before[-1], after[0])
    assert gap.seconds == 3 * 3600


def test_an_outage_going_on_now_is_a_gap_without_an_end():
    times = every(5, start=NOW - timedelta(hours=24), count=200)
    received(times)
    found = delivery_gaps(now=times[-1] + timedelta(hours=6))
    [gap] = found.gaps
    assert gap.start == times[-1] and gap.end is None


def test_a_steady_rate_has_no_gap_and_few_deliveries_say_nothing():
    received(every(5, start=NOW - timedelta(hours=24), count=200))
    assert delivery_gaps(now=NOW - timedelta(hours=24) + timedelta(minutes=5 * 200)).gaps == ()


def test_too_few_deliveries_to_know_the_rate():
    received(every(60, start=NOW - timedelta(days=3), count=10))
    found = delivery_gaps(now=NOW)
    assert not found.enough and found.gaps == ()


def test_the_deliveries_page_shows_the_gap_and_how_to_recover(admin_client):
    times = every(5, start=datetime.now(UTC) - timedelta(hours=30), count=200)
    received(times)
    page = admin_client.get("/deliveries/").content.decode()
    assert "No delivery for unusually long" in page
    assert "until now" in page and "Recover failed messages" in page
