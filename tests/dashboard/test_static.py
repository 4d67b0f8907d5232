"""Static assets: the stylesheet parses as blocks, and the vendored scripts are served."""

import re
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


def test_the_stylesheet_and_the_charts_share_the_palettes():
    """One palette per meaning: app.css's custom properties are events/palette.py's."""
    from events.palette import BAND_COLORS, STATUS_COLORS

    declared = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", CSS.read_text()))
    for status, colour in STATUS_COLORS.items():
        assert declared[status.lower()] == colour, status
    for band, colour in BAND_COLORS.items():
        assert declared[f"band-{band}"] == colour, band
    assert not set(STATUS_COLORS.values()) & set(BAND_COLORS.values())
