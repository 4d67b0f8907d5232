"""dashboard.markdown.render_markdown: Markdown in, sanitised HTML out."""

from html.parser import HTMLParser

import pytest
from django.utils.safestring import SafeString

from dashboard.markdown import render_markdown


class _Elements(HTMLParser):
    """Every start tag with its attributes, as a browser would build them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def elements(html: str) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def assert_inert(html: str) -> None:
    """Nothing in `html` can run: no script-capable element, no event handler
    attribute, no link or source other than http(s) or mailto."""
    assert "<script" not in html.lower()
    for tag, attrs in elements(html):
        assert tag not in {"script", "img", "iframe", "object", "embed", "svg", "math", "style", "form"}, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name in {"href", "title", "rel", "start"}, (tag, name)
            if name == "href":
                scheme = (value or "").split(":", 1)[0].lower() if ":" in (value or "") else ""
                assert scheme in {"", "http", "https", "mailto"}, value
                assert not (value or "").lower().lstrip().startswith(("javascript:", "data:", "vbscript:"))


def test_renders_commonmark():
    html = render_markdown(
        "**Timeout** in *sandbox*: see [CI run #4](https://ci.example.com/runs/4).\n\n"
        "- one\n- two\n\n```\nassert x == 1\n```\n\n> quoted\n\n`code`"
    )
    assert isinstance(html, SafeString)
    assert "<strong>Timeout</strong>" in html
    assert "<em>sandbox</em>" in html
    assert '<a href="https://ci.example.com/runs/4" rel="noopener noreferrer nofollow">CI run #4</a>' in html
    assert "<ul>" in html and "<li>one</li>" in html
    assert "<pre><code>assert x == 1\n</code></pre>" in html
    assert "<blockquote>" in html
    assert "<code>code</code>" in html


def test_headings_are_shifted_down_to_h4_and_below():
    html = render_markdown("# One\n\n## Two\n\n### Three\n\n###### Six")
    assert "<h4>One</h4>" in html and "<h5>Two</h5>" in html
    assert "<h6>Three</h6>" in html and "<h6>Six</h6>" in html
    assert "<h1" not in html and "<h2" not in html and "<h3" not in html


def test_tables_and_links_with_titles_and_mailto():
    html = render_markdown('| a | b |\n|---|--:|\n| 1 | 2 |\n\n[m](mailto:qa@example.com "Mail QA")')
    assert "<table>" in html and "<th>a</th>" in html and "<td>2</td>" in html
    assert "style=" not in html  # the alignment style is dropped
    assert '<a href="mailto:qa@example.com" title="Mail QA" rel="noopener noreferrer nofollow">m</a>' in html


@pytest.mark.parametrize("text", ["", None])
def test_empty_input(text):
    assert render_markdown(text) == ""


HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1) )",
    "[x](java\tscript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    "![x](https://evil.example/track.png)",
    "<javascript:alert(1)>",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    '<iframe src="https://evil.example"></iframe>',
    "<svg onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>body{display:none}</style>",
    "<!-- <script>alert(1)</script> -->",
    '<form action="https://evil.example"><input name=x></form>',
    "**bold <b onmouseover=alert(1)>hover</b>**",
    '[ok](https://example.com "t\\" onmouseover=\\"alert(1)")',
    "```html\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    "<details open ontoggle=alert(1)>",
    '[x](https://example.com/" onclick="alert(1))',
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_payloads_render_inert(text):
    html = render_markdown(text)
    assert_inert(html)
    # Raw HTML in the source is shown as text, never as markup.
    assert "<iframe" not in html and "<svg" not in html and "<img" not in html and "<style" not in html


def test_raw_html_is_escaped_not_dropped():
    html = render_markdown("Use <b>bold</b> and <script>x()</script>")
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html


def test_javascript_link_in_markdown_is_not_a_link():
    html = render_markdown("[click me](javascript:alert(1)) and [ok](https://example.com)")
    hrefs = [attrs.get("href") for tag, attrs in elements(html) if tag == "a"]
    assert hrefs == ["https://example.com"]
