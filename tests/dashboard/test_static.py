"""Static assets: the stylesheet parses as blocks, the vendored scripts are served, and
plotly.js is cached for good (hashed name) in production and in the demo."""

import gzip
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from dashboard.staticfiles import plotly_hashed_name

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


# --- Caching: plotly.js (4.8 MB) is downloaded once, in production and in the demo. ---

YEAR = 365 * 24 * 60 * 60


def script_sources(client) -> dict[str, str]:
    """The overview's script URLs by file name (plotly.min.js, charts.js)."""
    response = client.get(reverse("dashboard:overview"))
    assert response.status_code == 200
    sources = re.findall(r'<script src="([^"]+)"', response.content.decode())
    return {name: src for name in ("plotly.min", "charts") for src in sources if f"/{name}." in src}


def get_static(client, url: str, **headers: str):
    response = client.get(url, headers=headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    response.close()
    return response, body


def max_age(response) -> int:
    match = re.search(r"max-age=(\d+)", response["Cache-Control"])
    assert match, response["Cache-Control"]
    return int(match.group(1))


@pytest.mark.django_db
def test_production_serves_plotly_hashed_immutable_and_compressed(settings, tmp_path, django_user_model):
    # The production storage (DEBUG off, DJANGO_MANIFEST_STATIC's default), collected into
    # a temporary STATIC_ROOT as the Docker build does.
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    settings.WHITENOISE_MAX_AGE = 60 * 60
    call_command("collectstatic", "--noinput", verbosity=0)
    client = Client()  # a new handler: WhiteNoise reads STATIC_ROOT as it starts
    client.force_login(django_user_model.objects.create_user("reader", password="pw"))

    sources = script_sources(client)
    plotly_url = sources["plotly.min"]
    assert re.fullmatch(r"/static/vendor/plotly\.min\.[0-9a-f]{12}\.js", plotly_url), plotly_url
    assert plotly_url == f"/static/{plotly_hashed_name()}"  # the name the demo links too
    assert re.fullmatch(r"/static/flakyboard/charts\.[0-9a-f]{12}\.js", sources["charts"])

    original = Path(finders.find("vendor/plotly.min.js")).read_bytes()
    gzipped, body = get_static(client, plotly_url, accept_encoding="gzip, deflate")
    assert gzipped.status_code == 200
    assert gzipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == original
    assert len(body) < len(original) / 3
    assert "immutable" in gzipped["Cache-Control"] and "public" in gzipped["Cache-Control"]
    assert max_age(gzipped) >= YEAR
    assert "Accept-Encoding" in gzipped["Vary"]

    plain, body = get_static(client, plotly_url)
    assert "Content-Encoding" not in plain and body == original
    assert max_age(plain) >= YEAR

    # The unhashed name is still served, for an hour, not for good.
    unhashed, _ = get_static(client, "/static/vendor/plotly.min.js")
    assert unhashed.status_code == 200
    assert max_age(unhashed) == 60 * 60 and "immutable" not in unhashed["Cache-Control"]


@pytest.mark.django_db
def test_demo_serves_plotly_by_its_hash_for_good_and_the_rest_revalidated(settings, django_user_model):
    # `make demo`: DEBUG on, no collectstatic, files served from the finders.
    settings.DEBUG = True
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "dashboard.staticfiles.DevelopmentStaticFilesStorage"},
    }
    settings.WHITENOISE_MAX_AGE = 0
    client = Client()
    client.force_login(django_user_model.objects.create_user("reader", password="pw"))

    sources = script_sources(client)
    assert sources["plotly.min"] == f"/static/{plotly_hashed_name()}"
    assert sources["charts"] == "/static/flakyboard/charts.js"  # edits show at once

    plotly_js, body = get_static(client, sources["plotly.min"])
    assert plotly_js.status_code == 200
    assert body == Path(finders.find("vendor/plotly.min.js")).read_bytes()
    assert "immutable" in plotly_js["Cache-Control"] and max_age(plotly_js) >= YEAR

    charts, _ = get_static(client, sources["charts"])
    assert charts.status_code == 200
    assert max_age(charts) == 0


def test_the_stylesheet_and_the_charts_share_the_palettes():
    """One palette per meaning: app.css's custom properties are events/palette.py's."""
    from events.palette import BAND_COLORS, STATUS_COLORS

    declared = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", CSS.read_text()))
    for status, colour in STATUS_COLORS.items():
        assert declared[status.lower()] == colour, status
    for band, colour in BAND_COLORS.items():
        assert declared[f"band-{band}"] == colour, band
    assert not set(STATUS_COLORS.values()) & set(BAND_COLORS.values())
