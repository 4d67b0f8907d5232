"""Serve plotly.js from the installed plotly package: the same version as the Python
figure builders, no CDN, and nothing else of the package's data (datasets, templates).

plotly.js is 4.8 MB, so browsers must keep it. In production the manifest storage
(collectstatic) names every file by its content hash, and WhiteNoise serves hashed names
as immutable, for ten years, gzipped. Without collectstatic (`make demo`, DEBUG on) files
keep their own names and are revalidated on every page, so an edited stylesheet shows at
once; `DevelopmentStaticFilesStorage` names plotly.js alone by its content hash, the name
collectstatic would give it, so the demo caches it for good too.
"""

import hashlib
from functools import cache
from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.contrib.staticfiles.storage import StaticFilesStorage
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly.min.js"
_PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"
_PLOTLY_FILE = _PACKAGE_DATA / "plotly.min.js"


@cache
def plotly_hashed_name() -> str:
    """vendor/plotly.min.<hash>.js: the name the manifest storage gives it (the first 12
    hex digits of the file's MD5, as Django's HashedFilesMixin.file_hash)."""
    digest = hashlib.md5(_PLOTLY_FILE.read_bytes(), usedforsecurity=False).hexdigest()[:12]
    return f"vendor/plotly.min.{digest}.js"


class _VendorStorage(FileSystemStorage):
    prefix = "vendor"  # collectstatic puts it at vendor/plotly.min.js


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = _VendorStorage(location=_PACKAGE_DATA)

    def find(self, path, find_all=False, **kwargs):
        # The hashed name too: DevelopmentStaticFilesStorage links it, WhiteNoise finds it here.
        found = str(_PLOTLY_FILE) if path in (PLOTLY_JS, plotly_hashed_name()) else None
        if find_all or kwargs.get("all"):
            return [found] if found else []
        return found

    def list(self, ignore_patterns):
        yield "plotly.min.js", self.storage

    def check(self, **kwargs):
        return []


class DevelopmentStaticFilesStorage(StaticFilesStorage):
    """Static files by their own names, served from the finders (no collectstatic), except
    plotly.js: its URL carries its content hash, which WhiteNoise serves as immutable."""

    def url(self, name: str | None) -> str:
        return super().url(plotly_hashed_name() if name == PLOTLY_JS else name)
