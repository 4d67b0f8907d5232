"""Content-Security-Policy: every script, style, image and connection from this origin.

No third-party source is allowed (no CDN, fonts or analytics). Scripts are files only:
charts are drawn by static/flakyboard/charts.js from JSON data islands, never inline
code. Plotly styles its SVG through style attributes and <style> elements it creates,
which is why styles allow 'unsafe-inline' (styles cannot run code).
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
