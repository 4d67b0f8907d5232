"""The delivery log in the admin: read-only, inspectable, reprocessable."""

import json
import re
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.delivery_log import delivery_changes_allowed
from events.models import Delivery, Investigation, StatusChange, TestCase
from events.projection import replay as replaying
from tests.admin.factories import BASE, flaky, ingest, investigate, make_test
from tests.projection_faults import failing

pytestmark = pytest.mark.django_db
URL = "/admin/events/delivery/"


def change_url(delivery) -> str:
    return f"{URL}{delivery.pk}/change/"


def svix_ids(response) -> set[str]:
    return {d.svix_id for d in response.context["cl"].result_list}


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def log():
    """Deliveries of every outcome."""
    test = make_test(1, name="test_logged")
    other = make_test(2, name="test_other")
    return {
        "test": test,
        "other": other,
        "status": flaky(test, BASE),
        "investigation": investigate(test, BASE + timedelta(hours=1)),
        "other_status": flaky(other, BASE),
        "invalid": ingest("this is {not json", msg_id="msg_invalid"),
        "ignored": ingest(
            {"type": "test_case.renamed", "timestamp": "2026-05-01T00:00:00Z", "test": str(test.id)}
        ),
    }


def test_list_columns(admin_client, log):
    response = admin_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for header in ("Svix id", "Event type", "Outcome", "Event time", "Received", "Redeliveries", "Size"):
        assert header in html, header
    assert log["status"].svix_id in html
    assert "v2.test_case.status_changed" in html
    assert "Invalid payload" in html and ">Ignored<" in html
    assert f"{len(log['invalid'].body.encode())}\xa0bytes" in html
    # Newest received first.
    assert [d.svix_id for d in response.context["cl"].result_list][0] == log["ignored"].svix_id


def test_size_is_bytes_not_characters(admin_client):
    body = json.dumps({"type": "x.unicode", "text": "é" * 10}, ensure_ascii=False)
    delivery = ingest(body)
    row = next(d for d in admin_client.get(URL).context["cl"].result_list if d.pk == delivery.pk)
    assert row.body_size == len(body.encode()) == len(body) + 10


def test_redeliveries_column(admin_client, log):
    Delivery.objects.filter(pk=log["status"].pk).update(redeliveries=3)
    row = next(d for d in admin_client.get(URL).context["cl"].result_list if d.pk == log["status"].pk)
    assert row.redeliveries == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("outcome__exact=invalid", {"msg_invalid"}),
        ("outcome__exact=processed", {"status", "investigation", "other_status"}),
        ("event_type=test_case.investigation_completed", {"investigation"}),
        ("event_type=__none__", {"msg_invalid"}),
        ("event_type=test_case.renamed", {"ignored"}),
    ],
)
def test_filters(admin_client, log, query, expected):
    ids = {log[name].svix_id if name in log else name for name in expected}
    assert svix_ids(admin_client.get(f"{URL}?{query}")) == ids


def test_received_date_filter(admin_client, log):
    with delivery_changes_allowed():  # received a month ago (the log is append-only)
        Delivery.objects.filter(pk=log["invalid"].pk).update(received_at=timezone.now() - timedelta(days=30))
    cl = admin_client.get(URL).context["cl"]
    spec = next(s for s in cl.filter_specs if s.title == "received at")
    today = next(c for c in spec.choices(cl) if c["display"] == "Today")
    response = admin_client.get(URL + today["query_string"])
    assert response.status_code == 200
    assert log["invalid"].svix_id not in svix_ids(response)
    assert len(svix_ids(response)) == 4
    html = admin_client.get(URL).content.decode()
    assert "By received at" in html and "Past 7 days" in html


def test_type_filter_lists_the_types_seen(admin_client, log):
    html = admin_client.get(URL).content.decode()
    for text in (
        "v2.test_case.status_changed",
        "test_case.investigation_completed",
        "test_case.renamed",
        "(none)",
    ):
        assert text in html


def test_search_by_svix_id_and_type(admin_client, log):
    assert svix_ids(admin_client.get(URL, {"q": log["status"].svix_id})) == {log["status"].svix_id}
    assert svix_ids(admin_client.get(URL, {"q": "investigation_completed"})) == {log["investigation"].svix_id}


def test_search_by_test_id_finds_its_deliveries_processed_or_not(admin_client, log):
    found = svix_ids(admin_client.get(URL, {"q": str(log["test"].id)}))
    # Processed ones through the history rows; the ignored one by its body.
    assert found == {log["status"].svix_id, log["investigation"].svix_id, log["ignored"].svix_id}


def test_search_by_investigation_id(admin_client, log):
    investigation = Investigation.objects.get()
    assert svix_ids(admin_client.get(URL, {"q": str(investigation.id)})) == {log["investigation"].svix_id}


def test_search_by_uuid_finds_a_failed_delivery_by_its_body(admin_client):
    test = make_test(5)
    with failing(RuntimeError("boom")):
        failed = flaky(test, BASE)
    assert Delivery.objects.get(pk=failed.pk).outcome == "failed"
    assert svix_ids(admin_client.get(URL, {"q": str(test.id)})) == {failed.svix_id}


def test_arbitrary_text_never_scans_bodies(admin_client, log):
    # "test_logged" is in the bodies, but text search only looks at svix id and type.
    assert svix_ids(admin_client.get(URL, {"q": "test_logged"})) == set()
    with CaptureQueriesContext(connection) as ctx:
        admin_client.get(URL, {"q": "anything"})
    assert not any(
        re.search(r'"body"(::text)?\)?\s+(I?LIKE|GLOB)', q["sql"], re.I) for q in ctx.captured_queries
    )
    # ...whereas a UUID does look into the bodies of the few unprojected deliveries.
    with CaptureQueriesContext(connection) as ctx:
        admin_client.get(URL, {"q": str(uuid.uuid4())})
    assert any(re.search(r'"body"(::text)?\)?\s+(I?LIKE|GLOB)', q["sql"], re.I) for q in ctx.captured_queries)


def test_change_page_shows_pretty_body_headers_and_error(admin_client, log):
    response = admin_client.get(change_url(log["status"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "  &quot;type&quot;: &quot;v2.test_case.status_changed&quot;," in html  # indented JSON
    assert "svix-id" in html and "svix-timestamp" in html and "svix-signature" in html
    assert log["status"].headers["svix-signature"] in html
    assert "Status change" in html or "HEALTHY → FLAKY" in html  # what it was projected as
    assert "test_logged" in html
    invalid = admin_client.get(change_url(log["invalid"])).content.decode()
    assert "body is not JSON" in invalid
    assert "this is {not json" in invalid


def test_change_page_renders_only_the_stored_header_keys(admin_client, log):
    headers = {**log["status"].headers, "authorization": "Bearer s3cr3t", "x-api-key": "k3y"}
    with delivery_changes_allowed():
        Delivery.objects.filter(pk=log["status"].pk).update(headers=headers)
    html = admin_client.get(change_url(log["status"])).content.decode()
    assert "s3cr3t" not in html and "k3y" not in html and "authorization" not in html
    assert "svix-id" in html


def test_change_page_escapes_the_body(admin_client):
    delivery = ingest(json.dumps({"type": "x.evil", "html": "<script>alert(1)</script>"}))
    html = admin_client.get(change_url(delivery)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_nobody_can_add_change_or_delete_deliveries_not_even_a_superuser(admin_client, log):
    delivery = log["status"]
    assert admin_client.get(f"{URL}add/").status_code == 403
    assert admin_client.post(f"{URL}add/", {"svix_id": "msg_forged", "body": "{}"}).status_code == 403
    assert (
        admin_client.post(
            change_url(delivery), {"svix_id": "x", "body": "{}", "outcome": "processed"}
        ).status_code
        == 403
    )
    assert admin_client.get(f"{URL}{delivery.pk}/delete/").status_code == 403
    assert admin_client.post(f"{URL}{delivery.pk}/delete/", {"post": "yes"}).status_code == 403
    # The bulk delete action is not offered, and forcing it does nothing.
    response = admin_client.post(
        URL,
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [delivery.pk], "index": 0, "post": "yes"},
        follow=True,
    )
    assert Delivery.objects.filter(pk=delivery.pk).exists()
    assert Delivery.objects.get(pk=delivery.pk).body == delivery.body
    assert "delete_selected" not in admin_client.get(URL).content.decode()
    page = admin_client.get(change_url(delivery)).content.decode()
    assert 'name="_save"' not in page and "deletelink" not in page
    assert response.status_code == 200


def reprocess(client, deliveries, **extra):
    return client.post(
        URL,
        {
            "action": "reprocess",
            ACTION_CHECKBOX_NAME: [d.pk for d in deliveries],
            "index": 0,
            "select_across": "0",
            **extra,
        },
        follow=True,
    )


def test_reprocess_uses_the_command_code_path_and_reports_outcomes(admin_client, log):
    # Lose a projection (as if a bug had dropped it), then reprocess.
    StatusChange.objects.filter(delivery=log["status"]).delete()
    with mock.patch("events.admin.deliveries.replay", wraps=replaying.replay) as replay:
        response = reprocess(admin_client, [log["status"], log["invalid"], log["ignored"]])
    replay.assert_called()
    assert messages_of(response) == [
        "Reprocessed 3 deliveries: 1 now ignored, 1 now invalid, 1 now processed."
    ]
    assert StatusChange.objects.filter(delivery=log["status"]).exists()
    entries = dict(LogEntry.objects.values_list("object_id", "change_message"))
    assert entries == {
        str(log["status"].pk): "Reprocessed: now processed.",
        str(log["invalid"].pk): "Reprocessed: now invalid.",
        str(log["ignored"].pk): "Reprocessed: now ignored.",
    }


def test_reprocess_fixes_a_failed_delivery(admin_client):
    test = make_test(3)
    with failing(RuntimeError("boom")):
        failed = flaky(test, BASE)
    assert not TestCase.objects.exists()
    response = reprocess(admin_client, [failed])
    assert messages_of(response) == ["Reprocessed 1 delivery: 1 now processed."]
    delivery = Delivery.objects.get(pk=failed.pk)
    assert (delivery.outcome, delivery.error) == ("processed", "")
    assert TestCase.objects.get().status == "FLAKY"


def test_reprocess_warns_when_deliveries_still_fail(admin_client, log):
    with failing(RuntimeError("boom")):
        response = reprocess(admin_client, [log["status"]])
    assert messages_of(response) == [
        "Reprocessed 1 delivery: 1 now failed. Some still fail to apply: see their error."
    ]
    assert response.context["messages"]._loaded_messages[0].level_tag == "warning"


def test_reprocess_is_idempotent(admin_client, log):
    reprocess(admin_client, [log["status"], log["investigation"]])
    reprocess(admin_client, [log["status"], log["investigation"]])
    assert StatusChange.objects.filter(test_case_id=log["test"].id).count() == 1
    assert Investigation.objects.get().facts.count() == 2


def test_reprocess_select_across_follows_the_filter(admin_client, log):
    response = reprocess(admin_client, [log["invalid"]], select_across="1")
    assert "Reprocessed 5 deliveries" in messages_of(response)[0]
    response = admin_client.post(
        f"{URL}?outcome__exact=invalid",
        {"action": "reprocess", ACTION_CHECKBOX_NAME: [log["invalid"].pk], "index": 0, "select_across": "1"},
        follow=True,
    )
    assert messages_of(response) == ["Reprocessed 1 delivery: 1 now invalid."]


def test_unknown_uuid_search_finds_nothing(admin_client, log):
    assert svix_ids(admin_client.get(URL, {"q": str(uuid.uuid4())})) == set()
