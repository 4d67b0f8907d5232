"""Escaping per destination: what the chat services that cannot run locally (Slack, Discord,
Teams) would receive. requests is replaced by a recorder, so nothing leaves the process."""

import json
from typing import Any

import pytest
import requests

from notifications.destinations import Link, Outgoing, Text, dialect_for, send
from notifications.formatting import Dialect, render_body, safe_url

HOSTILE = "<!here> @channel @everyone *bold* <script>alert(1)</script> [x](http://evil) <@U123>"


class _Response:
    status_code = 200
    content = b"ok"
    text = "ok"
    headers: dict[str, str] = {}

    def json(self) -> Any:
        return {"ok": True}


@pytest.fixture
def sent(monkeypatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def record(*args: Any, **kwargs: Any) -> _Response:
        url = kwargs.get("url") or (args[-1] if args else "")
        data = kwargs.get("data") or kwargs.get("json")
        calls.append({"url": url, "payload": json.loads(data) if isinstance(data, str | bytes) else data})
        return _Response()

    monkeypatch.setattr(requests, "post", record)
    monkeypatch.setattr(requests, "request", record)
    return calls


def hostile() -> Outgoing:
    return Outgoing(
        title=HOSTILE,
        paragraphs=(
            (Text("Test "), Text(HOSTILE, strong=True)),
            (Link(HOSTILE, "http://127.0.0.1:8000/t/1/?a=(b)&c=<d> e|f"),),
        ),
    )


def test_slack_text_has_no_live_mention_or_markup(sent) -> None:
    send("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", hostile())
    [call] = sent
    dumped = json.dumps(call["payload"], ensure_ascii=False)
    for raw in ("<!here>", "<script>", "@channel", "@everyone", "<@U123>"):
        assert raw not in dumped
    assert "&lt;\u200b!here&gt;" in dumped
    assert "@\u200bchannel" in dumped


def test_discord_markdown_is_escaped(sent) -> None:
    send("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", hostile())
    dumped = json.dumps([c["payload"] for c in sent], ensure_ascii=False)
    assert "@everyone" not in dumped and "@\u200beveryone" in dumped
    assert "[x](http://evil)" not in dumped
    assert "\\\\*bold\\\\*" in dumped  # \*bold\* (JSON doubles the backslash)


def test_markdown_rendering() -> None:
    body = render_body(hostile(), Dialect.MARKDOWN, with_title=True)
    assert "[x](http://evil)" not in body
    assert "\\[x\\]\\(http://evil\\)" in body
    assert "\\<script\\>" in body
    assert "@\u200beveryone" in body
    # The link: label escaped, URL with nothing that could end the link early.
    assert "](http://127.0.0.1:8000/t/1/?a=%28b%29&c=%3Cd%3E%20e%7Cf)" in body


def test_slack_dialect_rendering() -> None:
    body = render_body(hostile(), Dialect.SLACK, with_title=True)
    assert "<!here>" not in body and "<@U123>" not in body
    assert "<http://127.0.0.1:8000/t/1/?a=%28b%29&c=%3Cd%3E%20e%7Cf|" in body


def test_text_rendering_keeps_characters_and_links_as_text() -> None:
    body = render_body(hostile(), Dialect.TEXT, with_title=False)
    assert "<script>" in body and "@channel" not in body
    assert ": http://127.0.0.1:8000/t/1/" in body


def test_a_newline_in_a_name_cannot_start_a_new_line() -> None:
    message = Outgoing(title="t", paragraphs=((Text("a\n# heading\n- item"),),))
    assert "\n" not in render_body(message, Dialect.MARKDOWN, with_title=False)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "ftp://x/"])
def test_only_http_urls_become_links(url: str) -> None:
    assert safe_url(url) is None
    message = Outgoing(title="t", paragraphs=((Link("label", url),),))
    assert render_body(message, Dialect.MARKDOWN, with_title=False) == "label"


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", Dialect.TEXT_ESCAPED_BY_APPRISE),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", Dialect.MARKDOWN),
        ("workflows://host:443/wf/sig", Dialect.MARKDOWN),
        ("mmost://127.0.0.1:8065/token", Dialect.SLACK),
        ("json://127.0.0.1:8025/", Dialect.TEXT),
        ("json://127.0.0.1:8025/?format=html", Dialect.HTML),
        ("json://127.0.0.1:8025/?format=markdown", Dialect.MARKDOWN),
    ],
)
def test_one_place_decides_the_dialect(url: str, dialect: Dialect) -> None:
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    assert dialect_for(plugin)[0] is dialect
