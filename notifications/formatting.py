"""Rendering an `Outgoing` message for one kind of destination (a dialect).

Everything a message holds may come from outside (test names, summaries, owners from
CODEOWNERS), so every piece of text is escaped for the dialect it is rendered in: no one is
pinged and no markup or link is injected. Which dialect a URL gets is decided in one place,
`destinations.dialect_for`; this module only renders.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from django.utils.html import escape as html_escape


@dataclass(frozen=True)
class Text:
    """Plain text, trusted or not: always escaped for the destination."""

    text: str
    strong: bool = False


@dataclass(frozen=True)
class Link:
    """A link: the label is escaped like `Text`, the URL is sanitized (see `safe_url`)."""

    label: str
    url: str


Segment = Text | Link


@dataclass(frozen=True)
class Outgoing:
    """A message as the outbox builds it: a plain-text title and paragraphs (each a line
    or a list item) made of segments."""

    title: str
    paragraphs: tuple[tuple[Segment, ...], ...]


class Dialect(enum.Enum):
    # Plain text: mentions neutralized, links as "label: url".
    TEXT = "text"
    # Plain text for a destination that escapes &, < and > itself (apprise's slack://
    # plugin in its text format): mentions neutralized, nothing else, or it would show
    # double-escaped.
    TEXT_ESCAPED_BY_APPRISE = "text-escaped-by-apprise"
    # Slack-compatible markup that apprise passes through untouched (Mattermost renders
    # Markdown and reads Slack's <url|label> links and <!channel> announcements):
    # &, <, > as entities, Markdown specials escaped, mentions neutralized.
    SLACK = "slack"
    # CommonMark (Teams, Discord, apprise's markdown body format).
    MARKDOWN = "markdown"
    # HTML (a destination whose apprise format is HTML, e.g. when its URL says ?format=html).
    HTML = "html"


# A zero-width space after "@" keeps the text readable while no chat service recognizes
# a mention (@channel, @here, @everyone, @all, @someone) or a Discord <@123> any more.
_ZWSP = "\u200b"
_MENTION = re.compile(r"@(?=[\w.\-!#])")
# Slack's special mentions (<!here>, <!channel>, <!subteam^..>, <@U123>, <#C123>): plain
# text relayed to Slack by a JSON receiver must not ping either.
_SLACK_SPECIAL = re.compile(r"<(?=[!@#])")
# CommonMark's backslash-escapable punctuation that can start markup in the services we
# send to (! only starts an image before [, which is escaped): emphasis, code, links, headings, quotes, tables, strikethrough, HTML.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-|~<>])")
# The same without < and >, which the Slack dialect turns into entities instead (a
# backslash before an entity would show the entity's text).
_SLACK_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-|~])")
# Characters a URL may keep as they are: everything else (spaces, <, >, parentheses,
# brackets, quotes, backticks, |) is percent-encoded so the URL cannot end a Markdown link
# or a Slack <url|label> early.
_URL_SAFE = ":/?#&=%+@,;~$.-_!*'"
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029\u202a-\u202e\u2066-\u2069]+")


def neutralize_mentions(text: str) -> str:
    return _SLACK_SPECIAL.sub("<" + _ZWSP, _MENTION.sub("@" + _ZWSP, text))


def one_line(text: str) -> str:
    """Control characters (newlines included) become a space: a test name cannot start a
    new paragraph, list item or heading, nor add an email header."""
    return _CONTROL.sub(" ", text)


def markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def slack_escape(text: str) -> str:
    # & first, so the entities added next are not escaped twice.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_url(url: str) -> str | None:
    """The URL ready to put inside markup, or None when it is not an http(s) URL (a
    javascript: or data: URL is never made a link; its label is shown alone)."""
    url = one_line(url).strip()
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return None
    return quote(url, safe=_URL_SAFE)


def escape_text(text: str, dialect: Dialect) -> str:
    """One piece of untrusted text, escaped for `dialect`."""
    text = one_line(text)
    if dialect is Dialect.HTML:
        return str(html_escape(text))
    text = neutralize_mentions(text)
    if dialect is Dialect.SLACK:
        return slack_escape(_SLACK_MARKDOWN_SPECIALS.sub(r"\\\1", text))
    if dialect is Dialect.MARKDOWN:
        return markdown_escape(text)
    return text


def _segment(segment: Segment, dialect: Dialect) -> str:
    if isinstance(segment, Link):
        label = escape_text(segment.label, dialect)
        url = safe_url(segment.url)
        if url is None:
            return label
        if dialect is Dialect.SLACK:
            return f"<{url}|{label}>"
        if dialect is Dialect.MARKDOWN:
            return f"[{label}]({url})"
        if dialect is Dialect.HTML:
            return f'<a href="{html_escape(url)}">{label}</a>'
        return f"{label}: {url}"
    text = escape_text(segment.text, dialect)
    if segment.strong and text.strip():
        if dialect is Dialect.HTML:
            return f"<strong>{text}</strong>"
        # Mattermost (the Slack dialect's reader) renders Markdown: ** is bold.
        if dialect in (Dialect.SLACK, Dialect.MARKDOWN):
            return f"**{text}**"
    return text


def render_paragraph(paragraph: tuple[Segment, ...], dialect: Dialect) -> str:
    return "".join(_segment(segment, dialect) for segment in paragraph)


def render_title(title: str, dialect: Dialect) -> str:
    return escape_text(title, dialect)


def render_body(message: Outgoing, dialect: Dialect, *, with_title: bool) -> str:
    """The body of `message`; with the title first (in bold where the dialect has it) for
    destinations that have no title field of their own."""
    lines = [render_paragraph(paragraph, dialect) for paragraph in message.paragraphs]
    if dialect is Dialect.HTML:
        body = "".join(f"<p>{line}</p>" for line in lines)
        if with_title:
            body = f"<p><strong>{render_title(message.title, dialect)}</strong></p>" + body
        return body
    if with_title:
        lines.insert(0, _segment(Text(message.title, strong=True), dialect))
    # Markdown joins single newlines into one paragraph: a blank line keeps them apart.
    return ("\n\n" if dialect is Dialect.MARKDOWN else "\n").join(lines)


def render_email(message: Outgoing) -> tuple[str, str, str]:
    """(subject, plain text, HTML) for an email. Mentions are harmless in email, so the plain
    text is as is (minus control characters); the HTML alternative is escaped."""
    subject = one_line(message.title)
    text = "\n".join("".join(_plain(segment) for segment in paragraph) for paragraph in message.paragraphs)
    html = f"<h1>{html_escape(subject)}</h1>" + render_body(message, Dialect.HTML, with_title=False)
    return subject, text, html


def _plain(segment: Segment) -> str:
    if isinstance(segment, Link):
        url = safe_url(segment.url)
        label = one_line(segment.label)
        return f"{label}: {url}" if url else label
    return one_line(segment.text)
