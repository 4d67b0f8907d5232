"""The investigations pages (being built)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ..access import dashboard_reader
from ..forms import scope_from


def _placeholder(title: str):
    @dashboard_reader
    def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return render(request, "dashboard/placeholder.html", {"title": title, "scope": scope_from(request)})

    return view


investigations = _placeholder("Investigations")
