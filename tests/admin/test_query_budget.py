"""Query budgets: a change list or change page issues a fixed number of queries,
whatever the number of rows (no query per row). Measured at two data sizes."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import (
    Delivery,
    Investigation,
    MonitorEvent,
    QuarantineChange,
    Repository,
    StatusChange,
    TestCase,
)
from tests.admin.factories import make_history

pytestmark = pytest.mark.django_db

# Queries per page for a user of the `triager` group. Every page starts with 4: session,
# user, and the user's and group's permissions (not a superuser). Process-wide caches
# (content types) are warm, as on a running server.
# On PostgreSQL an unfiltered list first reads the planner's row estimate; it counts
# exactly (one more query) only below 100,000 rows, as here. Above that the estimate
# replaces the count, so the number of queries stays the same.
E = 1 if connection.vendor == "postgresql" else 0
BUDGETS = {
    # filter lookups (repositories, staff users, owners, variants), count, page (latest
    # investigation as a subquery, repository and assignee joined), owners of the page
    "tests": 4 + 4 + 3 + E,
    "tests_filtered": 4 + 4 + 3,  # filters are subqueries of the count and page queries
    "tests_search": 4 + 4 + 3,
    # test, its owners, assignee choices, five capped history inlines (triage history too)
    "test_change": 4 + 3 + 5,
    # event types (index skip scan on PostgreSQL), count, page (size in SQL, no bodies)
    "deliveries": 4 + 3 + E,
    "deliveries_filtered": 4 + 3,
    # a UUID: six index look-ups in the history rows, then types, count, page
    "deliveries_search_uuid": 4 + 6 + 3,
    # delivery, its four possible projections, and the test case of the one it has
    "delivery_change": 4 + 1 + 4 + 1,
    # one filter lookup each (monitor types, fact types ...), count, page
    "statuschanges": 4 + 3,
    "monitorevents": 4 + 3 + E,
    "investigations": 4 + 3,
    "quarantinechanges": 4 + 2 + 2 + E,  # two setting filters
    "repositories": 4 + 2 + E,  # test counts are aggregated in the page query
    "owners": 4 + 2 + E,
    "monitors": 4 + 3 + E,
    "monitorstates": 4 + 3 + E,
    "facts": 4 + 3 + E,
    # via and by filter lookups, count, page (test and user joined)
    "triageevents": 4 + 4 + E,
    "ownertargets": 4 + 3,  # count, the full count, page (a handful of rows)
}


def urls() -> dict[str, str]:
    test = TestCase.objects.order_by("name").first()
    web = Repository.objects.get(name="acme/web")
    delivery = Delivery.objects.filter(event_type="test_case.investigation_completed").order_by("id").first()
    return {
        "tests": "/admin/events/testcase/",
        "tests_filtered": "/admin/events/testcase/?owner=%40acme%2Fweb&investigated=yes&assignee=__none__"
        f"&variant=linux&quarantined__exact=0&triage_state__exact=new&repository__id__exact={web.pk}",
        "tests_search": "/admin/events/testcase/?q=refund+web",
        "test_change": f"/admin/events/testcase/{test.pk}/change/",
        "deliveries": "/admin/events/delivery/",
        "deliveries_filtered": "/admin/events/delivery/?outcome__exact=processed&event_type=v2.test_case.status_changed",
        "deliveries_search_uuid": f"/admin/events/delivery/?q={test.pk}",
        "delivery_change": f"/admin/events/delivery/{delivery.pk}/change/",
        "statuschanges": "/admin/events/statuschange/?new_status__exact=FLAKY",
        "monitorevents": "/admin/events/monitorevent/",
        "investigations": "/admin/events/investigation/?band=medium",
        "quarantinechanges": "/admin/events/quarantinechange/",
        "repositories": "/admin/events/repository/",
        "owners": "/admin/events/owner/",
        "monitors": "/admin/events/monitor/",
        "monitorstates": "/admin/events/monitorstate/",
        "facts": "/admin/events/investigationfact/",
        "triageevents": "/admin/events/triageevent/",
        "ownertargets": "/admin/events/ownertarget/",
    }


def measure(client) -> tuple[dict[str, int], dict[str, int]]:
    """(queries, rows shown) per page."""
    queries, rows = {}, {}
    for name, url in urls().items():
        client.get(url)  # warm the process-wide caches (content types)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
            assert response.status_code == 200, (name, response.status_code)
        queries[name] = len(ctx.captured_queries)
        cl = response.context.get("cl")
        rows[name] = len(cl.result_list) if cl is not None else 1
    return queries, rows


def test_pages_issue_a_fixed_number_of_queries_at_two_data_sizes(login, triager):
    client = login(triager)
    make_history(3, 4)
    small, small_rows = measure(client)
    make_history(60, 8, first=3)
    large, large_rows = measure(client)
    # The large data set really shows more rows on the same pages...
    assert large_rows["tests"] == 63 > small_rows["tests"] == 3
    assert large_rows["deliveries"] == 100 > small_rows["deliveries"] == 12
    assert large_rows["statuschanges"] > small_rows["statuschanges"]
    assert large_rows["tests_filtered"] > small_rows["tests_filtered"] > 0
    assert large_rows["deliveries_filtered"] > small_rows["deliveries_filtered"] > 0
    # ...with exactly the same queries.
    assert small == large == BUDGETS
    assert Delivery.objects.count() == 3 * 4 + 60 * 8
    assert StatusChange.objects.count() and MonitorEvent.objects.count()
    assert Investigation.objects.count() and QuarantineChange.objects.count()
