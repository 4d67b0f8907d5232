"""The request that dashboard views receive: django-htmx's middleware (settings.MIDDLEWARE)
sets `request.htmx` on every request; this type says so (django-htmx's documented way)."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
