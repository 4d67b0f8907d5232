"""Safe Markdown for untrusted text (investigation summaries and facts).

Two layers, because either alone has failed somewhere before:
1. markdown-it-py in CommonMark mode with raw HTML disabled: `<script>` in the source
   comes out as text, and its link validator refuses javascript:, vbscript:, file: and
   data: link targets;
2. nh3 (ammonia) cleans the HTML against an allow-list of tags, attributes and URL
   schemes, and adds rel="noopener noreferrer nofollow" to every link.

Headings are shifted down three levels (# becomes <h4>) so a summary cannot outshout
the page it sits in. Images are not allowed: they would load from anywhere (and the
Content-Security-Policy would block them anyway).
"""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "p",
    "a",
    "strong",
    "em",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "blockquote",
    "h4",
    "h5",
    "h6",
    "br",
    "hr",
    "s",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"
HEADING_SHIFT = 3

_parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def render_markdown(text: str | None) -> SafeString:
    """Markdown source in, sanitised HTML out (empty string for empty input)."""
    if not text:
        return mark_safe("")  # noqa: S308 (a constant)
    env: dict = {}
    tokens = _parser.parse(text, env)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + HEADING_SHIFT, 6)}"
    html = _parser.renderer.render(tokens, _parser.options, env)
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )
    return mark_safe(cleaned)  # noqa: S308 (sanitised by nh3 with an allow-list just above)
