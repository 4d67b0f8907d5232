"""The sending layer end to end against a local receiver (127.0.0.1 only)."""

import logging
import time

import pytest
from django.core.exceptions import ValidationError

from notifications.destinations import (
    Link,
    Outgoing,
    SendFailed,
    Text,
    masked,
    send,
    validate_destination,
)
from tests.notifications.receivers import Receiver

HOSTILE = "<!here> @channel *bold* <script>alert(1)</script> [x](http://evil)"
TOKEN = "s3cr3tTok3nXYZ"


def message(title: str = "Flaky: tests.test_a", name: str = "tests.test_a") -> Outgoing:
    return Outgoing(
        title=title,
        paragraphs=(
            (Text("Test "), Text(name, strong=True), Text(" turned flaky.")),
            (Link("Open in flakyboard", "http://127.0.0.1:8000/tests/1/"),),
        ),
    )


def test_json_send_arrives_with_title_and_message(receiver: Receiver) -> None:
    send(receiver.url("json", path="/ok"), message())
    [post] = receiver.posts("/ok")
    assert post.json["title"] == "Flaky: tests.test_a"
    assert "tests.test_a turned flaky." in post.json["message"]
    assert "Open in flakyboard: http://127.0.0.1:8000/tests/1/" in post.json["message"]


def test_json_hostile_text_arrives_without_mentions(receiver: Receiver) -> None:
    send(receiver.url("json", path="/h"), message(title=HOSTILE, name=HOSTILE))
    [post] = receiver.posts("/h")
    for text in (post.json["title"], post.json["message"]):
        assert "@channel" not in text and "@\u200bchannel" in text
        # Plain text stays plain: a JSON consumer gets the characters, not markup.
        assert "<script>" in text


def test_mattermost_send_is_slack_style_and_escaped(receiver: Receiver) -> None:
    url = receiver.url("mmost", path=f"/{TOKEN}")
    send(url, message(title=HOSTILE, name=HOSTILE))
    [post] = receiver.posts(f"/hooks/{TOKEN}")
    text = post.json["text"]
    for raw in ("<!here>", "<script>", "@channel", "*bold*", "[x](http://evil)"):
        assert raw not in text
    assert "&lt;\u200b!here&gt;" in text  # escaped, and defused for a relay
    assert "&lt;script&gt;" in text
    assert "@\u200bchannel" in text
    assert "\\*bold\\*" in text
    assert "<http://127.0.0.1:8000/tests/1/|Open in flakyboard>" in text


def test_always_failing_destination_raises_without_secret(receiver: Receiver, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="notifications")
    receiver.always_fail(f"/hooks/{TOKEN}")
    with pytest.raises(SendFailed) as failed:
        send(receiver.url("mmost", path=f"/{TOKEN}"), message())
    text = str(failed.value)
    assert TOKEN not in text
    assert f"mmost://127.0.0.1:{receiver.port}/…" in text
    assert "500" in text
    assert len(receiver.posts(f"/hooks/{TOKEN}")) == 1  # apprise did not retry on its own
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert TOKEN not in caplog.text


def test_failing_send_logs_no_secret_even_with_apprise_at_debug(receiver: Receiver, caplog) -> None:
    """apprise logs the POST URL (with the token) at DEBUG: those records never leave."""
    caplog.set_level(logging.DEBUG)  # root and apprise
    before = logging.getLogger("apprise").level
    logging.getLogger("apprise").setLevel(logging.DEBUG)
    try:
        receiver.always_fail(f"/p/{TOKEN}")
        with pytest.raises(SendFailed) as failed:
            send(receiver.url("json", path=f"/p/{TOKEN}", query=f"token={TOKEN}"), message())
    finally:
        logging.getLogger("apprise").setLevel(before)
    assert TOKEN not in str(failed.value)
    assert TOKEN not in caplog.text


def test_hanging_destination_fails_within_ten_seconds(receiver: Receiver) -> None:
    receiver.hang("/slow", seconds=30)
    started = time.monotonic()
    with pytest.raises(SendFailed):
        send(receiver.url("json", path="/slow", query="cto=60&rto=60&retry=3"), message())
    assert time.monotonic() - started < 10


def test_fail_times_then_ok(receiver: Receiver) -> None:
    receiver.fail_times("/flaky", 1)
    with pytest.raises(SendFailed):
        send(receiver.url("json", path="/flaky"), message())
    send(receiver.url("json", path="/flaky"), message())
    assert len(receiver.posts("/flaky")) == 2


def test_mailto_sends_through_django_with_escaped_html(mailoutbox, settings) -> None:
    settings.DEFAULT_FROM_EMAIL = "flakyboard@example.com"
    send("mailto:team@example.com,lead@example.org", message(title=HOSTILE, name=HOSTILE))
    [email] = mailoutbox
    assert email.to == ["team@example.com", "lead@example.org"]
    assert email.from_email == "flakyboard@example.com"
    assert email.subject == HOSTILE
    assert HOSTILE in email.body  # plain text as is: mentions do nothing in email
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html"
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="http://127.0.0.1:8000/tests/1/">Open in flakyboard</a>' in html


def test_mailto_title_with_newline_cannot_add_a_header(mailoutbox) -> None:
    send("mailto:team@example.com", message(title="Hi\nBcc: x@evil.example"))
    [email] = mailoutbox
    assert "\n" not in email.subject
    assert email.bcc == []


@pytest.mark.parametrize(
    "url",
    [
        "json://127.0.0.1:8025/path",
        "jsons://user:pass@example.com/hook",
        "mmost://127.0.0.1:8065/abcdefghij",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
        "mailto:team@example.com",
        "mailto:team@example.com,lead@example.org",
        "mailto://user:pass@example.com",
    ],
)
def test_validate_accepts(url: str) -> None:
    validate_destination(url)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "notaurl",
        "http//x",
        "slack://",
        f"slack://{TOKEN}",
        "mailto:not-an-address",
        "mailto:",
        f"json://127.0.0.1/{TOKEN}\n",
        f"json://127.0.0.1/{TOKEN} x",
        "json://127.0.0.1/" + "a" * 2001,
        f"nosuchscheme://{TOKEN}/x",
        f"slack://T1JJ3T3L2/A1BRTD4JD/{TOKEN}!",
    ],
)
def test_validate_refuses_with_clear_message(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_destination(url)
    text = " ".join(refused.value.messages)
    assert TOKEN not in text
    assert len(text) > 20


def test_validate_refuses_unknown_with_apprise_message(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValidationError, match="Not a destination apprise understands"):
        # apprise logs an invalid Slack token, token and all, at WARNING.
        validate_destination(f"slack://T1JJ3T3L2/A1BRTD4JD/{TOKEN}!")
    assert TOKEN not in caplog.text


def test_send_to_invalid_destination_raises_send_failed() -> None:
    with pytest.raises(SendFailed) as failed:
        send(f"slack://{TOKEN}", message())
    assert TOKEN not in str(failed.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"slack://T1JJ3T3L2/A1BRTD4JD/{TOKEN}", "slack://…"),
        (f"discord://4174216298/{TOKEN}", "discord://…"),
        (f"workflows://host:443/wf/{TOKEN}", "workflows://…"),
        (f"json://127.0.0.1:8025/{TOKEN}", "json://127.0.0.1:8025/…"),
        (f"jsons://user:{TOKEN}@example.com/hook", "jsons://example.com/…"),
        ("json://127.0.0.1:8025", "json://127.0.0.1:8025"),
        (f"mmost://127.0.0.1:8065/{TOKEN}", "mmost://127.0.0.1:8065/…"),
        (f"mailto://user:{TOKEN}@gmail.com", "mailto://…"),
        ("mailto:team@example.com", "mailto:t…@example.com"),
        ("mailto:team@example.com,lead@example.org", "mailto:t…@example.com,l…@example.org"),
        (f"{TOKEN}", "…"),
    ],
)
def test_masked_hides_secrets(url: str, shown: str) -> None:
    assert masked(url) == shown
    assert TOKEN not in masked(url)
