from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path

from flakyboard import receiver_urls


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # The static URL is resolved per request: it names the hashed file once collected.
    return HttpResponsePermanentRedirect(static("flakyboard/favicon.svg"))


urlpatterns = [
    *receiver_urls.urlpatterns,
    # Browsers ask for /favicon.ico where a page names no icon (the admin's pages).
    path("favicon.ico", favicon),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("dashboard.urls")),
]
