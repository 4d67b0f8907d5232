"""Serve plotly.js from the installed plotly package: the same version as the Python
figure builders, no CDN, and nothing else of the package's data (datasets, templates)."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly.min.js"
_PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"


class _VendorStorage(FileSystemStorage):
    prefix = "vendor"  # collectstatic puts it at vendor/plotly.min.js


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = _VendorStorage(location=_PACKAGE_DATA)

    def find(self, path, find_all=False, **kwargs):
        found = str(_PACKAGE_DATA / "plotly.min.js") if path == PLOTLY_JS else None
        if find_all or kwargs.get("all"):
            return [found] if found else []
        return found

    def list(self, ignore_patterns):
        yield "plotly.min.js", self.storage

    def check(self, **kwargs):
        return []
