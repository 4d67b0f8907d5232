"""events.admin.helpers and events.orm: the paginator's count, distinct values, byte sizes,
input and output."""

import uuid

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.selectors import deliveries as deliveries_selectors
from dashboard.selectors import investigations as investigations_selectors
from events.admin import DeliveryAdmin, TestCaseAdmin
from events.admin.helpers import EstimatedCountPaginator, OctetLength, parse_uuid
from events.models import Delivery, TestCase
from events.orm import distinct_values
from events.untrusted import csv_safe, safe_http_url
from tests.admin.factories import make_history

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")


def test_paginator_counts_exactly_below_the_threshold_and_on_sqlite():
    make_history(5, 1)
    paginator = EstimatedCountPaginator(TestCase.objects.all(), 2)
    assert paginator.count == 5
    assert paginator.num_pages == 3
    assert EstimatedCountPaginator(TestCase.objects.filter(variant="linux"), 2).count == 2
    assert EstimatedCountPaginator([1, 2, 3], 2).count == 3  # not a queryset


@on_postgres
@pytest.mark.postgres
def test_paginator_uses_the_planner_estimate_for_a_large_unfiltered_table(monkeypatch):
    make_history(5, 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_testcase")
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_threshold", 3)
    with CaptureQueriesContext(connection) as ctx:
        count = EstimatedCountPaginator(TestCase.objects.all(), 2).count
    assert count == 5
    assert len(ctx.captured_queries) == 1 and "reltuples" in ctx.captured_queries[0]["sql"]
    # A filtered list is counted exactly.
    with CaptureQueriesContext(connection) as ctx:
        assert EstimatedCountPaginator(TestCase.objects.filter(variant="linux"), 2).count == 2
    assert "COUNT(*)" in ctx.captured_queries[-1]["sql"]


@pytest.mark.parametrize(
    ("reltuples", "expected"),
    [(None, None), (-1.0, None), (0.0, None), (100_000.0, None), (100_001.0, 100_001), (2.5e6, 2_500_000)],
)
def test_estimate_is_used_only_for_a_large_analysed_table(reltuples, expected):
    # -1: never vacuumed or analysed (PostgreSQL 14+); None: no such table.
    assert EstimatedCountPaginator.usable_estimate(reltuples) == expected


def test_admin_change_lists_use_the_estimating_paginator(admin_client):
    make_history(2, 1)
    for model in ("testcase", "delivery", "statuschange", "monitorevent", "investigation"):
        assert isinstance(
            admin_client.get(f"/admin/events/{model}/").context["cl"].paginator, EstimatedCountPaginator
        )


def test_distinct_values_in_order():
    make_history(4, 1)
    assert distinct_values(TestCase, "variant") == ["", "linux"]
    assert distinct_values(Delivery, "event_type") == ["v2.test_case.status_changed"]
    assert distinct_values(TestCase, "variant", limit=1) == [""]


def test_octet_length_counts_bytes():
    Delivery.objects.create(
        svix_id="msg_1", body="é€😀", received_at="2026-05-01T00:00:00Z", outcome="invalid"
    )
    assert Delivery.objects.annotate(n=OctetLength("body")).get().n == len("é€😀".encode()) == 9


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("3c9a7b52-8e1f-5d4a-9b6c-0e2f4a6c8d1b", uuid.UUID("3c9a7b52-8e1f-5d4a-9b6c-0e2f4a6c8d1b")),
        (" 3C9A7B528E1F5D4A9B6C0E2F4A6C8D1B ", uuid.UUID("3c9a7b52-8e1f-5d4a-9b6c-0e2f4a6c8d1b")),
        ("{3c9a7b52-8e1f-5d4a-9b6c-0e2f4a6c8d1b}", uuid.UUID("3c9a7b52-8e1f-5d4a-9b6c-0e2f4a6c8d1b")),
        ("3c9a7b52", None),
        ("test_refund_is_idempotent_and_more_than_32", None),
        ("", None),
    ],
)
def test_parse_uuid(term, expected):
    assert parse_uuid(term) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("@acme/web; @Acme/Payments", "@acme/web; @Acme/Payments"),  # codeowner handles
        ("@acme-web", "@acme-web"),
        ("@A1-B1", "'@A1-B1"),  # a cell reference, not a handle
        ("@$AB$12", "'@$AB$12"),
        (" =1+2", "' =1+2"),
        ("\n=1+2", "'\n=1+2"),
        ("\uff1d1+2", "'\uff1d1+2"),  # full-width equals sign
        ("test_ok", "test_ok"),
        (0.5, 0.5),
    ],
)
def test_csv_safe(value, expected):
    assert csv_safe(value) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://app.trunk.io/x", "https://app.trunk.io/x"),
        ("http://example.com", "http://example.com"),
        ("javascript:alert(1)", ""),
        (" JavaScript:alert(1)", ""),
        ("data:text/html,x", ""),
        ("", ""),
        ("http://[::1", ""),  # urlsplit raises on an invalid IPv6 host: the page answered 500
        ("https://[not-an-ip]/x", ""),
    ],
)
def test_safe_http_url(url, expected):
    assert safe_http_url(url) == expected


@on_postgres
@pytest.mark.postgres
def test_an_unfiltered_admin_list_of_a_large_table_is_not_counted(admin_client, monkeypatch):
    make_history(5, 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_testcase")
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_threshold", 3)  # "large" from 4 rows
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get("/admin/events/testcase/")
    assert response.context["cl"].result_count == 5
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get("/admin/events/testcase/?variant=linux")
    assert response.context["cl"].result_count == 2
    assert [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]


def test_fast_action_checkbox_is_djangos_html():
    """FastChangeListAdmin writes the row checkbox with format_html (the widget template
    cost ~1 ms a row): the HTML must stay Django's, escaping included."""
    make_history(1, 1)
    test = TestCase.objects.get()
    test.name = "<b>\"hostile\" & 'name'</b>"
    model_admin = TestCaseAdmin(TestCase, admin.site)
    assert model_admin.action_checkbox(test) == admin.ModelAdmin.action_checkbox(model_admin, test)
    delivery = Delivery.objects.first()
    delivery_admin = DeliveryAdmin(Delivery, admin.site)
    assert delivery_admin.action_checkbox(delivery) == admin.ModelAdmin.action_checkbox(
        delivery_admin, delivery
    )


def test_distinct_values_without_a_limit_lists_every_value():
    make_history(4, 1)
    assert distinct_values(TestCase, "variant", limit=None) == ["", "linux"]


@on_postgres
@pytest.mark.postgres
def test_filter_choices_jump_through_the_index_on_postgres():
    """Fact types and delivery types are read by index skips (one probe per
    value), not by a DISTINCT over the whole table (~100 ms for 1M deliveries)."""
    make_history(4, 4)
    expected = sorted(set(Delivery.objects.values_list("event_type", flat=True)))
    with CaptureQueriesContext(connection) as ctx:
        assert deliveries_selectors.delivery_event_types() == expected
        investigations_selectors.fact_types()
    assert len(ctx.captured_queries) == 2
    assert all("WITH RECURSIVE" in q["sql"] for q in ctx.captured_queries)


def test_pretty_body_shows_any_stored_body():
    from events.untrusted import pretty_body

    # A lone surrogate escape is legal JSON but cannot be encoded into a page: kept escaped.
    assert pretty_body('{"type": "\\ud800", "name": "é"}') == '{\n  "type": "\\ud800",\n  "name": "é"\n}'
    deep = "[" * 5000 + "]" * 5000  # too deep to re-indent: shown as received
    assert pretty_body(deep) == deep
    assert pretty_body("not json\x00") == "not json\x00"
