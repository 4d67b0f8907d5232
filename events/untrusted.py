"""Rules for showing untrusted payload text outside HTML templates (which autoescape):
links and CSV cells. One place, used by the dashboard, its CSV and the admin."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit


def safe_http_url(url: str | None) -> str:
    """The URL if it is http(s), else "" (payload URLs are untrusted: no javascript:,
    no data:)."""
    url = (url or "").strip()
    try:
        scheme = urlsplit(url).scheme
    except ValueError:  # "http://[::1": an invalid IPv6 host raises; not a link we show
        return ""
    return url if scheme.lower() in ("http", "https") else ""


# Codeowner handles ("@acme/web;@Acme/Payments") start with "@" but cannot call a
# function: no parentheses, quotes or operators. They are left as they are.
_HANDLES = re.compile(r"@[\w./@; -]*\Z")
# ...unless the first one reads as a cell reference: "@A1-B1" is arithmetic to Excel.
_CELL_REFERENCE = re.compile(r"@\$?[A-Za-z]{1,3}\$?[0-9]")
# A spreadsheet reads a cell that starts with one of these as a formula (OWASP "CSV
# injection"), also after leading white space, and in their full-width forms.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas in untrusted text: such a cell gets a leading quote."""
    if not isinstance(value, str) or not value.lstrip(" ").startswith(_FORMULA_PREFIXES):
        return value
    if _HANDLES.match(value) and not _CELL_REFERENCE.match(value):
        return value
    return "'" + value


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer streaming."""

    def write(self, value: str) -> str:
        return value


def csv_rows(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Encode rows one by one (for a StreamingHttpResponse), every cell made safe."""
    writer = csv.writer(_Echo())
    yield writer.writerow(list(header))
    for row in rows:
        yield writer.writerow(["" if value is None else csv_safe(value) for value in row])


# JSON text may hold "\ud800" (a lone surrogate): legal JSON, but no page can be encoded
# with it. Shown as the escape it arrived as.
_SURROGATE = re.compile("[\ud800-\udfff]")


def pretty_json(value: Any) -> str:
    """A JSON value indented for reading, unicode as itself, lone surrogates escaped."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def pretty_body(body: str) -> str:
    """A delivery body indented when it is JSON, else as received (templates escape it)."""
    try:
        return pretty_json(json.loads(body))
    except (ValueError, RecursionError):  # not JSON, or nested too deep to re-indent
        return body
