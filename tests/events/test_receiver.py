"""Every row of the receiver's table (issue 2), through the real URL with real signatures."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.db import OperationalError

from events.models import Delivery, StatusChange, TestCase
from tests.conftest import OTHER_SECRET, TEST_SECRET, WEBHOOK_URL, svix_headers
from tests.projection_faults import failing

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
pytestmark = pytest.mark.django_db


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


REFERENCE = "v2.test_case.status_changed__reference_example"


def test_valid_known_event_is_stored_processed_and_projected(signed_post):
    response = signed_post(
        fixture(REFERENCE), msg_id="msg_ok", extra_headers={"User-Agent": "Svix-Webhooks/1.0"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "processed"
    delivery = Delivery.objects.get()
    assert delivery.svix_id == "msg_ok"
    assert delivery.event_type == "v2.test_case.status_changed"
    assert delivery.outcome == Delivery.Outcome.PROCESSED
    assert delivery.occurred_at == datetime(2026, 5, 4, 9, 12, 33, 120000, tzinfo=UTC)
    assert delivery.received_at is not None and delivery.processed_at is not None
    assert delivery.user_agent == "Svix-Webhooks/1.0"
    assert set(delivery.headers) >= {"svix-id", "svix-timestamp", "svix-signature"}
    assert json.loads(delivery.body) == fixture(REFERENCE)
    assert TestCase.objects.get().status == "FLAKY"
    assert StatusChange.objects.get().delivery == delivery


def test_raw_body_is_stored_byte_for_byte(signed_post):
    body = '{"type":"x.unknown",   "odd":  "spacing \\u00e9 é"}'
    assert signed_post(body).status_code == 200
    assert Delivery.objects.get().body == body


def test_same_svix_id_again_counts_a_redelivery_and_applies_nothing(signed_post):
    payload = fixture(REFERENCE)
    assert signed_post(payload, msg_id="msg_dup").status_code == 200
    # A retry carries the same id with a new timestamp and signature.
    later = datetime.now(UTC) + timedelta(seconds=30)
    response = signed_post(payload, msg_id="msg_dup", at=later)
    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    delivery = Delivery.objects.get()
    assert delivery.redeliveries == 1 and delivery.last_redelivered_at is not None
    assert StatusChange.objects.count() == 1


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
def test_missing_svix_header_is_400(client, missing):
    body = json.dumps(fixture(REFERENCE))
    headers = svix_headers(body)
    del headers[missing]
    response = client.post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert "svix-id" in response.json()["error"]
    assert not Delivery.objects.exists()


def test_webhook_prefixed_headers_are_accepted(client):
    body = json.dumps(fixture(REFERENCE))
    headers = {k.replace("svix-", "webhook-"): v for k, v in svix_headers(body).items()}
    response = client.post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize(
    "signature",
    [
        "v1,bm90IHRoZSByaWdodCBzaWduYXR1cmU=",  # well formed, wrong
        "v1bm90IHRoZSByaWdodCBzaWduYXR1cmU=",  # no comma
        "v1,abc  v1,def",  # double space
        "v1,!!!not-base64!!!",
        "garbage",
        ",",
        "v1,",
    ],
)
def test_bad_or_malformed_signature_is_401_never_500(client, signature):
    body = json.dumps(fixture(REFERENCE))
    headers = svix_headers(body)
    headers["svix-signature"] = signature
    response = client.post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert not Delivery.objects.exists()


def test_wrong_secret_is_401(signed_post):
    assert signed_post(fixture(REFERENCE), secret=OTHER_SECRET).status_code == 401
    assert not Delivery.objects.exists()


def test_any_configured_secret_verifies_during_rotation(signed_post, settings):
    settings.TRUNK_WEBHOOK_SECRETS = [OTHER_SECRET, TEST_SECRET]
    assert signed_post(fixture(REFERENCE), secret=TEST_SECRET).status_code == 200
    assert signed_post(fixture(REFERENCE), secret=OTHER_SECRET).status_code == 200
    assert Delivery.objects.count() == 2


def test_several_signatures_in_one_header_any_match_is_enough(client):
    body = json.dumps(fixture(REFERENCE))
    headers = svix_headers(body)
    headers["svix-signature"] = "v1,bm90IHRoZSByaWdodCBzaWduYXR1cmU= " + headers["svix-signature"]
    assert (
        client.post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers).status_code
        == 200
    )


@pytest.mark.parametrize("minutes", [-6, 6, -60 * 24])
def test_timestamp_outside_five_minutes_is_401(signed_post, minutes):
    at = datetime.now(UTC) + timedelta(minutes=minutes)
    assert signed_post(fixture(REFERENCE), at=at).status_code == 401
    assert not Delivery.objects.exists()


def test_non_numeric_timestamp_is_401_never_500(client):
    body = json.dumps(fixture(REFERENCE))
    headers = svix_headers(body)
    headers["svix-timestamp"] = "yesterday"
    assert (
        client.post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers).status_code
        == 401
    )


def test_body_over_one_mib_is_413(signed_post):
    payload = fixture(REFERENCE)
    payload["padding"] = "x" * (1024 * 1024)
    response = signed_post(payload)
    assert response.status_code == 413
    assert not Delivery.objects.exists()


def test_body_of_exactly_the_limit_is_accepted(signed_post, settings):
    body = json.dumps({"type": "x.padding", "p": ""})
    settings.TRUNK_WEBHOOK_MAX_BODY_BYTES = len(body)
    assert signed_post(body).status_code == 200


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "options"])
def test_other_methods_are_405(client, method):
    response = getattr(client, method)(WEBHOOK_URL)
    assert response.status_code == 405
    assert not Delivery.objects.exists()


def test_valid_signature_body_not_json_is_stored_invalid(signed_post):
    response = signed_post("this is {not json")
    assert response.status_code == 200
    delivery = Delivery.objects.get()
    assert delivery.outcome == Delivery.Outcome.INVALID
    assert "not JSON" in delivery.error
    assert delivery.body == "this is {not json"


def test_signed_body_not_utf8_is_stored_invalid_byte_for_byte(signed_post):
    body = b'{"type": "\xff\xfe", "nul": "\x00"}'
    response = signed_post(body)
    assert response.status_code == 200
    delivery = Delivery.objects.get()
    assert delivery.outcome == Delivery.Outcome.INVALID
    assert delivery.error.startswith("body is not UTF-8")
    assert delivery.raw_bytes == body and delivery.size == len(body)
    assert "\x00" not in delivery.body and "\ufffd" in delivery.body  # shown, not stored, as text


def test_unsigned_body_not_utf8_is_401_never_500(client):
    body = b'{"type": "\xff\xfe"}'
    headers = {
        "svix-id": "msg_bin",
        "svix-timestamp": str(int(datetime.now(UTC).timestamp())),
        "svix-signature": "v1,AAAA",
    }
    response = client.post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert not Delivery.objects.exists()


def test_unknown_event_type_is_stored_ignored(signed_post):
    response = signed_post({"type": "test_case.renamed", "timestamp": "2026-05-01T00:00:00Z", "anything": 1})
    assert response.status_code == 200
    delivery = Delivery.objects.get()
    assert delivery.outcome == Delivery.Outcome.IGNORED
    assert delivery.event_type == "test_case.renamed"
    assert delivery.occurred_at == datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p["test_case"].pop("id"), "test_case.id"),
        (lambda p: p.pop("test_case"), "test_case"),
        (lambda p: p.pop("timestamp"), "timestamp"),
        (lambda p: p.update(new_status="WOBBLY"), "new_status"),
        (lambda p: p.update(new_status=3), "new_status"),
        (lambda p: p["test_case"].update(id="not-a-uuid"), "test_case.id"),
        (lambda p: p["test_case"].update(name=["a"]), "test_case.name"),
        (lambda p: p["test_case"].update(codeowners="@acme/web"), "test_case.codeowners"),
        (lambda p: p["test_case"].update(codeowners=["@a", 7]), "test_case.codeowners[1]"),
        (lambda p: p["test_case"].update(quarantined="yes"), "test_case.quarantined"),
        (lambda p: p.update(timestamp="last tuesday"), "timestamp"),
        (lambda p: p.update(repository=[]), "repository"),
        (lambda p: p.update(type=42), "type"),
    ],
)
def test_known_type_with_bad_field_is_stored_invalid_naming_the_field(signed_post, mutate, field):
    payload = fixture(REFERENCE)
    mutate(payload)
    response = signed_post(payload)
    assert response.status_code == 200
    delivery = Delivery.objects.get()
    assert delivery.outcome == Delivery.Outcome.INVALID
    assert delivery.error.startswith(f"{field}:"), delivery.error
    assert not TestCase.objects.exists()


def test_json_that_is_not_an_object_is_invalid(signed_post):
    assert signed_post("[1, 2, 3]").status_code == 200
    delivery = Delivery.objects.get()
    assert delivery.outcome == Delivery.Outcome.INVALID
    assert "expected an object" in delivery.error


def test_url_without_slash_answers_directly_not_a_redirect(signed_post):
    response = signed_post(fixture(REFERENCE), url="/webhooks/trunk")
    assert response.status_code == 200
    assert Delivery.objects.count() == 1


def test_database_unavailable_is_503_so_svix_retries(signed_post):
    # Every statement fails, as with the database down (the delivery row is written with
    # plain SQL, not Delivery.save, so the failure is injected at the cursor).
    down = OperationalError("connection refused")
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=down):
        response = signed_post(fixture(REFERENCE))
    assert response.status_code == 503
    assert not Delivery.objects.exists()


def test_a_failing_projection_keeps_the_delivery_marked_failed(signed_post):
    with failing(RuntimeError("boom")):
        response = signed_post(fixture(REFERENCE))
    assert response.status_code == 200
    delivery = Delivery.objects.get()
    assert delivery.outcome == Delivery.Outcome.FAILED
    assert "RuntimeError: boom" in delivery.error
    # The projection rolled back as a whole: not even the test case row was left behind.
    assert not TestCase.objects.exists()


def test_no_secret_configured_is_503_not_500(signed_post, settings):
    settings.TRUNK_WEBHOOK_SECRETS = []
    assert signed_post(fixture(REFERENCE)).status_code == 503
    assert not Delivery.objects.exists()


def test_no_response_contains_a_traceback(client):
    for body, headers in [
        (b"\x00\x01", {"svix-id": "a", "svix-timestamp": "b", "svix-signature": "c"}),
        (b"{}", {"svix-id": "a" * 5000, "svix-timestamp": "1" * 50, "svix-signature": "v1," + "A" * 10000}),
    ]:
        response = client.post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers)
        assert response.status_code in (400, 401)
        assert b"Traceback" not in response.content


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=OperationalError("down")):
        assert client.get("/healthz").status_code == 503


def test_invalid_v1_payload_still_records_its_nested_event_time(signed_post):
    payload = fixture("test_case.status_changed__v1_without_type")
    payload["test_case"]["id"] = "nope"
    assert signed_post(payload).status_code == 200
    delivery = Delivery.objects.get()
    assert delivery.outcome == Delivery.Outcome.INVALID
    assert delivery.occurred_at == datetime(2026, 4, 1, 8, tzinfo=UTC)


def test_a_database_error_inside_the_projection_is_503_and_stores_nothing(signed_post):
    """A deadlock or a lost connection while projecting: the whole transaction rolls back
    and Svix retries later (unlike a bug, which is stored as failed)."""
    with failing(OperationalError("deadlock detected")):
        response = signed_post(fixture(REFERENCE))
    assert response.status_code == 503
    assert not Delivery.objects.exists() and not TestCase.objects.exists()
