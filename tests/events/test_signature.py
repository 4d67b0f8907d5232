"""flakyboard's signature check agrees with the svix library wherever the library can
judge (UTF-8 bodies), and also verifies bodies the library cannot decode."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from svix.webhooks import Webhook

from events.receiver.receive import SignedMessage, verify_signature
from tests.conftest import OTHER_SECRET, TEST_SECRET, svix_headers


def svix_says(body: bytes, headers: dict, secret: str) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except Exception:  # every exception means "not verified" (trunk-webhooks.md)
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    body=st.text(max_size=200),
    signer=st.sampled_from([TEST_SECRET, OTHER_SECRET]),
    skew=st.integers(min_value=-400, max_value=400),
    extra=st.sampled_from(["", " v1,AAAA", " v2,abc", " garbage", " v1,@@@"]),
)
def test_agrees_with_svix_on_every_utf8_body(body, signer, skew, extra):
    at = datetime.now(UTC) + timedelta(seconds=skew)
    headers = svix_headers(body, msg_id="msg_1", secret=signer, at=at)
    headers["svix-signature"] = (headers["svix-signature"] + extra).strip()
    message = SignedMessage(headers["svix-id"], headers["svix-timestamp"], headers["svix-signature"])
    ours = verify_signature(body.encode(), message, [TEST_SECRET])
    assert ours == svix_says(body.encode(), headers, TEST_SECRET)
    if abs(skew) < 290:  # clear of the 5-minute edge while the test runs
        assert ours == (signer == TEST_SECRET)


def test_verifies_a_body_that_is_not_utf8():
    body = b'{"name": "\xff"}'
    headers = svix_headers(body, msg_id="msg_bin")
    message = SignedMessage("msg_bin", headers["svix-timestamp"], headers["svix-signature"])
    assert verify_signature(body, message, [TEST_SECRET])
    assert not verify_signature(body + b" ", message, [TEST_SECRET])
    assert not svix_says(body, headers, TEST_SECRET)  # why flakyboard checks it itself


def test_any_configured_secret_and_any_offered_signature_verifies():
    body = b"{}"
    headers = svix_headers(body, msg_id="msg_rot", secret=OTHER_SECRET)
    offered = f"v1,bm90IGl0 {headers['svix-signature']}"
    message = SignedMessage("msg_rot", headers["svix-timestamp"], offered)
    assert verify_signature(body, message, ["whsec_not base64!", TEST_SECRET, OTHER_SECRET])
    assert not verify_signature(body, message, [TEST_SECRET])


def test_the_timestamp_must_be_whole_seconds_within_five_minutes():
    body = b"{}"
    headers = svix_headers(body, msg_id="msg_t")
    for timestamp in (headers["svix-timestamp"] + ".0", "-1", "1e9", "", "9" * 20, "9" * 12, "\u00b2" * 10):
        assert not verify_signature(
            body, SignedMessage("msg_t", timestamp, headers["svix-signature"]), [TEST_SECRET]
        )
