"""Static assets: the stylesheet parses as blocks, and the vendored scripts are served."""

from pathlib import Path

from django.contrib.staticfiles import finders

CSS = Path(__file__).resolve().parents[2] / "static" / "flakyboard" / "app.css"


def test_stylesheet_braces_balance():
    # A lost "}" silently drops every rule after it (a merge once did exactly that).
    depth = 0
    for number, line in enumerate(CSS.read_text().splitlines(), 1):
        depth += line.count("{") - line.count("}")
        assert 0 <= depth <= 2, f"unbalanced braces at app.css:{number}"
    assert depth == 0


def test_plotly_and_htmx_come_from_their_packages():
    assert finders.find("vendor/plotly.min.js").endswith("plotly/package_data/plotly.min.js")
    assert finders.find("django_htmx/htmx-2.min.js")
